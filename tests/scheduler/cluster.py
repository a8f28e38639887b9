"""A real Airflow on 127.0.0.1 for tests: scheduler, dag-processor, triggerer and api-server as subprocesses.

The way production runs the DAGs (LocalExecutor workers, asset-triggered runs, pools, the REST API), not
``dag.test``. Everything lives in a temporary folder: AIRFLOW_HOME with a SQLite metadata database, the ADP_HOME the
tasks write the warehouse and bucket into, and one log file per component. :class:`AirflowCluster` is a context
manager: every process it started is stopped on exit (its whole process group, also on failure or Ctrl-C), and
:meth:`AirflowCluster.diagnostics` gives the tails of the component logs and of the failed tasks' logs for a test
failure message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from adpipeline.paths import DAGS, PLUGINS, REPO, api_server_env

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
UNFINISHED_RUN_STATES = {"queued", "running"}
FAILED_TASK_STATES = {"failed", "upstream_failed", "up_for_retry"}


class ClusterError(RuntimeError):
    """The cluster did not come up, or a wait ran out; the message carries the diagnostics."""


def free_port() -> int:
    """A port nobody listens on right now (bound to 127.0.0.1:0 and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def airflow_command() -> list[str]:
    """The ``airflow`` console script beside this interpreter (what production runs; a spawned child re-enters
    its ``__main__``), else ``python -m airflow``."""
    script = Path(sys.executable).with_name("airflow")
    return [str(script)] if script.exists() else [sys.executable, "-m", "airflow"]


@dataclass
class AirflowCluster:
    """Scheduler, dag-processor, triggerer and api-server for the repo's ``dags/`` in ``root``.

    ``adp_env`` is added to every component's environment (the tasks run in LocalExecutor workers forked from the
    scheduler, so it reaches them). ``parallelism``: LocalExecutor worker slots.
    """

    root: Path
    adp_env: dict[str, str] = field(default_factory=dict)
    parallelism: int = 4
    pools: dict[str, int] = field(default_factory=lambda: {"media_fetch": 4, "genai_api": 2})
    user: str = "adp-test"
    start_timeout_s: float = 240.0
    db_template: Path | None = None
    """A migrated metadata database to copy instead of migrating (it is written by the first cluster)."""
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    port: int = field(default_factory=free_port)
    _procs: dict[str, subprocess.Popen] = field(default_factory=dict, init=False)
    _token: str | None = field(default=None, init=False)
    _client: httpx.Client | None = field(default=None, init=False)
    _started_groups: list[int] = field(default_factory=list, init=False)
    notes: list[str] = field(default_factory=list, init=False)
    """Things the harness worked around (reported by the tests)."""

    # --- layout -------------------------------------------------------------------------------
    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def log_dir(self) -> Path:
        return self.root / "component-logs"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The environment of every Airflow process (and CLI call) of this cluster."""
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ADP_"))}
        home = self.airflow_home
        env = {
            **keep,
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), keep.get("PYTHONPATH", "")) if p),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "tests.scheduler.sqlite_connect.CONNECT_ARGS",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": "tests.scheduler.sqlite_connect.CONNECT_ARGS",
            # A free port, never 8080: the execution API URL and base URL derive from it as in scripts/ui.sh.
            **api_server_env({"AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": str(self.port)}),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": self._secret("api"),
            "AIRFLOW__API_AUTH__JWT_SECRET": self._secret("jwt"),
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.user}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.root / "passwords.json"),
            # The DAG files are serialised before the components start; re-parsing every 30 s only costs CPU.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            **self.adp_env,
        }
        return env

    _secrets: dict[str, str] = field(default_factory=dict, init=False)

    def _secret(self, name: str) -> str:
        return self._secrets.setdefault(name, secrets.token_urlsafe(32))

    # --- life cycle ---------------------------------------------------------------------------
    def __enter__(self) -> AirflowCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Migrate the metadata database, create the pools, serialise and unpause the adpipeline DAGs, start the
        four components and wait until the API answers with a token."""
        self.airflow_home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.root / "passwords.json").write_text(json.dumps({self.user: self.password}))
        db = self.airflow_home / "airflow.db"
        if self.db_template is not None and self.db_template.exists():
            shutil.copyfile(self.db_template, db)
        else:
            self.cli("db", "migrate", timeout=300)
            if self.db_template is not None:
                shutil.copyfile(db, self.db_template)
        self.init_airflow()
        # The api-server first: task processes report to its execution API from their first second.
        self._spawn("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"])
        self._wait_for_api()
        # Task logs are read from the shared local folder: no log servers (they would bind every interface).
        self._spawn("dag-processor", ["dag-processor"])
        self._spawn("triggerer", ["triggerer", "--skip-serve-logs"])
        self._spawn("scheduler", ["scheduler", "--skip-serve-logs"])

    def init_airflow(self) -> None:
        """Pools and unpaused DAGs: ``adpipeline airflow-init`` where the package has it, else the airflow CLI."""
        env = self.env()
        init = subprocess.run(
            [sys.executable, "-m", "adpipeline.cli", "airflow-init", "--help"], env=env, capture_output=True, text=True
        )
        if init.returncode == 0:
            self._run([sys.executable, "-m", "adpipeline.cli", "airflow-init"], timeout=300)
            for name, slots in self.pools.items():  # the test's slots win over the defaults in code
                self.cli("pools", "set", name, str(slots), f"{name} (test)")
            return
        for name, slots in self.pools.items():
            self.cli("pools", "set", name, str(slots), f"{name} (test)")
        self.cli("dags", "reserialize", timeout=300)
        self.cli("dags", "unpause", "--treat-dag-id-as-regex", "^adp_", "--yes")

    def _spawn(
        self, name: str, args: list[str], command: list[str] | None = None, extra_env: dict[str, str] | None = None
    ) -> None:
        """Start ``airflow ARGS`` (or ``command``) in its own session, output appended to
        ``component-logs/NAME.log``; ``extra_env`` is added to this one component's environment."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("ab")
        try:
            self._procs[name] = subprocess.Popen(
                command or [*airflow_command(), *args],
                env={**self.env(), **(extra_env or {})},
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stop() ends its workers and task processes too
            )
        finally:
            log.close()
        self._started_groups.append(self._procs[name].pid)

    def stop(self, grace_s: float = 20.0) -> None:
        """Stop every component with its whole process group: SIGTERM, then SIGKILL after ``grace_s``."""
        if self._client is not None:
            self._client.close()
            self._client = None
        procs = [p for p in self._procs.values()]
        # Task processes run in sessions of their own (the supervisor's setsid): end them with their component.
        below = [pid for proc in procs for pid in descendants(proc.pid)]
        self._started_groups += [pid for pid in below if pid not in self._started_groups and _is_group_leader(pid)]
        for proc in procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in procs:
            _signal_group(proc, signal.SIGKILL)  # also ends what the component left behind in its group
        for pid in below:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL) if _is_group_leader(pid) else os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self._procs.clear()
        deadline = time.monotonic() + 15  # killed group members take a moment to be reaped
        while self.leftover_processes() and time.monotonic() < deadline:
            time.sleep(0.2)

    def kill(self, name: str, sig: int = signal.SIGKILL, timeout_s: float = 30.0) -> None:
        """Send ``sig`` to component ``name``'s process group and to every process below it (a worker: its pool, the
        task supervisors and the task processes, which Airflow starts in sessions of their own: killing the group
        alone leaves them running, holding their work) and reap it; :meth:`check_alive` no longer counts it until
        it is started again."""
        proc = self._procs.pop(name)
        below = descendants(proc.pid)
        _signal_group(proc, sig)
        for pid in below:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout_s)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
        raise ClusterError(f"{name}'s process group {proc.pid} outlived {signal.Signals(sig).name}")

    def restart_scheduler(self) -> None:
        """Kill the scheduler with SIGKILL (no clean shutdown) and start a new one."""
        self.kill("scheduler")
        self._spawn("scheduler", ["scheduler", "--skip-serve-logs"])

    def leftover_processes(self) -> list[int]:
        """Process groups this cluster started that still exist (empty after :meth:`stop`)."""
        alive = []
        for pgid in self._started_groups:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                continue
            except PermissionError:
                pass
            alive.append(pgid)
        return alive

    def check_alive(self) -> None:
        dead = {name: p.returncode for name, p in self._procs.items() if p.poll() is not None}
        if dead:
            raise ClusterError(f"Airflow components exited: {dead}\n{self.diagnostics()}")

    # --- commands -----------------------------------------------------------------------------
    def cli(self, *args: str, timeout: float = 120) -> str:
        """Run ``airflow ARGS`` against this cluster; returns stdout, raises with the output on failure."""
        return self._run([*airflow_command(), *args], timeout=timeout)

    def _run(self, cmd: list[str], timeout: float) -> str:
        done = subprocess.run(cmd, env=self.env(), cwd=self.root, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise ClusterError(
                f"{' '.join(cmd[-6:])} exited {done.returncode}\n--- stdout\n{done.stdout[-3000:]}\n"
                f"--- stderr\n{done.stderr[-5000:]}"
            )
        return done.stdout

    def backfill(self, dag_id: str, from_date: dt.date, to_date: dt.date, tries: int = 10) -> str:
        """``airflow backfill create`` for logical dates ``from_date``..``to_date``.

        On SQLite the CLI's write can lose to the running scheduler's ("database is locked", at once when its read
        transaction cannot be upgraded, whatever the busy timeout); the backfill is one transaction, rolled back
        then, so it is simply run again. Each retry is noted in :attr:`notes`."""
        args = ["backfill", "create", "--dag-id", dag_id, "--from-date", from_date.isoformat()]
        args += ["--to-date", to_date.isoformat()]
        for attempt in range(1, tries + 1):
            try:
                return self.cli(*args)
            except ClusterError as exc:
                if "database is locked" not in str(exc) or attempt == tries:
                    raise
                self.notes.append(f"airflow backfill create: 'database is locked' on try {attempt}, run again")
                time.sleep(2 * attempt)
        raise AssertionError("unreachable")

    # --- REST API -----------------------------------------------------------------------------
    def _wait_for_api(self) -> None:
        def ready() -> bool:
            self.check_alive()
            try:
                return httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        self._wait(ready, self.start_timeout_s, f"the api-server on {self.base_url}")
        reply = httpx.post(
            f"{self.base_url}/auth/token", json={"username": self.user, "password": self.password}, timeout=30
        )
        if reply.status_code >= 300:
            raise ClusterError(f"no token from /auth/token: {reply.status_code} {reply.text[:500]}")
        self._token = reply.json()["access_token"]
        self._client = httpx.Client(
            base_url=f"{self.base_url}/api/v2", headers={"Authorization": f"Bearer {self._token}"}, timeout=60
        )

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the public REST API (``/api/v2`` + ``path``) with the bearer token; JSON answer or None on 404."""
        if self._client is None:
            raise ClusterError("the cluster is not started")
        reply = self._client.request(method, path, **kwargs)
        if reply.status_code == 404:
            return None
        if reply.status_code >= 300:
            raise ClusterError(f"{method} {path}: {reply.status_code} {reply.text[:1000]}")
        return reply.json() if reply.content else {}

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Trigger a manual run through the REST API; returns its run id."""
        body = {"logical_date": None, "conf": conf or {}}
        return str(self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = []
        while True:
            page = self.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100, "offset": len(runs)})
            got = (page or {}).get("dag_runs", [])
            runs += got
            if len(got) < 100:
                return runs

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        page = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
        return (page or {}).get("task_instances", [])

    def queued_asset_events(self, dag_id: str) -> list[dict[str, Any]]:
        """Asset events waiting to trigger a run of ``dag_id`` (the asset-triggering queue)."""
        page = self.api("GET", f"/dags/{dag_id}/assets/queuedEvents")
        return (page or {}).get("queued_events", [])

    def asset_events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while True:
            page = self.api("GET", "/assets/events", params={"limit": 100, "offset": len(events)})
            got = (page or {}).get("asset_events", [])
            events += got
            if len(got) < 100:
                return events

    # --- waiting ------------------------------------------------------------------------------
    def wait_quiet(
        self, dag_ids: Iterable[str], timeout_s: float, settle_s: float = 10.0, retries_allowed: bool = False
    ) -> None:
        """Wait until no run of ``dag_ids`` is queued or running and no asset event is queued for them, twice in a
        row ``settle_s`` apart (an asset-triggered run appears a scheduler loop after its event). Fails fast when a
        task failed or waits for a retry; with ``retries_allowed`` (a fault drill) only when a task failed for good."""
        dag_ids = list(dag_ids)
        failed_states = {"failed", "upstream_failed"} if retries_allowed else FAILED_TASK_STATES

        def busy() -> list[str]:
            self.check_alive()
            why = []
            for dag_id in dag_ids:
                for run in self.dag_runs(dag_id):
                    if run["state"] in UNFINISHED_RUN_STATES:
                        why.append(f"{dag_id} {run['dag_run_id']} {run['state']}")
                        bad = [
                            ti for ti in self.task_instances(dag_id, run["dag_run_id"]) if ti["state"] in failed_states
                        ]
                        if bad:
                            names = ", ".join(f"{t['task_id']}[{t.get('map_index', -1)}]={t['state']}" for t in bad)
                            raise ClusterError(f"{dag_id} {run['dag_run_id']}: {names}\n{self.diagnostics()}")
                if self.queued_asset_events(dag_id):
                    why.append(f"{dag_id} has queued asset events")
            return why

        deadline = time.monotonic() + timeout_s
        last: list[str] = []
        while time.monotonic() < deadline:
            last = busy()
            if not last:
                time.sleep(settle_s)
                last = busy()
                if not last:
                    return
            time.sleep(3)
        raise ClusterError(f"still busy after {timeout_s:.0f} s: {last}\n{self.diagnostics()}")

    def _wait(self, ready: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(1)
        raise ClusterError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{self.diagnostics()}")

    # --- diagnostics --------------------------------------------------------------------------
    def diagnostics(self, lines: int = 40, task_lines: int = 60) -> str:
        """Tails of every component log, then of the task logs of failed or retrying task instances (all task logs
        when the API cannot be asked)."""
        out = []
        for name in COMPONENTS:
            path = self.log_dir / f"{name}.log"
            state = self._procs.get(name)
            status = "not started" if state is None else ("running" if state.poll() is None else f"exit {state.poll()}")
            out.append(f"===== {name} ({status}): last {lines} lines of {path}")
            out.append(_tail(path, lines))
        for path in self._failed_task_logs():
            out.append(f"===== task log {path.relative_to(self.airflow_home)} (last {task_lines} lines)")
            out.append(_tail(path, task_lines))
        return "\n".join(out)

    def _failed_task_logs(self) -> list[Path]:
        logs_root = self.airflow_home / "logs"
        wanted: list[Path] = []
        try:
            for dag_id in self.dag_ids_seen():
                for run in self.dag_runs(dag_id):
                    for ti in self.task_instances(dag_id, run["dag_run_id"]):
                        if ti["state"] in FAILED_TASK_STATES:
                            folder = logs_root / f"dag_id={dag_id}" / f"run_id={run['dag_run_id']}"
                            wanted += sorted((folder / f"task_id={ti['task_id']}").rglob("*.log"))
        except Exception:  # noqa: BLE001 - diagnostics must not hide the failure they describe
            wanted = sorted(logs_root.rglob("*.log"))[-6:]
        return wanted[-8:]

    def dag_ids_seen(self) -> list[str]:
        page = self.api("GET", "/dags", params={"limit": 100}) or {}
        return [d["dag_id"] for d in page.get("dags", [])]

    def copy_logs(self, dest: Path) -> None:
        """Keep the component and task logs (e.g. for a CI artifact)."""
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.log_dir, dest / "components", dirs_exist_ok=True)
        if (self.airflow_home / "logs").exists():
            shutil.copytree(self.airflow_home / "logs", dest / "tasks", dirs_exist_ok=True)


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren, ...), from /proc; empty where there is none."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _is_group_leader(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _tail(path: Path, lines: int) -> str:
    if not path.exists():
        return "(no file)"
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 200 * lines))
        text = handle.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])
