"""Thumbnail migration (``adpipeline migrate-thumbs``): every ``image_hashes`` row in the one stored thumbnail format.

Migration ``THUMB_FORMAT`` (3, :mod:`adpipeline.media.dedupe.thumbnails`). Rows whose ``thumb_format`` is not 3 are
read a page at a time (creative-id order). A row whose stored bytes already are format 3 (analysed before the column
existed) only gets ``thumb_format = 3``. Any other row (format 1: 32 x 32 grey; format 2: 64-px luma; no thumbnail)
is re-analysed: its image bytes are read from the bucket (``blobs/sha256/..`` by the row's sha256, checked), the
thumbnail is computed again by the analyser (:func:`~adpipeline.media.images.analyse_image`), and the row is MERGEd
with the new ``fine_thumb`` and ``thumb_format`` and every other column as it was (dHash, text: groups do not move).
Its ``duplicate_groups`` row, if any, gets the new thumbnail dHash (``inner_dhash``, grouping state of the index);
groups themselves are not touched. Idempotent: a second run finds nothing to do. A row whose bytes have gone from the
bucket is left as it is and counted (``blob_missing``); grouping refuses its thumbnail until a re-fetch and
re-analysis (``refresh_media``) or a later migration run replaces it.
"""

from __future__ import annotations

from typing import Any

from adpipeline.stages.context import StageContext, log, summary
from adpipeline.warehouse.schema import rows_from_frame

PAGE = 500  # image_hashes rows read (and their blobs analysed) at a time


def migrate_thumbs(ctx: StageContext, *, dry_run: bool = False, page: int = PAGE) -> dict[str, Any]:
    """Bring every ``image_hashes`` row to thumbnail format ``THUMB_FORMAT``; counts by what was done. With
    ``dry_run``, only count (nothing is read from the bucket or written)."""
    import hashlib

    from adpipeline.media.dedupe import THUMB_FORMAT, OldThumbFormat, inner_hash, signed64, thumb_format
    from adpipeline.media.images import MediaError, analyse_image
    from adpipeline.tables import DuplicateGroup, ImageHash

    wh = ctx.warehouse
    wh.ensure_tables(["image_hashes", "duplicate_groups"])  # the two tables it reads and writes
    counts = {"checked": 0, "already_current": 0, "reanalysed": 0, "blob_missing": 0, "unusable": 0}
    by_format: dict[str, int] = {}
    after = ""
    while True:
        frame = wh.query_file("media/select_thumbs_to_migrate", {"format": THUMB_FORMAT, "after": after, "limit": page})
        if frame.empty:
            break
        rows = rows_from_frame(ImageHash, frame)
        after = rows[-1].creative_id
        changed: list[ImageHash] = []
        for row in rows:
            counts["checked"] += 1
            try:
                found = thumb_format(row.fine_thumb)
            except OldThumbFormat:
                found = 0  # not a thumbnail in any known format: analysed again like an old one
            by_format[str(found)] = by_format.get(str(found), 0) + 1
            if found == THUMB_FORMAT:
                counts["already_current"] += 1
                changed.append(row.model_copy(update={"thumb_format": THUMB_FORMAT}))
                continue
            if dry_run:
                continue
            key = ctx.bucket.blob_key(row.sha256)
            try:
                data = ctx.bucket.get_bytes(key)
            except FileNotFoundError:
                counts["blob_missing"] += 1
                log.warning("migrate-thumbs: %s has no bytes in the bucket (%s); left as it is", row.creative_id, key)
                continue
            if hashlib.sha256(data).hexdigest() != row.sha256:
                counts["blob_missing"] += 1
                log.warning("migrate-thumbs: %s: %s holds other bytes; left as it is", row.creative_id, key)
                continue
            try:
                facts = analyse_image(data, ctx.settings)
            except MediaError as exc:
                counts["unusable"] += 1
                log.warning("migrate-thumbs: %s no longer decodes (%s); left as it is", row.creative_id, exc.reason)
                continue
            counts["reanalysed"] += 1
            changed.append(row.model_copy(update={"fine_thumb": facts.fine_thumb, "thumb_format": THUMB_FORMAT}))
        if dry_run or not changed:
            continue
        # Only the thumbnail and its format change; the text is the target's if grouping stored one meanwhile.
        wh.merge_rows("image_hashes", changed, update={"ocr_text": "COALESCE(T.ocr_text, S.ocr_text)"})
        inner = {row.creative_id: inner_hash(row.fine_thumb) for row in changed}
        groups = rows_from_frame(DuplicateGroup, wh.query_file("media/select_group_rows", {"ids": sorted(inner)}))
        moved = []
        for group in groups:
            value = inner[group.creative_id]
            new = None if value is None else signed64(value)
            if group.component_id is not None and group.inner_dhash != new:
                moved.append(group.model_copy(update={"inner_dhash": new}))
        wh.merge_rows("duplicate_groups", moved)
        counts.setdefault("group_rows_updated", 0)
        counts["group_rows_updated"] += len(moved)
    return summary(
        "media.migrate_thumbs",
        ctx.window,
        format=THUMB_FORMAT,
        dry_run=dry_run,
        found_formats=by_format,
        **counts,
    )
