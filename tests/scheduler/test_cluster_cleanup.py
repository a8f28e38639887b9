"""The harness itself: it stops every process it started, grandchildren included, also on Ctrl-C."""

from __future__ import annotations

import os
import time

import pytest

from tests.scheduler.cluster import AirflowCluster, free_port

pytestmark = pytest.mark.scheduler

# A component that leaves children behind in its process group, like the scheduler's LocalExecutor workers.
FAMILY = ["bash", "-c", "sleep 300 & sleep 300 & echo $! > children.pid; wait"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child that init has not reaped yet is a zombie: count it as gone.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def _start_family(cluster: AirflowCluster) -> int:
    cluster.root.mkdir(parents=True, exist_ok=True)
    cluster._spawn("scheduler", [], command=FAMILY)
    pid_file = cluster.root / "children.pid"
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, "the fake component did not start"
        time.sleep(0.1)
    return int(pid_file.read_text())


def test_stop_ends_the_whole_process_group(tmp_path) -> None:
    cluster = AirflowCluster(tmp_path / "c")
    child = _start_family(cluster)
    assert _alive(child) and cluster.leftover_processes()
    cluster.stop(grace_s=5)
    assert not cluster.leftover_processes()
    assert not _alive(child)


def test_ctrl_c_inside_the_block_stops_everything(tmp_path, monkeypatch) -> None:
    cluster = AirflowCluster(tmp_path / "c")
    started: list[int] = []
    monkeypatch.setattr(cluster, "start", lambda: started.append(_start_family(cluster)))
    with pytest.raises(KeyboardInterrupt), cluster:
        raise KeyboardInterrupt
    assert started and not _alive(started[0])
    assert not cluster.leftover_processes()


def test_free_port_is_free() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_a_drained_pipe_never_blocks_the_child(tmp_path) -> None:
    """fake-gcs-server's wrapper pipes its stderr and never reads it: a child writing more than a pipe holds blocks
    until someone reads. services.drain copies the pipe to a file, so the child finishes."""
    import subprocess
    import sys

    from tests.scheduler.services import drain

    code = "import sys; [sys.stderr.write('x' * 999 + '\\n') for _ in range(300)]"  # 300 kB, a pipe holds 64 kB
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
    thread = drain(proc.stderr, tmp_path / "child.log")
    assert proc.wait(timeout=60) == 0
    assert thread is not None
    thread.join(timeout=10)
    assert (tmp_path / "child.log").stat().st_size == 300_000
