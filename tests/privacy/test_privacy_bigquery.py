"""Forget and retention on the BigQuery backend (local emulator): the same DML, counts and suppressions as DuckDB."""

from __future__ import annotations

import pytest

from adpipeline.privacy import apply, suppression
from adpipeline.settings import Settings
from adpipeline.stages import privacy
from adpipeline.stages.context import StageContext
from adpipeline.window import Window
from tests.integration.conftest import BQ_PROJECT, unique_dataset
from tests.privacy.test_privacy import DAY, _seed

pytestmark = pytest.mark.bigquery


def test_forget_and_retention_on_bigquery(bq_emulator, tmp_path) -> None:
    settings = Settings(
        home=tmp_path / "home",
        warehouse_backend="bigquery",
        bq_project=BQ_PROJECT,
        bq_dataset=unique_dataset("privacy"),
        face_retention_days=30,
    )
    with StageContext(settings, Window(DAY, DAY), run_id="bq") as ctx:
        _seed(ctx)
        wh = ctx.warehouse
        from adpipeline.tables import AdEnriched

        wh.merge_rows(
            "ads_enriched",
            [
                AdEnriched(ad_id="a1", date=DAY, creative_id="c1", face_ids=["fa", "fb"], n_faces=2),
                AdEnriched(ad_id="a2", date=DAY, creative_id="c2", face_ids=["fb"], n_faces=1),
            ],
        )
        dry = privacy.forget_person(ctx, face_id="fa", dry_run=True, triggered_by="unit")
        done = privacy.forget_person(ctx, face_id="fa", triggered_by="unit")
        assert (
            done["counts"]
            == dry["counts"]
            == {
                "bucket:faces/crops/ (delete)": 2,
                "table:ads_enriched[face_ids] (update)": 1,
                "table:faces (delete)": 1,
                "table:face_detections (delete)": 2,
            }
        )
        assert list(wh.read_table("faces")["face_id"]) == ["fb"]
        enriched = wh.read_table("ads_enriched", order_by="ad_id")
        assert [list(f) for f in enriched["face_ids"]] == [["fb"], ["fb"]] and list(enriched["n_faces"]) == [1, 1]
        assert sorted(wh.read_table("privacy_suppressions")["kind"]) == ["face", "track", "track"]
        assert not apply.compact(ctx), "nothing to rewrite on BigQuery"
        # fb (only in c1, last ad 2026-01-05) is past the 30-day retention.
        out = privacy.retention(ctx, triggered_by="unit")
        assert out["counts"]["table:faces (update)"] == 1
        assert [len(c) for c in wh.read_table("faces")["centroid"]] == [0]
        # A detection task that ran during the forget: the cluster hook deletes its track.
        from tests.privacy.test_privacy import _track

        wh.merge_rows("face_detections", [_track("c2_t0", "c2", 3.0, 5.0, None)])
        assert suppression.forgotten_tracks(ctx) == ["c2_t0"]
        suppression.drop_forgotten_tracks(ctx)
        assert sorted(wh.read_table("face_detections")["track_id"]) == ["c1_t1"]
        audit = wh.read_table("privacy_requests")
        assert sorted(audit["status"]) == ["done", "done", "listed"]
