"""The CeleryExecutor on 127.0.0.1: PostgreSQL metadata database, Redis broker, two ``airflow celery worker``
processes, plus the scheduler, dag-processor, triggerer and api-server of :class:`AirflowCluster`.

The Airflow settings the compose file and this tier share are read from ``docker-compose.yaml``'s
``x-airflow-common-env`` block (:func:`compose_airflow_env`): the same names and values, with only the host names,
ports, paths and secrets that differ on a test machine replaced. A change of executor settings in the compose file
reaches this tier without a second edit.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import yaml

from adpipeline.paths import REPO
from tests.scheduler import services
from tests.scheduler.cluster import COMPONENTS, AirflowCluster, _tail

COMPOSE_FILE = REPO / "docker-compose.yaml"
LOCAL_ONLY = (
    "AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__PLUGINS_FOLDER",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", "AIRFLOW__API_AUTH__JWT_SECRET_CMD",
    "AIRFLOW__CORE__FERNET_KEY_CMD", "AIRFLOW__API__SECRET_KEY_CMD", "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK",
    "ADP_HOME",
)  # fmt: skip
"""Compose settings that name container paths, hosts or secret files: the tier sets its own values for these. The
database, result backend and broker URLs are taken from the compose file (driver, database, user) with only the
service's host and port replaced (:data:`COMPOSE_HOSTS`)."""
TEST_MACHINE = {"AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30"}
"""Timing the tier sets beside the compose file's settings: a task's supervisor gives each Execution API call 5 s by
default, 5 tries; on a loaded 2-core CI machine with one api-server worker a task's first call (``run``) timed out
all five times (ReadTimeout in the worker log, the task failed before it started, then retried)."""
COMPOSE_HOSTS = {"postgres": 5432, "redis": 6379}
"""The compose services the URLs name, with their ports."""


def compose_airflow_env() -> dict[str, str]:
    """``x-airflow-common-env`` of docker-compose.yaml with ``${VAR:-default}`` resolved to its default, less the
    :data:`LOCAL_ONLY` names and the ``ADP_*`` backend pass-throughs (the tier sets its backends itself)."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    out = {}
    for name, value in compose["x-airflow-common-env"].items():
        if name in LOCAL_ONLY or name.startswith("ADP_"):
            continue
        text = str(value)
        while "${" in text:
            start = text.index("${")
            end = text.index("}", start)
            inner = text[start + 2 : end]
            default = inner.split(":-", 1)[1] if ":-" in inner else ""
            text = text[:start] + default + text[end + 1 :]
        out[name] = text
    return out


def compose_worker_queues() -> str:
    """The queues the compose file's worker serves: its ``--queues`` argument, else Celery's default queue."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    command = list(compose["services"]["airflow-worker"]["command"])
    for flag in ("-q", "--queues"):
        if flag in command:
            return str(command[command.index(flag) + 1])
    return "default"


@dataclass
class CeleryCluster(AirflowCluster):
    """:class:`AirflowCluster` on the CeleryExecutor with ``workers`` worker processes of ``worker_concurrency``
    slots each. PostgreSQL and Redis are started first and stopped last."""

    workers: int = 2
    worker_concurrency: int = 2
    _pg: services.Postgres | None = field(default=None, init=False)
    _redis: services.Redis | None = field(default=None, init=False)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, init=False)

    def env(self) -> dict[str, str]:
        env = super().env()
        for name in (
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC",
        ):
            env.pop(name, None)  # SQLite's
        if self._pg is None or self._redis is None:
            raise RuntimeError("start the cluster first (PostgreSQL and Redis)")
        shared = compose_airflow_env()
        shared["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(self.worker_concurrency)
        ports = {"postgres": self._pg.port, "redis": self._redis.port}
        for name in (
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
            "AIRFLOW__CELERY__RESULT_BACKEND",
            "AIRFLOW__CELERY__BROKER_URL",
        ):
            for host, port in COMPOSE_HOSTS.items():
                shared[name] = shared[name].replace(f"@{host}:{port}/", f"@127.0.0.1:{ports[host]}/")
                shared[name] = shared[name].replace(f"//{host}:{port}/", f"//127.0.0.1:{ports[host]}/")
        env.update(shared)
        env.update(
            {
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.scheduler.worker_hostname.hostname",
                **TEST_MACHINE,
                **self.adp_env,
            }
        )
        return env

    def start(self) -> None:
        services_root = self.root / "services"
        self._pg = self._stack.enter_context(services.postgres(services_root / "postgres"))
        self._redis = self._stack.enter_context(services.redis(services_root / "redis"))
        self.db_template = None  # a PostgreSQL database is migrated per cluster
        super().start()
        for index in range(1, self.workers + 1):
            self.start_worker(index)

    def start_worker(self, index: int) -> None:
        """Start (or restart) ``airflow celery worker`` number ``index`` (its own process group and log)."""
        self._spawn(
            f"worker-{index}",
            [
                "celery", "worker", "--celery-hostname", f"worker{index}@%h", "--queues", compose_worker_queues(),
                "--concurrency", str(self.worker_concurrency), "--skip-serve-logs",
            ],
            extra_env={"CELERY_TIER_WORKER_NAME": f"worker-{index}"},
        )  # fmt: skip

    def consume(self, index: int, on: bool) -> None:
        """Make worker ``index`` stop (``on=False``) or start again taking tasks from its queues (Celery remote
        control through the broker), e.g. so that the next task goes to the other worker."""
        import socket

        from celery import Celery

        if self._redis is None:
            raise RuntimeError("start the cluster first")
        destination = [f"worker{index}@{socket.gethostname()}"]
        app = Celery(broker=self.env()["AIRFLOW__CELERY__BROKER_URL"])
        try:
            for queue in compose_worker_queues().split(","):
                if on:
                    replies = app.control.add_consumer(queue, destination=destination, reply=True, timeout=30)
                else:
                    replies = app.control.cancel_consumer(queue, destination=destination, reply=True, timeout=30)
                if not replies:
                    raise RuntimeError(f"{destination[0]} did not answer the {'add' if on else 'cancel'}_consumer")
        finally:
            app.close()

    def stop(self, grace_s: float = 20.0) -> None:
        try:
            super().stop(grace_s)
        finally:
            self._stack.close()

    def diagnostics(self, lines: int = 40, task_lines: int = 60) -> str:
        out = [super().diagnostics(lines, task_lines)]
        for name in sorted(self._procs):
            if name in COMPONENTS:
                continue
            out.append(f"===== {name}: last {lines} lines of {self.log_dir / f'{name}.log'}")
            out.append(_tail(self.log_dir / f"{name}.log", lines))
        for service in (self._pg, self._redis):
            if service is not None:
                out.append(f"===== {service.log.name}")
                out.append(_tail(service.log, lines))
        return "\n".join(out)
