"""media: fetch → analyse (dHash / video probe) → near-duplicate groups. Three Airflow tasks, three functions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adpipeline.stages.context import StageContext, check_failure_share, log, summary
from adpipeline.tables import MediaFetch
from adpipeline.warehouse.schema import rows_from_frame

MEDIA_TABLES = ["creatives", "media_fetches", "image_hashes", "video_metadata", "duplicate_groups"]


def fetch(ctx: StageContext) -> dict[str, Any]:
    """Fetch every creative of the window that has no good fetch yet; MERGE one status row per creative."""
    from adpipeline.media.fetch import FetchRequest, fetch_all

    wh = ctx.warehouse
    wh.ensure_tables(MEDIA_TABLES)
    params = {**ctx.window.params(), "refresh": ctx.settings.refresh_media}
    pending = wh.query_file("media/select_pending_fetches", params)
    cached = {
        r.url: (r.sha256, r.blob_path) for r in wh.query_file("media/select_cached_blobs").itertuples(index=False)
    }
    requests = [FetchRequest(r.creative_id, r.url, r.media_type) for r in pending.itertuples(index=False)]
    results = fetch_all(requests, ctx.settings, ctx.bucket, cached=cached)
    wh.merge_rows("media_fetches", [r.to_row() for r in results])
    failed = [r for r in results if r.status != "ok"]
    by_status: dict[str, int] = {}
    for r in results:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    check_failure_share("media.fetch", len(failed), len(results), ctx.settings.max_failure_share)
    return summary("media.fetch", ctx.window, requested=len(requests), by_status=by_status)


def analyse(ctx: StageContext) -> dict[str, Any]:
    """dHash + geometry for new images, container metadata for new videos. Undecodable images turn their fetch
    row into a status (``corrupt``, ``not_an_image``, ``too_many_pixels`` ...); bad videos get a status row."""
    from adpipeline.media.images import MediaError, analyse_image
    from adpipeline.media.videos import probe_video

    wh = ctx.warehouse
    wh.ensure_tables(MEDIA_TABLES)
    todo = wh.query_file("media/select_unanalysed_media", ctx.window.params())
    hashes, videos, image_failures = [], [], {}
    for item in todo.itertuples(index=False):
        key = _blob_key(ctx, item.blob_path)
        if item.media_type == "image":
            try:
                facts = analyse_image(ctx.bucket.get_bytes(key), ctx.settings)
            except MediaError as exc:
                image_failures[item.creative_id] = (exc.status, exc.reason)
                continue
            hashes.append(facts.to_row(item.creative_id, item.sha256))
        else:
            with ctx.bucket.local_file(key) as path:
                facts = probe_video(path, ctx.settings)
            videos.append(facts.to_row(item.creative_id, item.sha256))
    wh.merge_rows("image_hashes", hashes)
    wh.merge_rows("video_metadata", videos)
    if image_failures:
        _mark_fetch_failures(ctx, image_failures)
    bad_videos = sum(v.status != "ok" for v in videos)
    failed = len(image_failures) + bad_videos
    check_failure_share("media.analyse", failed, len(todo), ctx.settings.max_failure_share)
    return summary(
        "media.analyse",
        ctx.window,
        images=len(hashes),
        videos=len(videos),
        failed_images=len(image_failures),
        failed_videos=bad_videos,
    )


def group(ctx: StageContext) -> dict[str, Any]:
    """Group the images that have no ``duplicate_groups`` row yet (pending work, any day) into the index of all earlier
    ones and MERGE the rows that change: the pending images' and those of earlier members whose group moves.

    Incremental and order independent (media README, "Near-duplicates"): a pass reads every grouped image's two
    hashes and component, probes only the pending hashes against them, reads thumbnails for candidate pairs alone,
    and the result is the same whatever day or worker each image was grouped on. Passes of ``dedupe_batch_size``
    images repeat until nothing is pending, each MERGE-ing its own rows, so a killed task resumes where it stopped.
    """
    import numpy as np

    from adpipeline.media.dedupe import Known, regroup

    wh = ctx.warehouse
    wh.ensure_tables(MEDIA_TABLES)
    clustering = _clustering(ctx.settings)
    passes = images = changed = 0
    while True:
        batch = wh.query_file("media/select_ungrouped_image_hashes", {"limit": ctx.settings.dedupe_batch_size})
        if batch.empty:
            break
        index = wh.query_file("media/select_group_index")
        inner = index["inner_dhash"]
        known = Known(
            creative_ids=index["creative_id"].to_numpy(dtype=object),
            dhash=index["dhash"].to_numpy(dtype=np.int64).view(np.uint64),
            inner=inner.fillna(0).to_numpy(dtype=np.int64).view(np.uint64),
            has_inner=inner.notna().to_numpy(),
            component_ids=index["component_id"].to_numpy(dtype=object),
        )
        del index, inner
        rows = regroup(
            [_hashed_image(r) for r in batch.itertuples(index=False)],
            known,
            clustering,
            load_thumbs=lambda ids: _group_thumbs(ctx, ids),
            load_members=lambda components: _group_members(ctx, components),
        )
        wh.merge_rows("duplicate_groups", rows)
        passes, images, changed = passes + 1, images + len(batch), changed + len(rows)
        log.info(
            "media.group pass %d: %d pending images against %d grouped, %d rows changed",
            passes,
            len(batch),
            len(known.dhash),
            len(rows),
        )
    return summary("media.group", ctx.window, passes=passes, images=images, rows_changed=changed)


def _clustering(settings: Any) -> Any:
    from adpipeline.media.dedupe import Clustering

    return Clustering(
        threshold=settings.dhash_threshold,
        fine_threshold=settings.duplicate_detail_threshold if settings.duplicate_fine_check else None,
        coarse_reject=settings.duplicate_coarse_reject,
        link_share=settings.duplicate_link_share,
        all_pairs_within=settings.duplicate_all_pairs_within,
    )


def _hashed_image(row: Any) -> Any:
    from adpipeline.media.dedupe import HashedImage

    return HashedImage(
        creative_id=row.creative_id,
        sha256=row.sha256,
        dhash=int(row.dhash),
        fine_thumb=getattr(row, "fine_thumb", None) if isinstance(getattr(row, "fine_thumb", None), str) else None,
        width=int(row.width),
        height=int(row.height),
    )


def _group_thumbs(ctx: StageContext, ids: Sequence[str]) -> dict[str, str | None]:
    frame = ctx.warehouse.query_file("media/select_group_thumbs", {"ids": sorted(ids)})
    return {
        r.creative_id: r.fine_thumb if isinstance(r.fine_thumb, str) else None for r in frame.itertuples(index=False)
    }


def _group_members(ctx: StageContext, components: Sequence[str]) -> list[Any]:
    from adpipeline.media.dedupe import Member
    from adpipeline.tables import DuplicateGroup

    frame = ctx.warehouse.query_file("media/select_group_members", {"components": sorted(components)})
    groups = rows_from_frame(DuplicateGroup, frame)
    return [Member(_hashed_image(r), g) for r, g in zip(frame.itertuples(index=False), groups, strict=True)]


def _blob_key(ctx: StageContext, blob_path: str) -> str:
    """Tables store the bucket key; accept a full URI too."""
    prefix = ctx.bucket.url + "/"
    return blob_path[len(prefix) :] if blob_path.startswith(prefix) else blob_path


def _mark_fetch_failures(ctx: StageContext, failures: dict[str, tuple[str, str | None]]) -> None:
    frame = ctx.warehouse.query(
        "SELECT * FROM {{ media_fetches }} WHERE creative_id IN UNNEST(@ids)", {"ids": sorted(failures)}
    )
    rows = rows_from_frame(MediaFetch, frame)
    for row in rows:
        row.status, row.reason = failures[row.creative_id]
    ctx.warehouse.merge_rows("media_fetches", rows)
    log.info("%d fetched images could not be decoded", len(rows))
