"""gallery: enrol the customer base, find customers in the ad videos, copy their photos, write JSON records.

- ``enrol``: lists the customer base bucket (``gallery_url`` or the DAG's Param), re-enrols only photos whose bytes
  changed (sha256) or that this model has not seen, writes one status row per photo (``gallery_photos``), and rebuilds
  the template of every customer whose enrolled photos changed (``gallery``). Photos gone from the bucket lose their
  rows; a customer left without an enrolled photo loses the template.
- ``match``: every track of every analysed video (this model only) against the templates, open set (a customer or
  unknown), at the calibrated threshold for ``gallery_far``; writes ``customer_appearances`` (replaced for the model:
  a changed gallery can remove appearances), copies each matched customer's enrolled photos to the output bucket
  (``customers/<customer_id>/<sha256[:16]><ext>``: same bytes, same key, never copied twice) and writes one JSON record
  per video to ``<output>/YYYYMMDD/<creative_id>.json`` (date: the creative's first day) when its content changed.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from typing import Any

import numpy as np

from adpipeline.bucket import Bucket
from adpipeline.privacy import suppression
from adpipeline.stages.context import StageContext, check_failure_share, summary
from adpipeline.tables import CustomerAppearance, GalleryPhoto, GalleryTemplate, GalleryVideoRecord

GALLERY_TABLES = [
    "creatives",
    "face_detections",
    "face_video_status",
    "gallery_photos",
    "gallery",
    "customer_appearances",
    "gallery_video_records",
]


def output_bucket(ctx: StageContext) -> Bucket:
    """Where matched customers' photos and the JSON records go."""
    return Bucket(ctx.settings.gallery_output_url or ctx.bucket.uri("gallery_output"))


def _engine(ctx: StageContext) -> Any:
    from adpipeline.faces.video import shared_engine

    return shared_engine(ctx.settings)


def gallery_threshold(engine: Any, settings: Any) -> tuple[float, bool]:
    """(distance threshold, calibrated?) for gallery matches: the calibrated one for ``gallery_far`` (tightened so no
    match has a confidence under ``match_min_confidence_pct``), else the backend's identity threshold."""
    from adpipeline.faces.calibration import calibration_for
    from adpipeline.faces.video import threshold_for

    calibration = calibration_for(engine.model_id)
    if calibration is None:
        return threshold_for(engine, settings), False
    return calibration.decision_threshold(settings.gallery_far, settings.match_min_confidence_pct / 100), True


def enrol(ctx: StageContext, source: str | None = None) -> dict[str, Any]:
    """Enrol the customer base at ``source`` (default ``gallery_url``); see the module doc."""
    from adpipeline.faces.gallery import enrol_photo, gallery_entries, template_of

    settings, wh = ctx.settings, ctx.warehouse
    source = source or settings.gallery_url
    if not source:
        return summary("gallery.enrol", ctx.window, skipped="no gallery_url set", photos=0)
    wh.ensure_tables(GALLERY_TABLES)
    engine = _engine(ctx)
    base = Bucket(source)
    blocked = suppression.gallery_block(wh)  # forgotten customers and photos are never enrolled again
    entries = [e for e in gallery_entries(list(base.list())) if not blocked.customer(e.customer_id)]
    previous = wh.query_file("gallery/select_gallery_photos", {"model_id": engine.model_id})
    known = {(r.customer_id, r.photo_key): r for r in previous.itertuples(index=False)}
    present = {(e.customer_id, e.photo_key) for e in entries}

    rows: list[GalleryPhoto] = []
    changed_customers: set[str] = set()
    for entry in entries:
        data = base.get_bytes(entry.photo_key)
        digest = hashlib.sha256(data).hexdigest()
        if blocked.photo(digest):
            continue
        old = known.get((entry.customer_id, entry.photo_key))
        if old is not None and old.sha256 == digest:
            continue  # same bytes, same model: nothing to redo
        result = enrol_photo(engine, data, entry.photo_key, settings)
        rows.append(
            GalleryPhoto(
                customer_id=entry.customer_id,
                photo_key=entry.photo_key,
                photo_url=base.uri(entry.photo_key),
                sha256=digest,
                status=result.status,
                reason=result.reason,
                faces=result.faces,
                face_px=result.face_px,
                sharpness=result.sharpness,
                backend=engine.name,
                model_id=engine.model_id,
                embedding=[] if result.embedding is None else [float(x) for x in result.embedding],
                run_id=ctx.run_id,
            )
        )
        changed_customers.add(entry.customer_id)
    gone = [key for key in known if key not in present]
    wh.merge_rows("gallery_photos", rows)
    for customer_id, photo_key in gone:
        wh.delete_where(
            "gallery_photos",
            "customer_id = @customer_id AND photo_key = @photo_key AND model_id = @model_id",
            {"customer_id": customer_id, "photo_key": photo_key, "model_id": engine.model_id},
        )
        changed_customers.add(customer_id)

    # Templates of the customers whose photos changed, from the enrolled photos as they now stand.
    state = wh.query_file("gallery/select_gallery_photos", {"model_id": engine.model_id})
    enrolled: dict[str, list[Any]] = defaultdict(list)
    for r in state.itertuples(index=False):
        if r.customer_id in changed_customers and r.status == "enrolled":
            enrolled[r.customer_id].append(r)
    templates = [
        GalleryTemplate(
            customer_id=customer_id,
            backend=engine.name,
            model_id=engine.model_id,
            template=[float(x) for x in template_of([np.asarray(p.embedding) for p in photos])],
            n_photos=len(photos),
            photo_keys=[p.photo_key for p in photos],
            photo_sha256s=[p.sha256 for p in photos],
            run_id=ctx.run_id,
        )
        for customer_id, photos in sorted(enrolled.items())
    ]
    wh.merge_rows("gallery", templates)
    dropped = sorted(changed_customers - set(enrolled))
    for customer_id in dropped:
        wh.delete_where(
            "gallery",
            "customer_id = @customer_id AND model_id = @model_id",
            {"customer_id": customer_id, "model_id": engine.model_id},
        )
    rejected = sum(r.status != "enrolled" for r in rows)
    return summary(
        "gallery.enrol",
        ctx.window,
        photos=len(entries),
        processed=len(rows),
        rejected=rejected,
        removed=len(gone),
        templates_updated=len(templates),
        templates_dropped=len(dropped),
    )


def match(ctx: StageContext) -> dict[str, Any]:
    """Match all tracks of this model against the gallery; appearances, photo copies and JSON records."""
    from adpipeline.faces.calibration import calibration_for
    from adpipeline.faces.gallery import match_vectors, similarity

    settings, wh = ctx.settings, ctx.warehouse
    wh.ensure_tables(GALLERY_TABLES)
    engine = _engine(ctx)
    ident = {"backend": engine.name, "model_id": engine.model_id}
    threshold, _ = gallery_threshold(engine, settings)
    calibration = calibration_for(engine.model_id)
    gallery = wh.query_file("gallery/select_gallery_templates", {"model_id": engine.model_id})
    customer_ids = list(gallery["customer_id"]) if not gallery.empty else []
    templates = np.stack([np.asarray(t, dtype=np.float64) for t in gallery["template"]]) if customer_ids else None
    videos = wh.query_file("gallery/select_video_tracks", ident)

    tracks = videos[videos["track_id"].notna()] if not videos.empty else videos
    matches = (
        match_vectors(
            np.stack([np.asarray(e, dtype=np.float64) for e in tracks["embedding"]]), customer_ids, templates, threshold
        )
        if len(tracks) and templates is not None
        else []
    )
    # No template (nothing enrolled for this model): every track stays unknown.
    match_of = dict(zip(tracks["track_id"], matches, strict=True)) if len(matches) else {}

    # customer_appearances: (customer, video, unique face) with the matching tracks' span and the best distance.
    groups: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    for t in tracks.itertuples(index=False) if len(tracks) else []:
        m = match_of.get(t.track_id)
        if m is not None and m.customer_id is not None:
            groups[(m.customer_id, t.creative_id, t.face_id or "")].append((t, m.distance))
    out = output_bucket(ctx)
    photos = _enrolled_photos(ctx, engine.model_id)
    copied: dict[str, list[str]] = {}
    for customer_id in sorted({key[0] for key in groups}):
        copied[customer_id] = [_copy_once(out, customer_id, p) for p in photos.get(customer_id, [])]
    appearances = []
    for (customer_id, creative_id, face_id), items in sorted(groups.items()):
        best_track, best_d = min(items, key=lambda item: item[1])
        appearances.append(
            CustomerAppearance(
                customer_id=customer_id,
                creative_id=creative_id,
                face_id=face_id,
                backend=engine.name,
                model_id=engine.model_id,
                track_ids=sorted(t.track_id for t, _ in items),
                first_time_s=float(min(t.first_time_s for t, _ in items)),
                last_time_s=float(max(t.last_time_s for t, _ in items)),
                best_time_s=float(best_track.best_time_s),
                best_distance=round(best_d, 4),
                best_similarity=round(similarity(best_d), 4),
                confidence_pct=round(100 * calibration.confidence(best_d), 2) if calibration else None,
                threshold=round(threshold, 4),
                copied_photo_urls=copied.get(customer_id, []),
            )
        )
    # Replace this model's appearances: a customer removed from the gallery must disappear from the table.
    wh.delete_where("customer_appearances", "model_id = @model_id", {"model_id": engine.model_id})
    wh.merge_rows("customer_appearances", appearances)

    records, written = _write_records(ctx, out, videos, match_of, calibration, threshold, engine)
    wh.merge_rows("gallery_video_records", records)
    check_failure_share("gallery.match", 0, max(1, len(videos)), settings.max_failure_share)
    return summary(
        "gallery.match",
        ctx.window,
        customers=len(customer_ids),
        tracks=len(tracks),
        matched_tracks=sum(1 for m in matches if m.customer_id),
        appearances=len(appearances),
        customers_found=len(copied),
        records_written=written,
    )


def _enrolled_photos(ctx: StageContext, model_id: str) -> dict[str, list[Any]]:
    state = ctx.warehouse.query_file("gallery/select_gallery_photos", {"model_id": model_id})
    photos: dict[str, list[Any]] = defaultdict(list)
    for r in state.itertuples(index=False):
        if r.status == "enrolled":
            photos[r.customer_id].append(r)
    return photos


def _copy_once(out: Bucket, customer_id: str, photo: Any) -> str:
    """Copy one enrolled photo to the output bucket under a content-addressed key; skipped when it is there."""
    extension = "." + photo.photo_key.rsplit(".", 1)[-1].lower() if "." in photo.photo_key else ""
    key = f"customers/{customer_id}/{photo.sha256[:16]}{extension}"
    if not out.exists(key):
        out.put_bytes(key, _read_url(photo.photo_url))
    return key  # a key in the output bucket, not its URL: a moved home keeps its copies


def _read_url(url: str) -> bytes:
    import fsspec

    with fsspec.open(url, "rb") as fh:
        return fh.read()


def _write_records(
    ctx: StageContext,
    out: Bucket,
    videos: Any,
    match_of: dict[str, Any],
    calibration: Any,
    threshold: float,
    engine: Any,
) -> tuple[list[GalleryVideoRecord], int]:
    """One JSON record per analysed video, rewritten only when its content changed."""
    from adpipeline.faces.gallery import similarity

    if videos.empty:
        return [], 0
    known = ctx.warehouse.query_file("gallery/select_video_records", {"model_id": engine.model_id})
    digests = {r.creative_id: (r.record_sha256, r.record_url) for r in known.itertuples(index=False)}
    rows, written = [], 0
    for creative_id, part in videos.groupby("creative_id", sort=True):
        first = part.iloc[0]
        faces = []
        for t in part.itertuples(index=False):
            if t.track_id is None or (isinstance(t.track_id, float) and np.isnan(t.track_id)):
                continue
            m = match_of.get(t.track_id)
            distance = None if m is None or not np.isfinite(m.distance) else round(m.distance, 4)
            customer = m.customer_id if m is not None else None
            faces.append(
                {
                    "track_id": t.track_id,
                    "face_id": t.face_id,
                    "first_time_s": float(t.first_time_s),
                    "last_time_s": float(t.last_time_s),
                    "best_time_s": float(t.best_time_s),
                    "box": [int(v) for v in t.best_box] if t.best_box is not None and len(t.best_box) else None,
                    "name": customer or "unknown",
                    "customer_id": customer,
                    "distance": distance,
                    "similarity": None if distance is None else round(similarity(distance), 4),
                    "confidence_pct": (
                        round(100 * calibration.confidence(distance), 2)
                        if calibration is not None and distance is not None
                        else None
                    ),
                }
            )
        record = {
            "creative_id": creative_id,
            "url": first.url,
            "backend": engine.name,
            "model_id": engine.model_id,
            "threshold": round(threshold, 4),
            "faces": faces,
        }
        data = json.dumps(record, indent=1, sort_keys=True).encode()
        digest = hashlib.sha256(data).hexdigest()
        day = str(first.first_seen_date)[:10].replace("-", "")
        key = f"{day}/{creative_id}.json"
        if digests.get(creative_id, (None, None))[0] != digest or not out.exists(key):
            out.put_bytes(key, data)
            written += 1
        customers = sorted({f["customer_id"] for f in faces if f["customer_id"]})
        rows.append(
            GalleryVideoRecord(
                creative_id=creative_id,
                record_url=key,
                record_sha256=digest,
                n_tracks=len(faces),
                n_matched=sum(1 for f in faces if f["customer_id"]),
                customer_ids=customers,
                model_id=engine.model_id,
                run_id=ctx.run_id,
            )
        )
    return rows, written


def load_gallery(ctx: StageContext) -> Any:
    """The enrolled templates of the configured engine's model, as an ``identify.Gallery``."""
    from adpipeline.faces.identify import Gallery

    engine = _engine(ctx)
    ctx.warehouse.ensure_tables(["gallery"])
    frame = ctx.warehouse.query_file("gallery/select_gallery_templates", {"model_id": engine.model_id})
    ids = list(frame["customer_id"]) if not frame.empty else []
    templates = (
        np.stack([np.asarray(t, dtype=np.float32) for t in frame["template"]]) if ids else np.zeros((0, engine.dim))
    )
    return Gallery(engine.model_id, ids, templates)
