"""A duplicate group whose canonical moves to a better copy after it was extracted keeps one paid call: the new
canonical reuses the features another member has (no model call, no ledger row)."""

from __future__ import annotations

import datetime as dt

from adpipeline.features import schema
from adpipeline.features.offline import OfflineExtractor
from adpipeline.stages import features
from adpipeline.stages.context import StageContext
from adpipeline.tables import Creative, DuplicateGroup, MediaFetch
from adpipeline.window import Window


def test_a_moved_canonical_reuses_its_groups_features(adp_env) -> None:
    settings = adp_env(_env_file=None)
    day = dt.date(2026, 10, 1)
    extractor = OfflineExtractor(settings)
    with StageContext(settings, Window(day, day), run_id="r2") as ctx:
        wh = ctx.warehouse
        wh.ensure_tables(features.FEATURE_TABLES)
        wh.merge_rows(
            "creatives",
            [Creative(creative_id=c, url=f"https://x/{c}", media_type="image", first_seen_date=day,
                      last_seen_date=day) for c in ("old", "new")],
        )  # fmt: skip
        wh.merge_rows(
            "media_fetches",
            [MediaFetch(creative_id=c, url=f"https://x/{c}", media_type="image", status="ok", sha256=f"s{c}",
                        blob_path=f"blobs/missing/{c}") for c in ("old", "new")],
        )  # fmt: skip
        wh.merge_rows(
            "duplicate_groups",
            [DuplicateGroup(creative_id=c, group_id="g1", canonical_creative_id="new", hamming_to_canonical=0,
                            is_canonical=c == "new", group_size=2) for c in ("old", "new")],
        )  # fmt: skip
        earlier = schema.to_row(
            "image",
            {"has_text": True, "text": "50% OFF", "call_to_action": "Shop now"},
            creative_id="old",
            provider=extractor.name,
            model=extractor.model,
            prompt_version=extractor.prompt_version,
        )
        wh.merge_rows("image_features", [earlier])
        result = features.images(ctx)  # the blob of "new" does not exist: a call would fail, reuse must not
        rows = wh.query("SELECT * FROM {{ image_features }} ORDER BY creative_id").to_dict("records")
        usage = wh.query("SELECT COUNT(*) AS n FROM {{ genai_usage }}").iloc[0]["n"]
    assert result["extracted"] == 0
    assert [r["creative_id"] for r in rows] == ["new", "old"]
    new = rows[0]
    assert new["status"] == "ok" and new["text"] == "50% OFF" and new["call_to_action"] == "Shop now"
    assert new["reason"] == "reused from old (same duplicate group): no new call"
    assert usage == 0
