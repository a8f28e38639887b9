"""import: the window's source rows → one ``creatives`` row per distinct creative URL (MERGE)."""

from __future__ import annotations

import hashlib
from typing import Any

from adpipeline.stages.context import StageContext, summary
from adpipeline.tables import Creative


def creative_id(url: str, media_type: str) -> str:
    """Stable id of a creative URL (the same URL used as image and as video counts as two creatives)."""
    return hashlib.sha256(f"{media_type}:{url}".encode()).hexdigest()[:32]


def run(ctx: StageContext) -> dict[str, Any]:
    """MERGE the window's creatives; seen-dates widen (LEAST/GREATEST), so runs in any order agree."""
    wh = ctx.warehouse
    wh.ensure_tables(["creatives"])
    frame = wh.query_file("ingest/select_window_creatives", ctx.window.params(), ctx.source_names())
    rows = [
        Creative(
            creative_id=creative_id(r.url, r.media_type),
            url=r.url,
            media_type=r.media_type,
            first_seen_date=r.first_seen_date,
            last_seen_date=r.last_seen_date,
        )
        for r in frame.itertuples(index=False)
    ]
    wh.merge_rows(
        "creatives",
        rows,
        update={
            "first_seen_date": "LEAST(T.first_seen_date, S.first_seen_date)",
            "last_seen_date": "GREATEST(T.last_seen_date, S.last_seen_date)",
        },
    )
    images = sum(r.media_type == "image" for r in rows)
    return summary("import", ctx.window, creatives=len(rows), images=images, videos=len(rows) - images)
