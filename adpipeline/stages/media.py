"""media: fetch → analyse (dHash / video probe) → near-duplicate groups. Three Airflow tasks, three functions."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import Any

from adpipeline.faults import fault_point
from adpipeline.stages.context import (
    Chunk,
    StageContext,
    check_failure_share,
    log,
    make_chunks,
    summary,
    warn_failure_share,
)
from adpipeline.tables import MediaFetch
from adpipeline.warehouse.schema import rows_from_frame

MEDIA_TABLES = ["creatives", "media_fetches", "image_hashes", "video_metadata", "duplicate_groups"]


# Rows are written in batches as the work goes, so a killed task keeps what it finished.
WRITE_EVERY_ITEMS = 200
WRITE_EVERY_S = 30.0
USABLE = ("ok", "fetched")  # fetch rows whose bytes are (or may be) good; a verdict on the bytes is anything else
# Analysis reads no text: an image analysed again keeps the text stored for the same bytes (never read twice).
KEEP_TEXT = {"ocr_text": "CASE WHEN S.sha256 = T.sha256 THEN COALESCE(S.ocr_text, T.ocr_text) ELSE S.ocr_text END"}


def plan(ctx: StageContext) -> list[Chunk]:
    """Every creative waiting to be fetched or analysed, whatever day it came from, in chunks of
    ``media_chunk_size`` for the mapped ``fetch_and_analyse`` tasks."""
    wh = ctx.warehouse
    wh.ensure_tables(MEDIA_TABLES)
    params = {**ctx.window.params(), "refresh": ctx.settings.refresh_media, "now": _now()}
    ids = list(wh.query_file("media/select_pending_fetches", params)["creative_id"])
    seen = set(ids)
    ids += [i for i in wh.query_file("media/select_unanalysed_media")["creative_id"] if i not in seen]
    chunks = make_chunks("media", ids, ctx.settings.media_chunk_size)
    log.info("media: %d creatives pending in %d chunks", len(ids), len(chunks))
    return chunks


def fetch_and_analyse(ctx: StageContext) -> dict[str, Any]:
    """A mapped task: fetch, then analyse, the creatives of one chunk (each step writes its own rows)."""
    fetched = fetch(ctx)
    fault_point("media.fetched")  # fetch rows written, bytes not analysed yet
    return {"fetch": fetched, "analyse": analyse(ctx)}


def fetch(ctx: StageContext) -> dict[str, Any]:
    """Fetch every pending creative: no fetch row yet, or a failed fetch whose back-off has passed (with
    ``refresh_media``: every creative of the window again). MERGE one status row per creative as results come in.

    Good bytes get status ``fetched`` (the analyse task judges them). A failure is transient or permanent and waits
    before the next try (``next_attempt_at``). The task fails only when more than ``max_failure_share`` of the items
    fetched for the first time failed transiently (an outage); permanent failures and items retried from earlier
    runs never fail it, so a bad day cannot wedge the chain.
    """
    from adpipeline.media.fetch import FetchRequest, fetch_iter

    wh = ctx.warehouse
    wh.ensure_tables(MEDIA_TABLES)
    ctx.bucket.remove_stale_uploads()
    now = _now()
    params = {**ctx.window.params(), "refresh": ctx.settings.refresh_media, "now": now}
    pending = ctx.only_chunk(wh.query_file("media/select_pending_fetches", params))
    earlier = {r.creative_id: r for r in pending.itertuples(index=False)}
    urls = sorted({r.url for r in earlier.values()})
    cached: dict[str, tuple[str, str]] = {}
    if urls:
        frame = wh.query_file("media/select_cached_blobs", {"urls": urls})
        cached = {r.url: (r.sha256, r.blob_path) for r in frame.itertuples(index=False)}
    requests = [FetchRequest(r.creative_id, r.url, r.media_type) for r in earlier.values()]
    by_status: dict[str, int] = {}
    permanent: dict[str, int] = {}
    fresh_transient = kept = 0
    writer = _BatchWriter(ctx, "media_fetches")
    for result in fetch_iter(requests, ctx.settings, ctx.bucket, cached=cached):
        before = earlier[result.creative_id]
        previous = before.previous_status if isinstance(before.previous_status, str) else None
        by_status[result.status] = by_status.get(result.status, 0) + 1
        if not result.ok and not result.transient:
            permanent[result.status] = permanent.get(result.status, 0) + 1
        if not result.ok and previous in USABLE:
            # Only a refresh fetches a usable row again: failing now must not take away the bytes we have.
            kept += 1
            log.warning("refresh of %s failed (%s: %s); earlier row kept", result.url, result.status, result.reason)
            continue
        row = result.to_row()
        if not result.ok:
            fresh_transient += previous is None and result.transient
            _schedule_retry(row, int(before.failed_runs), now, ctx)
        else:
            row.failed_runs = int(before.failed_runs)  # only an analysis that says ok starts the count again
        writer.add(row)
        if writer.due():
            writer.flush()
    writer.flush()
    limit = ctx.settings.max_failure_share
    check_failure_share("media.fetch (first tries failing transiently)", fresh_transient, len(requests), limit)
    warning = warn_failure_share(ctx, "media.fetch", permanent, len(requests))
    return summary(
        "media.fetch",
        ctx.window,
        requested=len(requests),
        by_status=by_status,
        transient_first_tries=fresh_transient,
        refresh_failures_kept=kept,
        **({"warning": warning} if warning else {}),
    )


def analyse(ctx: StageContext) -> dict[str, Any]:
    """Judge every fetched body not analysed yet: dHash + geometry for images (``image_hashes``), container facts for
    videos (``video_metadata``), and write the verdict back to ``media_fetches``: ``ok``, or ``corrupt``,
    ``not_an_image``, ``unsupported_format``, ``too_many_pixels`` (images), ``corrupt``, ``truncated``,
    ``no_video_stream``, ``empty``, ``too_large`` (videos). Only this task sets ``ok``, so a row reaches ``ok`` only
    through an analysis of its current bytes. A verdict is a permanent failure (retried after the long back-off) and
    its blob is deleted unless another usable row shares it. A blob that has gone is ``blob_missing`` (transient:
    the fetch task gets it again). Rows are written in batches as the work goes."""
    from adpipeline.media.images import MediaError, analyse_image
    from adpipeline.media.videos import probe_video

    wh = ctx.warehouse
    wh.ensure_tables(MEDIA_TABLES)
    now = _now()
    todo = ctx.only_chunk(wh.query_file("media/select_unanalysed_media"))
    fetch_rows = rows_from_frame(MediaFetch, todo)
    counts = {"images": 0, "videos": 0, "failed_images": 0, "failed_videos": 0, "blob_missing": 0}
    verdicts: dict[str, int] = {}
    fetches = _BatchWriter(ctx, "media_fetches", prepare=_judged_blobs)
    hashes = _BatchWriter(ctx, "image_hashes", update=KEEP_TEXT)
    videos = _BatchWriter(ctx, "video_metadata")
    for row in fetch_rows:
        key = _blob_key(ctx, row.blob_path or "")
        status, reason = "ok", None
        try:
            if row.media_type == "image":
                try:
                    facts = analyse_image(ctx.bucket.get_bytes(key), ctx.settings)
                    hashes.add(facts.to_row(row.creative_id, row.sha256 or ""))
                    counts["images"] += 1
                except MediaError as exc:
                    status, reason = exc.status, exc.reason
                    counts["failed_images"] += 1
            else:
                if not ctx.bucket.exists(key):  # a path to nothing would be probed as a corrupt video
                    raise FileNotFoundError(key)
                with ctx.bucket.local_file(key) as path:
                    video = probe_video(path, ctx.settings)
                videos.add(video.to_row(row.creative_id, row.sha256))
                status, reason = video.status, video.reason
                counts["videos" if video.status == "ok" else "failed_videos"] += 1
        except FileNotFoundError:
            status, reason = "blob_missing", f"{key} is not in the bucket; fetched again by the next run"
            counts["blob_missing"] += 1
        if status == "ok":
            row.status, row.reason, row.failure_kind, row.failed_runs, row.next_attempt_at = "ok", None, None, 0, None
        else:
            row.status, row.reason = status, reason
            if status != "blob_missing":
                verdicts[status] = verdicts.get(status, 0) + 1
            _schedule_retry(row, row.failed_runs, now, ctx, transient=status == "blob_missing")
        fetches.add(row)
        if fetches.due():  # facts first: a fetch row says ok only once its facts are stored
            hashes.flush()
            videos.flush()
            fetches.flush()
    hashes.flush()
    videos.flush()
    fetches.flush()
    # Verdicts on the bytes are the content's fault, not the task's; only vanished blobs (a bucket problem) count.
    limit = ctx.settings.max_failure_share
    check_failure_share("media.analyse (blobs missing)", counts["blob_missing"], len(fetch_rows), limit)
    warning = warn_failure_share(ctx, "media.analyse", verdicts, len(fetch_rows))
    return summary("media.analyse", ctx.window, **counts, **({"warning": warning} if warning else {}))


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
    migrated = _migrate_old_thumbs(ctx)
    clustering = _clustering(ctx.settings)
    passes = images = changed = texts_read = 0
    while True:
        batch = wh.query_file("media/select_ungrouped_image_hashes", {"limit": ctx.settings.dedupe_batch_size})
        if batch.empty:
            break
        index = wh.query_file("media/select_group_index")
        inner, keys = index["inner_dhash"], index["text_key"]
        known = Known(
            creative_ids=index["creative_id"].to_numpy(dtype=object),
            dhash=index["dhash"].to_numpy(dtype=np.int64).view(np.uint64),
            inner=inner.fillna(0).to_numpy(dtype=np.int64).view(np.uint64),
            has_inner=inner.notna().to_numpy(),
            component_ids=index["component_id"].to_numpy(dtype=object),
            text_keys=keys.fillna(0).to_numpy(dtype=np.int64),
            has_text_key=keys.notna().to_numpy(),
        )
        del index, inner, keys
        reader = TextReader(ctx)
        rows = regroup(
            [_hashed_image(r) for r in batch.itertuples(index=False)],
            known,
            clustering,
            load_thumbs=lambda ids: _group_thumbs(ctx, ids),
            load_members=lambda components: _group_members(ctx, components),
            read_texts=reader if clustering.text_check and clustering.detail_threshold is not None else None,
        )
        reader.flush()  # the texts first: a grouped image's text is stored whenever its pair needed it
        wh.merge_rows("duplicate_groups", rows)
        texts_read += reader.reads
        passes, images, changed = passes + 1, images + len(batch), changed + len(rows)
        log.info(
            "media.group pass %d: %d pending images against %d grouped, %d rows changed",
            passes,
            len(batch),
            len(known.dhash),
            len(rows),
        )
    return summary(
        "media.group",
        ctx.window,
        passes=passes,
        images=images,
        rows_changed=changed,
        texts_read=texts_read,
        thumbs_migrated=migrated,
    )


READ_SLICE = 32  # images whose blobs a text reader holds at once


class TextReader:
    """Reads (OCR) the text of the images a grouping pass asks for (``dedupe.TextReader``), from their blobs, once
    per image: text already stored for the same bytes under another creative is reused, and every read is stored
    in ``image_hashes.ocr_text`` by :meth:`flush` (also called by the offline features stage for its reads)."""

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.pending: dict[str, str] = {}
        self.reads = 0  # images OCR-read by this reader

    def __call__(self, ids: Sequence[str]) -> dict[str, str | None]:
        from adpipeline.media.images import read_image_texts

        frame = self.ctx.warehouse.query_file("media/select_image_texts_to_read", {"ids": sorted(set(ids))})
        found: dict[str, str | None] = {}
        to_read: list[tuple[str, str]] = []
        for r in frame.itertuples(index=False):
            text = _text_or_none(r.stored_text)
            if text is not None:
                found[r.creative_id] = self.pending[r.creative_id] = text
            elif isinstance(r.blob_path, str) and r.blob_path:
                to_read.append((r.creative_id, r.blob_path))
        # In slices, so a large batch holds a few blobs in memory at a time; each slice is read on every core.
        for start in range(0, len(to_read), READ_SLICE):
            blobs: dict[str, bytes] = {}
            for creative_id, blob_path in to_read[start : start + READ_SLICE]:
                try:
                    blobs[creative_id] = self.ctx.bucket.get_bytes(_blob_key(self.ctx, blob_path))
                except FileNotFoundError:
                    continue  # the blob has gone: no text evidence for this pair
            for creative_id, text in read_image_texts(blobs, self.ctx.settings).items():
                self.reads += 1
                if text is not None:
                    found[creative_id] = self.pending[creative_id] = text
        return found

    def add(self, texts: dict[str, str]) -> None:
        self.pending.update(texts)

    def flush(self) -> None:
        if self.pending:
            store_texts(self.ctx, self.pending)
        self.pending = {}


def _migrate_old_thumbs(ctx: StageContext) -> int:
    """Rows an older release stored with another thumbnail format are migrated before grouping compares them (what
    ``adpipeline migrate-thumbs`` does; idempotent, so a killed task resumes); one count query when there are none.
    Returns the rows re-analysed."""
    from adpipeline.media.dedupe import THUMB_FORMAT
    from adpipeline.stages.media_thumbs import migrate_thumbs

    count = ctx.warehouse.query_file("media/count_thumbs_to_migrate", {"format": THUMB_FORMAT})
    if count.empty or int(count.iloc[0]["n"]) == 0:
        return 0
    log.info("%d image_hashes rows hold an older thumbnail format: migrating them first", int(count.iloc[0]["n"]))
    return int(migrate_thumbs(ctx)["reanalysed"])


def store_texts(ctx: StageContext, texts: dict[str, str]) -> None:
    """Store whole-image text records (``image_hashes.ocr_text``) by creative id: MERGE of those rows, unchanged
    but for the text."""
    from adpipeline.tables import ImageHash

    frame = ctx.warehouse.query_file("media/select_image_hash_rows", {"ids": sorted(texts)})
    rows = rows_from_frame(ImageHash, frame)
    for row in rows:
        row.ocr_text = texts[row.creative_id]
    ctx.warehouse.merge_rows("image_hashes", rows)


def _clustering(settings: Any) -> Any:
    from adpipeline.media.dedupe import Clustering

    return Clustering(
        threshold=settings.dhash_threshold,
        detail_threshold=settings.duplicate_detail_threshold if settings.duplicate_fine_check else None,
        coarse_reject=settings.duplicate_coarse_reject,
        link_share=settings.duplicate_link_share,
        all_pairs_within=settings.duplicate_all_pairs_within,
        text_check=settings.duplicate_text_check,
        text_candidate_bits=settings.duplicate_text_candidate_bits,
        text_key_max_images=settings.duplicate_text_key_max_images,
    )


def _hashed_image(row: Any) -> Any:
    from adpipeline.media.dedupe import HashedImage

    return HashedImage(
        creative_id=row.creative_id,
        sha256=row.sha256,
        dhash=int(row.dhash),
        fine_thumb=_text_or_none(getattr(row, "fine_thumb", None)),
        ocr_text=_text_or_none(getattr(row, "ocr_text", None)),
        width=int(row.width),
        height=int(row.height),
    )


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None  # NULL reads back as None or NaN


def _group_thumbs(ctx: StageContext, ids: Sequence[str]) -> dict[str, Any]:
    from adpipeline.media.dedupe import Stored

    frame = ctx.warehouse.query_file("media/select_group_thumbs", {"ids": sorted(ids)})
    return {
        r.creative_id: Stored(_text_or_none(r.fine_thumb), _text_or_none(r.ocr_text))
        for r in frame.itertuples(index=False)
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


def _now() -> dt.datetime:
    """Wall-clock time for retry back-offs only (what a run processes never depends on it)."""
    return dt.datetime.now(dt.UTC)


def _schedule_retry(
    row: MediaFetch, failed_before: int, now: dt.datetime, ctx: StageContext, *, transient: bool | None = None
) -> None:
    """Mark a failed row: its kind, one more failed run, and when the fetch task may try it again."""
    from adpipeline.media.fetch import next_attempt_delay_s

    if transient is not None:
        row.failure_kind = "transient" if transient else "permanent"
    kind = row.failure_kind or "permanent"
    row.failure_kind = kind
    row.failed_runs = failed_before + 1
    row.next_attempt_at = now + dt.timedelta(seconds=next_attempt_delay_s(kind, row.failed_runs, ctx.settings))


class _BatchWriter:
    """MERGE rows in batches (every WRITE_EVERY_ITEMS rows or WRITE_EVERY_S seconds) so a killed task keeps its work.

    ``prepare(ctx, rows)`` may edit the rows before they are written and return blob keys to delete once they are.
    """

    def __init__(
        self, ctx: StageContext, table: str, *, prepare: Any = None, update: dict[str, str] | None = None
    ) -> None:
        self.ctx, self.table, self.prepare, self.update = ctx, table, prepare, update
        self.rows: list[Any] = []
        self.since = time.monotonic()

    def add(self, row: Any) -> None:
        self.rows.append(row)

    def due(self) -> bool:
        old = time.monotonic() - self.since > WRITE_EVERY_S
        return len(self.rows) >= WRITE_EVERY_ITEMS or (bool(self.rows) and old)

    def flush(self) -> None:
        if self.rows:
            doomed = self.prepare(self.ctx, self.rows) if self.prepare is not None else []
            self.ctx.warehouse.merge_rows(self.table, self.rows, update=self.update)
            for key in doomed:
                self.ctx.bucket.delete(key)
            if doomed:
                log.info("deleted the blobs of %d unusable media items", len(doomed))
        self.rows = []
        self.since = time.monotonic()


def _judged_blobs(ctx: StageContext, rows: list[MediaFetch]) -> list[str]:
    """Blobs of the items judged unusable that no other usable row (another creative with the same bytes) points
    at: their rows lose ``blob_path`` (the sha256 stays) and the caller deletes them once the rows are written."""
    judged = [r for r in rows if r.status not in USABLE and r.status != "blob_missing" and r.sha256 and r.blob_path]
    if not judged:
        return []
    params = {"shas": sorted({r.sha256 for r in judged if r.sha256}), "ids": sorted({r.creative_id for r in rows})}
    used = ctx.warehouse.query_file("media/select_usable_blobs", params)
    keep = set(used["sha256"]) if len(used) else set()
    doomed = set()
    for row in judged:
        if row.sha256 not in keep:
            doomed.add(_blob_key(ctx, row.blob_path or ""))
            row.blob_path = None
    return sorted(doomed)
