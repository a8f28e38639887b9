"""DAG integrity and shape: every DAG imports, is wired as documented, and does no work at import time."""

from __future__ import annotations

import subprocess
import sys

import pytest

from adpipeline.paths import DAGS

pytestmark = pytest.mark.airflow

EXPECTED = {
    "adp_import": (["merge_into_creatives"], "timetable", []),
    "adp_media": (
        ["plan_media", "fetch_and_analyse", "merge_duplicate_groups"],
        "asset",
        ["adpipeline.creatives"],
    ),
    "adp_features": (["plan_features", "extract_features", "finish_features"], "asset", ["adpipeline.media"]),
    "adp_feature_batches": (["any_open_batches", "collect_batches"], "asset", ["adpipeline.features"]),
    "adp_faces": (
        ["plan_faces", "detect_faces", "cluster_faces", "rebuild_face_performance"],
        "asset",
        ["adpipeline.media"],
    ),
    "adp_final": (
        ["rebuild_ads_enriched"],
        "asset",
        [f"adpipeline.{name}" for name in ("creatives", "media", "features", "feature_batches", "faces", "gallery")],
    ),
}

OTHER_DAGS = {"adp_forget_person", "adp_privacy", "adp_gallery", "adp_face_verify"}
"""DAGs outside the import → final chain (manual ones with Params, daily maintenance, the gallery): their shapes
are tested beside their stages (tests/privacy, tests/faces)."""


@pytest.fixture(scope="module")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == set(EXPECTED) | OTHER_DAGS


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_dag_shape(dagbag, dag_id: str) -> None:
    from airflow.sdk import Asset

    dag = dagbag.get_dag(dag_id)
    tasks, kind, upstream_assets = EXPECTED[dag_id]
    assert [t.task_id for t in dag.topological_sort()] == tasks
    assert dag.doc_md and dag.doc_md.strip().startswith("###"), "each DAG's docstring is its doc_md"
    assert "adpipeline" in dag.tags
    assert dag.max_active_runs == 1, "one run at a time: two runs would take the same pending work"
    if kind == "timetable":
        assert set(dag.params.keys()) >= {"start", "end"}, "UI triggers take a date range"
        assert all("Empty" in dag.params.get_param(k).description for k in ("start", "end"))
        assert dag.catchup is False, "unpausing must not start a surprise catch-up (ADP_SCHEDULE_CATCHUP)"
        assert "CronDataIntervalTimetable" in type(dag.timetable).__name__
    else:
        names = (
            {a.name for a in dag.timetable.asset_condition.iter_assets().values()}
            if hasattr(dag.timetable.asset_condition, "iter_assets")
            else set()
        )
        assert set(upstream_assets) <= names or not names, names
    outlets = [o for t in dag.tasks for o in t.outlets if isinstance(o, Asset)]
    assert len(outlets) == 1, "each DAG emits exactly one asset, from its last task"
    last = dag.topological_sort()[-1]
    assert outlets[0] in last.outlets


def test_asset_chain_is_connected(dagbag) -> None:
    """Every asset a DAG waits for is emitted by some DAG."""
    emitted = {o.name for d in dagbag.dags.values() for t in d.tasks for o in t.outlets}
    for dag_id, (_tasks, _kind, upstream) in EXPECTED.items():
        assert set(upstream) <= emitted, dag_id


def test_final_runs_after_any_upstream_event(dagbag) -> None:
    """One event of any asset whose DAG writes a table the final reads queues a final run: an "all of" condition
    waited for a faces event that never came and left ads_enriched stale (issue 22)."""
    from airflow.sdk import Asset, AssetAny

    dag = dagbag.get_dag("adp_final")
    condition = dag.timetable.asset_condition
    upstream = EXPECTED["adp_final"][2]
    assert isinstance(condition, AssetAny), type(condition)
    assert all(isinstance(member, Asset) for member in condition.objects), "a nested all-of would wait again"
    assert {a.name for a in condition.objects} == set(upstream)
    # Every DAG that writes a table the final reads emits one of these (the privacy DAGs fix their rows themselves).
    emitted_by = {o.name: d.dag_id for d in dagbag.dags.values() for t in d.tasks for o in t.outlets}
    assert {emitted_by[name] for name in upstream} == {
        "adp_import", "adp_media", "adp_features", "adp_feature_batches", "adp_faces", "adp_gallery",
    }  # fmt: skip


def test_external_api_tasks_use_pools(dagbag) -> None:
    from adpipeline.airflow_adapter import POOLS

    pools = {t.task_id: t.pool for d in dagbag.dags.values() for t in d.tasks}
    assert pools["fetch_and_analyse"] == "media_fetch"
    assert pools["extract_features"] == "genai_api"
    used = {t.pool for d in dagbag.dags.values() for t in d.tasks} - {"default_pool"}
    assert used <= set(POOLS), "every pool a task uses is created by `adpipeline airflow-init`"


def test_work_fans_out_as_mapped_tasks(dagbag) -> None:
    """Fetching, features and faces run one mapped task per chunk of pending work; the reduce step after each
    runs even when nothing was pending (no mapped instance), and fails when a chunk failed."""
    for dag_id, mapped, reduce in (
        ("adp_media", "fetch_and_analyse", "merge_duplicate_groups"),
        ("adp_features", "extract_features", "finish_features"),
        ("adp_faces", "detect_faces", "cluster_faces"),
    ):
        dag = dagbag.get_dag(dag_id)
        assert type(dag.get_task(mapped)).__name__.endswith("MappedOperator"), dag_id
        assert dag.get_task(reduce).trigger_rule == "none_failed", dag_id


def test_tasks_fail_fast_and_report(dagbag) -> None:
    from adpipeline.airflow_adapter import notify_failure

    for dag in dagbag.dags.values():
        for t in dag.tasks:
            assert t.on_failure_callback in (notify_failure, [notify_failure]), (dag.dag_id, t.task_id)


def test_batch_collector_frees_its_worker(dagbag) -> None:
    """Waiting for Gemini Batch jobs holds no worker slot and lives in its own DAG, so later days of adp_features
    are not held behind it (max_active_runs=1)."""
    sensor = dagbag.get_dag("adp_feature_batches").get_task("collect_batches")
    assert sensor.mode == "reschedule"
    assert not any(t.task_type.endswith("Sensor") for t in dagbag.get_dag("adp_features").tasks)


def test_dag_files_do_no_heavy_imports() -> None:
    """Parsing the DAG folder must not import the heavy libraries or touch the warehouse."""
    code = (
        "import sys, runpy, glob\n"
        f"for f in sorted(glob.glob({str(DAGS)!r} + '/*.py')): runpy.run_path(f)\n"
        "heavy = [m for m in ('duckdb', 'cv2', 'dlib', 'google.cloud.bigquery', 'pandas', 'av', 'onnxruntime',"
        " 'adpipeline.stages', 'adpipeline.warehouse') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_package_does_not_import_airflow() -> None:
    """Only adpipeline.airflow_adapter may import Airflow (and google_auth, see ALLOWED)."""
    import pathlib

    # google_auth.py reads the Google connection through the Google provider's hook (lazily, inside a function, and
    # only when a connection is to be read), so the package keeps working without Airflow installed.
    allowed = {"airflow_adapter.py", "google_auth.py"}

    root = pathlib.Path(__file__).resolve().parents[2] / "adpipeline"
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if p.name not in allowed
        and any(line.lstrip().startswith(("import airflow", "from airflow")) for line in p.read_text().splitlines())
    ]
    assert offenders == []
