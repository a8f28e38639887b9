"""End to end: the demo chain, a person forgotten, nothing of them left anywhere, and they do not come back."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from adpipeline import privacy
from adpipeline.bucket import Bucket
from adpipeline.stages import faces as faces_stage
from adpipeline.stages import final as final_stage
from adpipeline.stages.chain import run_direct
from adpipeline.stages.context import StageContext
from adpipeline.warehouse import get_warehouse
from adpipeline.window import Window
from tests.e2e.support import START, load_sample, make_settings, table_checksums
from tests.privacy.scan import face_traces, scan

pytestmark = pytest.mark.slow

DAY = dt.timedelta(days=1)


def _row_counts(settings) -> dict[str, int]:
    with get_warehouse(settings) as wh:
        names = wh.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")["table_name"]
        return {n: int(wh.query(f"SELECT COUNT(*) AS n FROM {{{{ {n} }}}}").iloc[0]["n"]) for n in names}


def _objects(settings, prefix: str) -> set[str]:
    return set(Bucket(settings.resolved_bucket_url).list(prefix))


def _video_only_face(settings) -> str:
    """A face that shares a video with another face when the demo has one (so ads_enriched keeps other ids)."""
    with get_warehouse(settings) as wh:
        frame = wh.query(
            "SELECT face_id, COUNT(DISTINCT creative_id) AS n FROM {{ face_detections }} "
            "WHERE face_id IS NOT NULL GROUP BY face_id ORDER BY n DESC, face_id"
        )
        shared = wh.query(
            "SELECT DISTINCT a.face_id FROM {{ face_detections }} AS a JOIN {{ face_detections }} AS b "
            "ON a.creative_id = b.creative_id AND a.face_id <> b.face_id WHERE a.face_id IS NOT NULL "
            "AND b.face_id IS NOT NULL ORDER BY a.face_id"
        )
    assert len(frame) >= 2, "the demo slice has at least two unique faces"
    return str(shared.iloc[0]["face_id"] if len(shared) else frame.iloc[0]["face_id"])


def test_forget_a_face_everywhere_and_it_stays_forgotten(small_sample, tmp_path) -> None:
    settings = make_settings(tmp_path / "home")
    load_sample(settings, small_sample)
    run_direct(settings, Window(START, START + 2 * DAY))
    face_id = _video_only_face(settings)
    traces = face_traces(settings, face_id)
    assert scan(settings, traces, raw_file=False), "the scan finds the face before it is forgotten"
    with get_warehouse(settings) as wh:
        enriched_with = int(
            wh.query("SELECT COUNT(*) AS n FROM {{ ads_enriched }} WHERE @f IN UNNEST(face_ids)", {"f": face_id}).iloc[
                0
            ]["n"]
        )
        videos = sorted(
            wh.query("SELECT DISTINCT creative_id FROM {{ face_detections }} WHERE face_id = @f", {"f": face_id})[
                "creative_id"
            ]
        )

    # Dry run: lists, changes nothing but the audit table.
    before_rows, before_crops = _row_counts(settings), _objects(settings, "faces/crops/")
    window = Window(START + 2 * DAY, START + 2 * DAY)
    with StageContext(settings, window, run_id="test") as ctx:
        dry = privacy.forget_person(ctx, face_id=face_id, dry_run=True, triggered_by="test")
    after_dry = _row_counts(settings)
    assert {k: v for k, v in after_dry.items() if not k.startswith("privacy_")} == {
        k: v for k, v in before_rows.items() if not k.startswith("privacy_")
    }
    assert _objects(settings, "faces/crops/") == before_crops
    assert dry["counts"]["table:faces (delete)"] == 1
    assert dry["counts"]["table:face_detections (delete)"] == len(traces.ids) - 1
    assert dry["counts"]["table:ads_enriched (update)"] == enriched_with > 0
    assert dry["counts"]["bucket:faces/crops/ (delete)"] >= 1

    # The real run deletes exactly what the dry run listed.
    with StageContext(settings, window, run_id="test") as ctx:
        done = privacy.forget_person(ctx, face_id=face_id, triggered_by="test")
    assert done["counts"] == dry["counts"]
    after_rows = _row_counts(settings)
    for table in ("faces", "face_detections", "face_performance"):
        assert before_rows[table] - after_rows[table] == dry["counts"].get(f"table:{table} (delete)", 0), table
    assert after_rows["ads_enriched"] == before_rows["ads_enriched"]
    assert len(before_crops - _objects(settings, "faces/crops/")) == dry["counts"]["bucket:faces/crops/ (delete)"]
    assert scan(settings, traces) == []

    # Recomputed without them: a rebuild of the derived tables gives what the DML left.
    derived = ("face_performance", "ads_enriched")
    left = {t: v for t, v in table_checksums(settings).items() if t in derived}
    with StageContext(settings, window, run_id="test") as ctx:
        faces_stage.performance(ctx)
        final_stage.run(ctx)
    assert {t: v for t, v in table_checksums(settings).items() if t in derived} == left

    # The audit: one row per request, counts, who; no ids, no vectors.
    with get_warehouse(settings) as wh:
        audit = wh.query("SELECT * FROM {{ privacy_requests }} ORDER BY requested_at")
        suppressions = wh.query("SELECT * FROM {{ privacy_suppressions }}")
    assert list(audit["status"]) == ["listed", "done"] and list(audit["dry_run"]) == [True, False]
    assert {json.dumps(sorted(json.loads(c), key=str)) for c in audit["counts_json"]} == {
        json.dumps(
            sorted(
                [
                    {"target": k.split(" (")[0], "action": k.split(" (")[1][:-1], "count": v}
                    for k, v in dry["counts"].items()
                ],
                key=str,
            )
        )
    }
    assert set(audit["triggered_by"]) == {"test"}
    assert set(audit["subject_digest"]) == {privacy.subject_digest("face_id", face_id)}
    assert set(suppressions["kind"]) == {"face", "track"}

    # The next daily runs (new days too) and a re-detection of the person's videos do not bring them back.
    run_direct(settings, Window(START, START + 4 * DAY))
    assert scan(settings, traces) == []
    with get_warehouse(settings) as wh:
        for creative_id in videos:  # as a model change or a refresh would: analyse the videos again
            wh.delete_where("face_video_status", "creative_id = @c", {"c": creative_id})
    with StageContext(settings, window, run_id="test") as ctx:
        faces_stage.detect(ctx)
        faces_stage.cluster(ctx)
        faces_stage.performance(ctx)
        final_stage.run(ctx)
    assert scan(settings, traces) == []
    with get_warehouse(settings) as wh:
        redone = wh.query(
            "SELECT COUNT(*) AS n FROM {{ face_video_status }} WHERE creative_id IN UNNEST(@v)", {"v": videos}
        )
    assert int(redone.iloc[0]["n"]) == len(videos), "the videos were analysed again"

    # Withdrawn: the suppression goes (audited); nothing is restored by itself.
    with StageContext(settings, window, run_id="test") as ctx:
        back = privacy.forget_person(ctx, face_id=face_id, withdraw=True, triggered_by="test")
    assert back["counts"]["table:privacy_suppressions (delete)"] == len(suppressions)
    with get_warehouse(settings) as wh:
        assert wh.query("SELECT COUNT(*) AS n FROM {{ privacy_suppressions }}").iloc[0]["n"] == 0
