"""Privacy pieces on small hand-made tables: suppression hooks, retention, audit, compaction, the DAG and the CLI."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from adpipeline.errors import ConfigurationError
from adpipeline.privacy import apply, suppression
from adpipeline.privacy.retention import expired_faces
from adpipeline.stages import privacy
from adpipeline.stages.context import StageContext
from adpipeline.tables import (
    TABLES,
    Creative,
    Face,
    FaceDetection,
    MediaFetch,
    PrivacySuppression,
)
from adpipeline.window import Window

DAY = dt.date(2026, 10, 10)
NOW = dt.datetime(2026, 10, 10, tzinfo=dt.UTC)


@pytest.fixture
def ctx(tmp_path):
    from tests.e2e.support import make_settings

    settings = make_settings(tmp_path / "home")
    with StageContext(settings, Window(DAY, DAY), run_id="unit") as context:
        yield context


def _vec(seed: int) -> list[float]:
    v = np.random.default_rng(seed).standard_normal(128)
    return [float(x) for x in v / np.linalg.norm(v)]


def _track(track_id: str, creative_id: str, first: float, last: float, face_id: str | None) -> FaceDetection:
    return FaceDetection(
        track_id=track_id,
        creative_id=creative_id,
        face_id=face_id,
        backend="dlib",
        model_id="m",
        first_time_s=first,
        last_time_s=last,
        best_time_s=first,
        n_frames=2,
        det_score=1.0,
        box_size_px=100,
        embedding=_vec(hash(track_id) % 1000),
        crop_path=None,
    )


def _seed(ctx: StageContext) -> None:
    """Two videos with the same bytes (c1, c2) and one other (c3); faces fa (c1, c3) and fb (c1)."""
    wh = ctx.warehouse
    wh.merge_rows(
        "creatives",
        [
            Creative(creative_id=c, url=f"/v/{c}.mp4", media_type="video", first_seen_date=d, last_seen_date=d)
            for c, d in (("c1", dt.date(2026, 1, 5)), ("c2", DAY), ("c3", DAY))
        ],
    )
    wh.merge_rows(
        "media_fetches",
        [
            MediaFetch(creative_id=c, url=f"/v/{c}.mp4", media_type="video", status="ok", sha256=s)
            for c, s in (("c1", "s1"), ("c2", "s1"), ("c3", "s3"))
        ],
    )
    tracks = [
        _track("c1_t0", "c1", 1.0, 4.0, "fa"),
        _track("c1_t1", "c1", 2.0, 6.0, "fb"),
        _track("c3_t0", "c3", 0.5, 3.0, "fa"),
    ]
    for t in tracks:
        t.crop_path = ctx.bucket.put_bytes(f"faces/crops/{t.track_id}.jpg", f"jpeg of {t.track_id}".encode())
    wh.merge_rows("face_detections", tracks)
    wh.merge_rows(
        "faces",
        [
            Face(
                face_id=f,
                backend="dlib",
                model_id="m",
                centroid=_vec(i),
                n_tracks=n,
                n_videos=n,
                first_creative_id="c1",
                best_track_id=best,
                best_crop_path=ctx.bucket.uri(f"faces/crops/{best}.jpg"),
            )
            for i, (f, n, best) in enumerate((("fa", 2, "c1_t0"), ("fb", 1, "c1_t1")))
        ],
    )


def test_privacy_tables_hold_no_vectors_and_no_plain_ids() -> None:
    for name in ("privacy_requests", "privacy_suppressions"):
        for fname, info in TABLES[name].model.model_fields.items():
            assert "float]" not in str(info.annotation), (name, fname)
    assert suppression.subject_digest("face_id", "fa") != suppression.subject_digest("customer_id", "fa")
    assert len(suppression.subject_digest("face_id", "fa")) == 64


def test_exactly_one_subject(ctx) -> None:
    with pytest.raises(ConfigurationError):
        privacy.forget_person(ctx)
    with pytest.raises(ConfigurationError):
        privacy.forget_person(ctx, customer_id="c", face_id="f")


def test_forget_face_deletes_its_rows_and_crops_only(ctx) -> None:
    _seed(ctx)
    out = privacy.forget_person(ctx, face_id="fa", triggered_by="unit")
    assert out["counts"] == {
        "bucket:faces/crops/ (delete)": 2,
        "table:faces (delete)": 1,
        "table:face_detections (delete)": 2,
    }
    wh = ctx.warehouse
    assert list(wh.read_table("faces")["face_id"]) == ["fb"]
    assert list(wh.read_table("face_detections")["track_id"]) == ["c1_t1"]
    assert sorted(ctx.bucket.list("faces/crops/")) == ["faces/crops/c1_t1.jpg"]
    rows = wh.read_table("privacy_suppressions", order_by="kind, digest")
    assert sorted(rows["kind"]) == ["face", "track", "track"]
    seg = rows[rows["kind"] == "track"].sort_values("start_s")
    assert list(seg["creative_id"]) == ["c3", "c1"] and list(seg["video_sha256"]) == ["s3", "s1"]
    assert not any("fa" == v or "c1_t0" == v for v in rows.astype(str).to_numpy().ravel())


def test_detect_hook_drops_tracks_in_forgotten_segments(ctx) -> None:
    _seed(ctx)
    privacy.forget_person(ctx, face_id="fa", triggered_by="unit")
    segments = suppression.forgotten_segments(ctx)

    @dataclass
    class T:
        first_time_s: float
        last_time_s: float

    @dataclass
    class Result:
        creative_id: str
        tracks: list = field(default_factory=list)

    # Same bytes under another creative (c2 = s1), overlapping c1's segment 1-4 s: dropped; 6-9 s: kept.
    result = segments.drop_from(Result("c2", [T(3.0, 3.5), T(6.0, 9.0)]), "s1")
    assert [(t.first_time_s, t.last_time_s) for t in result.tracks] == [(6.0, 9.0)]
    # Half a sample interval of slack (1 fps): a track ending 0.4 s before the segment still overlaps.
    assert segments.matches("c3", None, 0.0, 0.1) and not segments.matches("c3", None, 3.6, 5.0)
    assert segments.drop_from(Result("c9", [T(1.0, 2.0)]), "s9").tracks == [T(1.0, 2.0)]


def test_cluster_hook_deletes_unassigned_tracks_of_forgotten_people(ctx) -> None:
    _seed(ctx)
    privacy.forget_person(ctx, face_id="fa", triggered_by="unit")
    wh = ctx.warehouse
    # A detection task that ran during the forget wrote these (face_id NULL); fb's assigned track stays.
    late = [
        _track("c1_t0", "c1", 1.0, 4.0, None),
        _track("c2_t0", "c2", 3.0, 5.0, None),
        _track("c3_t5", "c3", 10.0, 12.0, None),
    ]
    for t in late:
        t.crop_path = ctx.bucket.put_bytes(f"faces/crops/{t.track_id}.jpg", b"x")
    wh.merge_rows("face_detections", late)
    frame = wh.query("SELECT track_id FROM {{ face_detections }} WHERE face_id IS NULL ORDER BY track_id")
    kept = suppression.drop_forgotten_tracks(ctx, frame)
    assert list(kept["track_id"]) == ["c3_t5"]
    assert sorted(wh.read_table("face_detections")["track_id"]) == ["c1_t1", "c3_t5"]
    assert not ctx.bucket.exists("faces/crops/c2_t0.jpg") and ctx.bucket.exists("faces/crops/c3_t5.jpg")


def test_enforce_deletes_a_forgotten_face_that_came_back(ctx) -> None:
    _seed(ctx)
    privacy.forget_person(ctx, face_id="fb", triggered_by="unit")
    # A clustering task that read its state before the forget writes fb again.
    _seed(ctx)
    out = privacy.enforce(ctx, triggered_by="unit")
    assert out["found"] == 1
    assert sorted(ctx.warehouse.read_table("faces")["face_id"]) == ["fa"]
    assert privacy.enforce(ctx, triggered_by="unit")["found"] == 0
    audit = ctx.warehouse.read_table("privacy_requests")
    assert sorted(audit["action"]) == ["enforce", "forget"]


def test_dry_run_counts_equal_the_deletion_and_the_audit(ctx) -> None:
    _seed(ctx)
    dry = privacy.forget_person(ctx, face_id="fb", dry_run=True, triggered_by="unit")
    assert len(ctx.warehouse.read_table("faces")) == 2 and ctx.bucket.exists("faces/crops/c1_t1.jpg")
    assert (
        not ctx.warehouse.table_exists("privacy_suppressions") or ctx.warehouse.read_table("privacy_suppressions").empty
    )
    done = privacy.forget_person(ctx, face_id="fb", triggered_by="unit")
    assert done["counts"] == dry["counts"]
    audit = ctx.warehouse.read_table("privacy_requests", order_by="requested_at")
    assert list(audit["status"]) == ["listed", "done"]
    assert [json.loads(c) for c in audit["counts_json"]][0] == json.loads(audit["counts_json"].iloc[1])
    assert audit["finished_at"].notna().all()


def test_a_retry_after_a_crash_finishes_the_request(ctx, monkeypatch) -> None:
    _seed(ctx)
    calls = {"n": 0}
    real_apply = apply.apply_change

    def crash_on_second(context, change):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed")
        real_apply(context, change)

    monkeypatch.setattr(apply, "apply_change", crash_on_second)
    with pytest.raises(RuntimeError):
        privacy.forget_person(ctx, face_id="fa", triggered_by="unit", request_id="r1")
    monkeypatch.setattr(apply, "apply_change", real_apply)
    out = privacy.forget_person(ctx, face_id="fa", triggered_by="unit", request_id="r1")
    assert out["counts"]["bucket:faces/crops/ (delete)"] == 0, "the first attempt deleted the crops"
    assert out["counts"]["table:face_detections (delete)"] == 2
    assert sorted(ctx.warehouse.read_table("faces")["face_id"]) == ["fb"]
    audit = ctx.warehouse.read_table("privacy_requests")
    assert list(audit["status"]) == ["done"] and "retry" in audit["note"].iloc[0]


def test_unknown_face_is_a_zero_count_request(ctx) -> None:
    out = privacy.forget_person(ctx, face_id="f_nobody", triggered_by="unit")
    assert all(v == 0 for v in out["counts"].values())
    assert ctx.warehouse.read_table("privacy_requests")["status"].tolist() == ["done"]


def test_retention_removes_crops_and_vectors_of_faces_in_no_recent_ad(ctx) -> None:
    from adpipeline.settings import Settings

    _seed(ctx)
    ctx.settings = Settings(**{**ctx.settings.model_dump(), "face_retention_days": 30})
    # fb is only in c1 (last ad 2026-01-05): expired; fa is also in c3 (an ad on DAY): kept.
    assert expired_faces(ctx) == ["fb"]
    out = privacy.retention(ctx, triggered_by="unit")
    assert out["counts"] == {
        "bucket:faces/crops/ (delete)": 1,
        "table:faces (update)": 1,
        "table:face_detections (update)": 1,
    }
    wh = ctx.warehouse
    faces = wh.read_table("faces", order_by="face_id")
    assert [len(c) for c in faces["centroid"]] == [128, 0]
    assert faces["best_crop_path"].isna().tolist() == [False, True]
    tracks = wh.read_table("face_detections", order_by="track_id")
    assert {t: len(e) for t, e in zip(tracks["track_id"], tracks["embedding"], strict=True)} == {
        "c1_t0": 128,
        "c1_t1": 0,
        "c3_t0": 128,
    }
    assert tracks.set_index("track_id").loc["c1_t1", "face_id"] == "fb", "the id stays for the performance tables"
    assert not ctx.bucket.exists("faces/crops/c1_t1.jpg")
    known = wh.query_file("faces/select_known_faces", {"backend": "dlib", "model_id": "m"})
    assert list(known["face_id"]) == ["fa"], "a retired face is never compared again"
    again = privacy.retention(ctx, triggered_by="unit")
    assert again["faces"] == 0 and all(v == 0 for v in again["counts"].values())
    assert sorted(wh.read_table("privacy_requests")["action"]) == ["retention", "retention"]


def test_forget_leaves_no_bytes_in_the_duckdb_file(ctx) -> None:
    import hashlib

    _seed(ctx)
    wh = ctx.warehouse
    digests = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(3000)]
    rows = [PrivacySuppression(request_id="r", kind="x", digest=d, created_at=NOW) for d in digests]
    wh.merge_rows("privacy_suppressions", rows)  # enough rows that DuckDB writes real blocks
    gone = digests[42]
    wh.delete_where("privacy_suppressions", "digest = @d", {"d": gone})
    path = ctx.settings.resolved_duckdb_path
    with wh.session() as con:
        con.execute("CHECKPOINT")
    assert gone.encode() in path.read_bytes(), "DuckDB keeps deleted bytes until the file is rewritten"
    assert apply.compact(ctx)
    data = path.read_bytes()
    assert gone.encode() not in data and digests[43].encode() in data
    assert sorted(wh.read_table("faces")["face_id"]) == ["fa", "fb"], "the rewrite keeps every table"
    assert len(wh.read_table("privacy_suppressions")) == 2999


def test_cli_forget(ctx, monkeypatch) -> None:
    from typer.testing import CliRunner

    from adpipeline.cli import app

    _seed(ctx)
    monkeypatch.setenv("ADP_HOME", str(ctx.settings.home))
    monkeypatch.setenv("ADP_ALLOW_LOCAL_PATHS", "true")
    runner = CliRunner()
    dry = runner.invoke(app, ["forget", "--face-id", "fb", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "table:faces (delete)" in dry.output and "would change" in dry.output
    assert runner.invoke(app, ["forget", "--face-id", "fb", "--customer-id", "x"]).exit_code != 0
    done = runner.invoke(app, ["forget", "--face-id", "fb"])
    assert done.exit_code == 0, done.output
    audit = ctx.warehouse.read_table("privacy_requests", order_by="requested_at")
    assert all(who.startswith("cli:") for who in audit["triggered_by"])
    assert sorted(ctx.warehouse.read_table("faces")["face_id"]) == ["fa"]


@pytest.mark.airflow
def test_forget_dag_runs_with_params(ctx, airflow_db, monkeypatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from adpipeline.paths import DAGS
    from adpipeline.settings import get_settings

    _seed(ctx)
    monkeypatch.setenv("ADP_HOME", str(ctx.settings.home))
    monkeypatch.setenv("ADP_ALLOW_LOCAL_PATHS", "true")
    get_settings.cache_clear()
    bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors
    dag = bag.get_dag("adp_forget_person")
    assert dag.schedule is None or str(dag.timetable.summary) in ("None", "")
    assert dag.params["dry_run"] is True, "a trigger from the UI lists first"
    run = dag.test(run_conf={"face_id": "fb", "dry_run": False})
    assert str(run.state) == "success"
    audit = ctx.warehouse.read_table("privacy_requests")
    assert audit["triggered_by"].iloc[0].startswith("airflow:") and "run" in audit["triggered_by"].iloc[0]
    assert audit["request_id"].iloc[0].startswith("adp_forget_person:")
    assert sorted(ctx.warehouse.read_table("faces")["face_id"]) == ["fa"]
    privacy_dag = bag.get_dag("adp_privacy")
    assert [t.task_id for t in privacy_dag.topological_sort()] == ["enforce_suppressions", "apply_retention"]
