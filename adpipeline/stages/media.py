"""media: fetch → analyse (dHash / video probe) → near-duplicate groups. Three Airflow tasks, three functions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from adpipeline.stages.context import Chunk, StageContext, check_failure_share, log, make_chunks, summary
from adpipeline.tables import MediaFetch
from adpipeline.warehouse.schema import rows_from_frame

MEDIA_TABLES = ["creatives", "media_fetches", "image_hashes", "video_metadata", "duplicate_groups"]


def plan(ctx: StageContext) -> list[Chunk]:
    """Every creative waiting to be fetched or analysed, whatever day it came from, in chunks of
    ``media_chunk_size`` for the mapped ``fetch_and_analyse`` tasks."""
    wh = ctx.warehouse
    wh.ensure_tables(MEDIA_TABLES)
    params = {**ctx.window.params(), "refresh": ctx.settings.refresh_media}
    ids = list(wh.query_file("media/select_pending_fetches", params)["creative_id"])
    seen = set(ids)
    ids += [
        i for i in wh.query_file("media/select_unanalysed_media", ctx.window.params())["creative_id"] if i not in seen
    ]
    chunks = make_chunks("media", ids, ctx.settings.media_chunk_size)
    log.info("media: %d creatives pending in %d chunks", len(ids), len(chunks))
    return chunks


def fetch_and_analyse(ctx: StageContext) -> dict[str, Any]:
    """A mapped task: fetch, then analyse, the creatives of one chunk (each step writes its own rows)."""
    return {"fetch": fetch(ctx), "analyse": analyse(ctx)}


def fetch(ctx: StageContext) -> dict[str, Any]:
    """Fetch every creative of the window that has no good fetch yet; MERGE one status row per creative."""
    from adpipeline.media.fetch import FetchRequest, fetch_all

    wh = ctx.warehouse
    wh.ensure_tables(MEDIA_TABLES)
    params = {**ctx.window.params(), "refresh": ctx.settings.refresh_media}
    pending = ctx.only_chunk(wh.query_file("media/select_pending_fetches", params))
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
    todo = ctx.only_chunk(wh.query_file("media/select_unanalysed_media", ctx.window.params()))
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
    """Recompute near-duplicate groups over ALL hashes (a deterministic function of the set, so daily runs and one
    run over many days agree) and MERGE them; canonical = earliest-seen member."""
    from adpipeline.media.dedupe import HashedImage, group_duplicates

    wh = ctx.warehouse
    wh.ensure_tables(MEDIA_TABLES)
    frame = wh.query_file("media/select_all_image_hashes")
    images = [
        HashedImage(
            creative_id=r.creative_id,
            sha256=r.sha256,
            dhash=int(r.dhash),
            first_seen=_as_date(r.first_seen_date),
            fine_thumb=r.fine_thumb if isinstance(r.fine_thumb, str) else None,
        )
        for r in frame.itertuples(index=False)
    ]
    groups = group_duplicates(
        images, ctx.settings.dhash_threshold, fine_threshold=ctx.settings.duplicate_detail_threshold
    )
    wh.merge_rows("duplicate_groups", groups)
    n_groups = len({g.group_id for g in groups})
    multi = len({g.group_id for g in groups if g.group_size > 1})
    return summary("media.group", ctx.window, images=len(images), groups=n_groups, groups_with_duplicates=multi)


def _as_date(value: Any) -> dt.date:
    """DuckDB hands DATE back as a pandas Timestamp, BigQuery as a date."""
    return value.date() if isinstance(value, dt.datetime) else value


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
