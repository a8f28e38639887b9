"""faces: detect, embed and track faces in new videos; assign tracks to unique faces; rebuild face_performance."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import numpy as np

from adpipeline.stages.context import StageContext, check_failure_share, summary
from adpipeline.stages.media import _blob_key
from adpipeline.tables import Face, FaceDetection, FaceVideoStatus
from adpipeline.warehouse.schema import rows_from_frame

FACE_TABLES = ["creatives", "media_fetches", "video_metadata", "face_detections", "faces", "face_video_status"]


def crop_key(track_id: str) -> str:
    """Bucket key of a track's best face crop (deleted with the person)."""
    return f"faces/crops/{track_id}.jpg"


def detect(ctx: StageContext) -> dict[str, Any]:
    """Process the window's videos not yet analysed by this backend/model, in (first seen, creative id) order, so
    that daily runs and one run over many days assign the same face ids."""
    from adpipeline.faces.cluster import NewTrack, assign_faces
    from adpipeline.faces.engine import engine_info
    from adpipeline.faces.video import process_videos, shared_engine, threshold_for

    wh, settings = ctx.warehouse, ctx.settings
    wh.ensure_tables(FACE_TABLES)
    engine = shared_engine(settings)  # the same instance process_videos works with: loaded once per process
    backend, model_id = engine_info(engine)
    threshold = threshold_for(engine, settings)
    ident = {"backend": backend, "model_id": model_id}
    todo = wh.query_file("faces/select_pending_videos", {**ctx.window.params(), **ident})
    if todo.empty:
        return summary("faces.detect", ctx.window, videos=0, tracks=0, new_faces=0)

    with ExitStack() as files:
        items, order = [], {}
        for item in todo.itertuples(index=False):
            path = files.enter_context(ctx.bucket.local_file(_blob_key(ctx, item.blob_path)))
            items.append((item.creative_id, path))
            order[item.creative_id] = (str(item.first_seen_date), item.creative_id)
        results = process_videos(items, settings)

    known = _known_faces(ctx, ident)
    tracks = [t for r in results for t in r.tracks]
    new_tracks = [
        NewTrack(
            t.track_id, t.creative_id, np.asarray(t.embedding, dtype=np.float64), t.quality, order[t.creative_id],
            t.n_embedded,
        )
        for t in tracks
    ]
    assignment = assign_faces(known, new_tracks, threshold)

    crop_paths = {t.track_id: ctx.bucket.put_bytes(crop_key(t.track_id), t.crop_jpeg) for t in tracks if t.crop_jpeg}
    detections = [
        FaceDetection(
            track_id=t.track_id,
            creative_id=t.creative_id,
            face_id=assignment.face_of.get(t.track_id),
            backend=backend,
            model_id=model_id,
            first_time_s=t.first_time_s,
            last_time_s=t.last_time_s,
            best_time_s=t.best_time_s,
            n_frames=t.n_frames,
            det_score=float(t.det_score),
            box_size_px=int(t.box_size_px),
            embedding=[float(x) for x in t.embedding],
            crop_path=crop_paths.get(t.track_id),
            quality=float(t.quality),
            best_box=[int(v) for v in t.best_box],
        )
        for t in tracks
    ]
    statuses = [
        FaceVideoStatus(
            creative_id=r.creative_id,
            status=r.status,
            reason=r.reason,
            frames_sampled=r.frames_sampled,
            tracks=len(r.tracks),
            backend=backend,
            model_id=model_id,
        )
        for r in results
    ]
    faces = [
        Face(
            face_id=f.face_id,
            backend=backend,
            model_id=model_id,
            centroid=[float(x) for x in f.centroid],
            n_tracks=f.n_tracks,
            n_videos=f.n_videos,
            first_creative_id=f.first_creative_id,
            best_track_id=f.best_track_id,
            best_quality=float(f.best_quality),
            best_crop_path=ctx.bucket.uri(crop_key(f.best_track_id)) if f.best_track_id else None,
        )
        for f in assignment.faces
    ]
    # Order matters for a crash between writes: detections and faces first, the status row (which marks the
    # video done) last, so a re-run redoes a half-written video instead of skipping it.
    wh.merge_rows("face_detections", detections)
    wh.merge_rows("faces", faces)
    wh.merge_rows("face_video_status", statuses)
    failed = sum(r.status not in ("ok", "no_faces") for r in results)
    check_failure_share("faces.detect", failed, len(results), settings.max_failure_share)
    return summary(
        "faces.detect",
        ctx.window,
        videos=len(results),
        tracks=len(tracks),
        new_faces=len(assignment.new_face_ids),
        failed=failed,
    )


def _known_faces(ctx: StageContext, ident: dict[str, str]) -> list[Any]:
    from adpipeline.faces.cluster import KnownFace

    faces = rows_from_frame(Face, ctx.warehouse.query_file("faces/select_known_faces", ident))
    videos: dict[str, set[str]] = {}
    for record in ctx.warehouse.query_file("faces/select_face_videos", ident).itertuples(index=False):
        videos.setdefault(record.face_id, set()).add(record.creative_id)
    return [
        KnownFace(
            face_id=f.face_id,
            centroid=np.asarray(f.centroid, dtype=np.float64),
            n_tracks=f.n_tracks,
            creative_ids=videos.get(f.face_id, set()),
            first_creative_id=f.first_creative_id,
            best_track_id=f.best_track_id,
            best_quality=f.best_quality if f.best_quality is not None else -1.0,
        )
        for f in faces
    ]


def performance(ctx: StageContext) -> dict[str, Any]:
    """Rebuild ``face_performance`` from ``sql/faces/select_face_performance.sql``."""
    wh = ctx.warehouse
    wh.ensure_tables(FACE_TABLES + ["face_performance"])
    wh.rebuild_from_file("face_performance", "faces/select_face_performance", names=ctx.source_names())
    n = int(wh.query("SELECT COUNT(*) AS n FROM {{ face_performance }}").iloc[0]["n"])
    return summary("faces.performance", ctx.window, rows=n)
