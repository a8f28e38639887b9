"""features: structured features for canonical images and for videos, with the configured provider."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from adpipeline.stages.context import StageContext, check_failure_share, summary
from adpipeline.stages.media import _blob_key

FEATURE_TABLES = [
    "creatives",
    "media_fetches",
    "duplicate_groups",
    "video_metadata",
    "image_features",
    "video_features",
]


def get_extractor(ctx: StageContext) -> Any:
    """The configured feature provider. Only the offline extractor ships in this release; asking for another one
    is a clear error, not a silent fallback."""
    if ctx.settings.feature_provider != "offline":
        raise NotImplementedError(
            f"feature provider {ctx.settings.feature_provider!r} is not available yet; use ADP_FEATURE_PROVIDER=offline"
        )
    from adpipeline.features.offline import OfflineExtractor

    return OfflineExtractor(ctx.settings)


def _pending_params(ctx: StageContext, extractor: Any) -> dict[str, Any]:
    return {
        **ctx.window.params(),
        "provider": extractor.name,
        "model": extractor.model,
        "prompt_version": extractor.prompt_version,
    }


def images(ctx: StageContext) -> dict[str, Any]:
    """MERGE ``image_features`` for the window's canonical images that lack them."""
    wh = ctx.warehouse
    wh.ensure_tables(FEATURE_TABLES)
    extractor = get_extractor(ctx)
    todo = wh.query_file("features/select_pending_images", _pending_params(ctx, extractor))
    rows = [
        extractor.extract_image(ctx.bucket.get_bytes(_blob_key(ctx, item.blob_path)), item.creative_id)
        for item in todo.itertuples(index=False)
    ]
    wh.merge_rows("image_features", rows)
    failed = sum(r.status != "ok" for r in rows)
    check_failure_share("features.images", failed, len(rows), ctx.settings.max_failure_share)
    return summary("features.images", ctx.window, extracted=len(rows), failed=failed, provider=extractor.name)


def videos(ctx: StageContext) -> dict[str, Any]:
    """MERGE ``video_features`` for the window's videos that lack them."""
    wh = ctx.warehouse
    wh.ensure_tables(FEATURE_TABLES)
    extractor = get_extractor(ctx)
    todo = wh.query_file("features/select_pending_videos", _pending_params(ctx, extractor))
    rows = []
    for item in todo.itertuples(index=False):
        key = _blob_key(ctx, item.blob_path)
        has_audio = None if item.has_audio is None or item.has_audio != item.has_audio else bool(item.has_audio)
        local = ctx.bucket.local_path(key)
        if local is not None:
            rows.append(extractor.extract_video(local, item.creative_id, has_audio=has_audio))
            continue
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "video"
            path.write_bytes(ctx.bucket.get_bytes(key))
            rows.append(extractor.extract_video(str(path), item.creative_id, has_audio=has_audio))
    wh.merge_rows("video_features", rows)
    failed = sum(r.status != "ok" for r in rows)
    check_failure_share("features.videos", failed, len(rows), ctx.settings.max_failure_share)
    return summary("features.videos", ctx.window, extracted=len(rows), failed=failed, provider=extractor.name)
