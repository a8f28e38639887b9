"""Keeping forgotten people forgotten: the suppression list and the hooks the faces and gallery stages call.

This is the bottom of the privacy package: it imports nothing from ``adpipeline.stages`` (the stages import it) and
nothing from the rest of the package. :class:`PrivacyContext` names what privacy code needs from a task's context;
``adpipeline.stages.context.StageContext`` has all of it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import pandas as pd

from adpipeline.bucket import Bucket
from adpipeline.faces.crops import crop_key
from adpipeline.settings import Settings
from adpipeline.warehouse.base import Warehouse
from adpipeline.window import Window

log = logging.getLogger("adpipeline")

PRIVACY_TABLES = ["privacy_requests", "privacy_suppressions"]
_SALT = "adpipeline-privacy"


class PrivacyContext(Protocol):
    """What privacy code reads from a task's context (a ``StageContext`` is one)."""

    settings: Settings
    window: Window
    run_id: str
    warehouse: Warehouse
    bucket: Bucket


def subject_digest(kind: str, value: str) -> str:
    """The salted sha256 the audit and suppression tables hold instead of an id (or a photo's sha256). Whoever holds
    the id can compute it to check a request; the tables alone name nobody."""
    return hashlib.sha256(f"{_SALT}:{kind}:{value}".encode()).hexdigest()


def query(wh: Warehouse, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    return wh.query(sql, params or {})


def tables_exist(wh: Warehouse, *tables: str) -> bool:
    return all(wh.table_exists(t) for t in tables)


def segment_tolerance_s(settings: Settings) -> float:
    """Half a sample interval: a re-detection samples the same times, a track's ends can move by one sample."""
    return 0.5 / settings.face_sample_fps


@dataclass
class ForgottenSegments:
    """Where forgotten people were on screen: video (creative id or sha256 of its bytes) -> [(start_s, end_s)]."""

    spans: dict[str, list[tuple[float, float]]]
    tolerance_s: float

    def matches(self, creative_id: str, video_sha256: str | None, first_s: float, last_s: float) -> bool:
        spans = self.spans.get(creative_id, []) + (self.spans.get(video_sha256, []) if video_sha256 else [])
        tol = self.tolerance_s
        return any(first_s <= end + tol and last_s >= start - tol for start, end in spans)

    def drop_from(self, result: Any, video_sha256: str | None) -> Any:
        """A video's face result without the tracks that overlap a forgotten person's screen time (their crops and
        vectors are then never written)."""
        if not self.spans:
            return result
        kept = [
            t
            for t in result.tracks
            if not self.matches(result.creative_id, video_sha256, t.first_time_s, t.last_time_s)
        ]
        if len(kept) == len(result.tracks):
            return result
        log.info(
            "privacy: %d track(s) of %s dropped (forgotten person)", len(result.tracks) - len(kept), result.creative_id
        )
        return replace(result, tracks=kept)


def forgotten_segments(ctx: PrivacyContext) -> ForgottenSegments:
    """Detection hook: the suppression list's screen-time segments, loaded once per detection task."""
    wh = ctx.warehouse
    wh.ensure_tables(["privacy_suppressions"])
    frame = query(
        wh,
        "SELECT creative_id, video_sha256, start_s, end_s FROM {{ privacy_suppressions }} "
        "WHERE kind = 'track' AND start_s IS NOT NULL",
    )
    spans: dict[str, list[tuple[float, float]]] = {}
    for r in frame.itertuples(index=False):
        for key in (r.creative_id, r.video_sha256):
            if isinstance(key, str):
                spans.setdefault(key, []).append((float(r.start_s), float(r.end_s)))
    return ForgottenSegments(spans, segment_tolerance_s(ctx.settings))


def suppressed_digests(wh: Warehouse, kind: str) -> set[str]:
    """The digests of one kind (customer, face, track, photo) on the suppression list."""
    if not wh.table_exists("privacy_suppressions"):
        return set()
    frame = query(wh, "SELECT DISTINCT digest FROM {{ privacy_suppressions }} WHERE kind = @kind", {"kind": kind})
    return set(frame["digest"])


def forgotten_tracks(ctx: PrivacyContext) -> list[str]:
    """Tracks not placed in a face yet (face_id NULL) that belong to a forgotten person: a suppressed track id, or a
    track overlapping a forgotten segment of the same video (same creative, or the same bytes under another URL)."""
    wh = ctx.warehouse
    if not tables_exist(wh, "privacy_suppressions", "face_detections"):
        return []
    tol = segment_tolerance_s(ctx.settings)
    media = tables_exist(wh, "media_fetches")
    join_media = "LEFT JOIN {{ media_fetches }} AS m ON m.creative_id = d.creative_id" if media else ""
    by_sha = "OR (s.video_sha256 IS NOT NULL AND s.video_sha256 = m.sha256)" if media else ""
    frame = query(
        wh,
        f"SELECT DISTINCT d.track_id FROM {{{{ face_detections }}}} AS d {join_media} "
        "JOIN {{ privacy_suppressions }} AS s "
        f"ON s.kind = 'track' AND (s.creative_id = d.creative_id {by_sha}) "
        "AND d.first_time_s <= s.end_s + @tol AND d.last_time_s >= s.start_s - @tol "
        "WHERE d.face_id IS NULL",
        {"tol": tol},
    )
    found = set(frame["track_id"])
    digests = suppressed_digests(wh, "track")
    if digests:
        unassigned = query(wh, "SELECT track_id FROM {{ face_detections }} WHERE face_id IS NULL")
        found |= {t for t in unassigned["track_id"] if subject_digest("track_id", t) in digests}
    return sorted(found)


def drop_forgotten_tracks(ctx: PrivacyContext, frame: pd.DataFrame | None = None) -> pd.DataFrame | None:
    """Clustering hook: delete unassigned tracks of forgotten people (rows and crops) and return ``frame`` (the
    pending tracks) without them. Catches tracks a detection task wrote while a forget ran."""
    gone = forgotten_tracks(ctx)
    if gone:
        for track_id in gone:
            ctx.bucket.delete(crop_key(track_id))
        ctx.warehouse.delete_where("face_detections", "track_id IN UNNEST(@ids)", {"ids": gone})
        log.info("privacy: %d unassigned track(s) of forgotten people deleted", len(gone))
    if frame is None or not gone:
        return frame
    return frame[~frame["track_id"].isin(set(gone))]


def is_suppressed(wh: Warehouse, *, customer_id: str | None = None, photo_sha256: str | None = None) -> bool:
    """Gallery hook: whether a customer (or one source photo, by the sha256 of its bytes) must not be enrolled."""
    if customer_id is not None and subject_digest("customer_id", customer_id) in suppressed_digests(wh, "customer"):
        return True
    return photo_sha256 is not None and subject_digest("photo", photo_sha256) in suppressed_digests(wh, "photo")


def suppressed_customers(wh: Warehouse, customer_ids: Sequence[str]) -> set[str]:
    """Gallery hook, many at once: the customer ids among ``customer_ids`` that are forgotten."""
    digests = suppressed_digests(wh, "customer")
    return {c for c in customer_ids if subject_digest("customer_id", c) in digests}


@dataclass
class GalleryBlock:
    """Gallery hook: the forgotten customers and source photos (digests only), loaded once per enrolment."""

    customers: set[str]
    photos: set[str]

    def customer(self, customer_id: str) -> bool:
        return subject_digest("customer_id", customer_id) in self.customers

    def photo(self, sha256: str) -> bool:
        return subject_digest("photo", sha256) in self.photos


def gallery_block(wh: Warehouse) -> GalleryBlock:
    """What enrolment must skip: customers and photo bytes of standing forget requests."""
    wh.ensure_tables(["privacy_suppressions"])
    return GalleryBlock(suppressed_digests(wh, "customer"), suppressed_digests(wh, "photo"))
