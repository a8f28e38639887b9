"""The Celery tier and docker-compose.yaml share their Airflow settings: the tier reads the compose file's
``x-airflow-common-env`` and the worker's queues, and replaces only host names, ports, paths and secrets."""

from __future__ import annotations

import yaml

from tests.scheduler.celery_cluster import COMPOSE_FILE, LOCAL_ONLY, compose_airflow_env, compose_worker_queues


def test_the_tier_takes_the_compose_files_settings() -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())["x-airflow-common-env"]
    shared = compose_airflow_env()
    assert shared["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert shared["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "4"  # ${AIRFLOW_WORKER_CONCURRENCY:-4}
    # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which the image lacks: the driver is named.
    assert shared["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert shared["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://")
    assert "@postgres:5432/" in shared["AIRFLOW__CELERY__RESULT_BACKEND"]
    assert shared["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    # Every compose setting reaches the tier, except the ones that name container hosts, paths or secret files
    # and the adpipeline backend pass-throughs (the tier points those at its emulators).
    assert set(shared) == {k for k in compose if k not in LOCAL_ONLY and not k.startswith("ADP_")}
    assert not [v for v in shared.values() if "${" in v]
    assert set(LOCAL_ONLY) <= set(compose), "a name the tier overrides is gone from the compose file"


def test_workers_serve_the_compose_files_queues() -> None:
    assert compose_worker_queues() == "default"
