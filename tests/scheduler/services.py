"""PostgreSQL and Redis from the system packages, started on 127.0.0.1 for the Celery tier (no containers).

``scripts/test.sh`` installs the Debian packages ``postgresql`` and ``redis-server`` when they are missing. Each
server lives in a temporary folder, listens on a free port on 127.0.0.1 only, and is stopped with its process group
on exit. PostgreSQL refuses to run as root: as root the server runs as the ``postgres`` system user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tests.scheduler.cluster import free_port


class ServiceMissing(RuntimeError):
    """A server binary is not installed (scripts/test.sh installs it)."""


def postgres_bin(name: str) -> str:
    """A PostgreSQL server binary (``initdb``, ``pg_ctl``, ``postgres``): on PATH, else the newest under
    ``/usr/lib/postgresql/*/bin`` (where Debian puts them)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    raise ServiceMissing(f"PostgreSQL's {name} not found: apt-get install postgresql (scripts/test.sh does)")


def _as_user() -> list[str]:
    """``runuser -u postgres --`` when root (initdb and postgres refuse to run as root)."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def _wait_port(port: int, timeout_s: float, proc: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode}:\n{_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} in {timeout_s:.0f} s:\n{_tail(log)}")


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace_s: float = 15) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@dataclass
class Postgres:
    """A running PostgreSQL: database ``airflow``, user ``airflow`` (trust auth on 127.0.0.1)."""

    port: int
    log: Path

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg2://airflow@127.0.0.1:{self.port}/airflow"


@contextlib.contextmanager
def postgres(root: Path, timeout_s: float = 60) -> Generator[Postgres, None, None]:
    """initdb into ``root/pgdata``, start the server on a free port, create the ``airflow`` database; stop on exit."""
    root.mkdir(parents=True, exist_ok=True)
    log = root / "postgres.log"
    # Its own folder outside the test's (which root's 0700 folders would hide from the postgres user).
    own = Path(tempfile.mkdtemp(prefix="adp-pg-"))
    data, sockets = own / "data", own / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        for path in (own, sockets):
            shutil.chown(path, "postgres")
    initdb = [*_as_user(), postgres_bin("initdb"), "-D", str(data), "-U", "airflow", "--auth=trust", "-E", "UTF8"]
    done = subprocess.run(initdb, capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed: {done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                *_as_user(),
                postgres_bin("postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={sockets}",
                "-c",
                "max_connections=200",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
            ],  # fmt: skip
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait_port(port, timeout_s, proc, log, "postgres")
        deadline = time.monotonic() + timeout_s
        while True:  # the port opens before the server accepts logins
            made = subprocess.run(
                [*_as_user(), postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "airflow", "airflow"],
                capture_output=True,
                text=True,
            )
            if made.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"createdb failed: {made.stderr[-2000:]}\n{_tail(log)}")
            time.sleep(0.5)
        yield Postgres(port=port, log=log)
    finally:
        _stop(proc, signal.SIGINT)  # PostgreSQL's fast shutdown
        shutil.rmtree(own, ignore_errors=True)


@dataclass
class Redis:
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@contextlib.contextmanager
def redis(root: Path, timeout_s: float = 30) -> Generator[Redis, None, None]:
    """redis-server on a free port, no persistence; stopped on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceMissing("redis-server not found: apt-get install redis-server (scripts/test.sh does)")
    root.mkdir(parents=True, exist_ok=True)
    port, log = free_port(), root / "redis.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(root),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait_port(port, timeout_s, proc, log, "redis-server")
        yield Redis(port=port, log=log)
    finally:
        _stop(proc)


def drain(stream: IO[bytes] | None, path: Path) -> threading.Thread | None:
    """Copy a child's output pipe to ``path`` in a daemon thread until it closes (a pipe nobody reads blocks the
    child's writes once full)."""
    if stream is None:
        return None

    def copy() -> None:
        with path.open("ab") as out, contextlib.suppress(OSError, ValueError):
            for line in iter(stream.readline, b""):
                out.write(line)
                out.flush()

    thread = threading.Thread(target=copy, name=f"drain {path.name}", daemon=True)
    thread.start()
    return thread
