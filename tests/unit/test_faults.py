"""adpipeline.faults: the fault points of the Celery tier's drill are inert unless armed, and fire once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from adpipeline.faults import FAULT_DIR_ENV, HOLD_S_ENV, WORKER_ENV, fault_point


def test_nothing_happens_without_a_fault_folder_or_an_armed_point(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(FAULT_DIR_ENV, raising=False)
    (tmp_path / "p.armed").write_text("kill")
    fault_point("p")  # no folder named: inert although armed
    monkeypatch.setenv(FAULT_DIR_ENV, str(tmp_path))
    fault_point("other")
    assert not list(tmp_path.glob("*.fired"))


def test_a_hold_fires_once_only_in_its_worker_and_waits_for_the_release(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(FAULT_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(HOLD_S_ENV, "30")
    (tmp_path / "p.armed").write_text("hold worker-2")
    monkeypatch.setenv(WORKER_ENV, "worker-1")
    fault_point("p")
    assert not (tmp_path / "p.fired").exists()
    monkeypatch.setenv(WORKER_ENV, "worker-2")
    (tmp_path / "p.release").touch()
    fault_point("p")
    assert json.loads((tmp_path / "p.fired").read_text())["worker"] == "worker-2"
    (tmp_path / "p.release").unlink()
    fault_point("p")  # fired already: passes through without waiting for a release


def test_a_hold_gives_up_after_its_time(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(FAULT_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(HOLD_S_ENV, "0.2")
    (tmp_path / "p.armed").write_text("hold")
    fault_point("p")
    assert (tmp_path / "p.fired").exists()


@pytest.mark.timeout(60)
def test_kill_ends_the_process_with_sigkill_once(tmp_path) -> None:
    code = "from adpipeline.faults import fault_point; fault_point('p'); print('passed')"
    env = {FAULT_DIR_ENV: str(tmp_path)}
    (tmp_path / "p.armed").write_text("kill")
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert first.returncode == -signal.SIGKILL and "passed" not in first.stdout
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert second.returncode == 0 and "passed" in second.stdout
