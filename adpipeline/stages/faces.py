"""faces: detect, embed and track faces in new videos; assign tracks to unique faces; rebuild face_performance."""

from __future__ import annotations

from typing import Any

import numpy as np

from adpipeline.faces.crops import crop_key
from adpipeline.privacy import suppression
from adpipeline.stages.context import Chunk, StageContext, check_failure_share, log, make_chunks, summary
from adpipeline.stages.media import _blob_key
from adpipeline.tables import Face, FaceDetection, FaceVideoStatus
from adpipeline.warehouse.schema import rows_from_frame

FACE_TABLES = ["creatives", "media_fetches", "video_metadata", "face_detections", "faces", "face_video_status"]


def _identity(ctx: StageContext) -> tuple[Any, dict[str, str]]:
    """The shared engine (loaded once per process) and its backend/model identity."""
    from adpipeline.faces.engine import engine_info
    from adpipeline.faces.video import shared_engine

    engine = shared_engine(ctx.settings)
    backend, model_id = engine_info(engine)
    return engine, {"backend": backend, "model_id": model_id}


def _pending_videos(ctx: StageContext, ident: dict[str, str]) -> Any:
    ctx.warehouse.ensure_tables(FACE_TABLES)
    return ctx.warehouse.query_file("faces/select_pending_videos", ident)


def plan(ctx: StageContext) -> list[Chunk]:
    """Every video this backend/model has not analysed yet (whatever day it came from), in chunks of
    ``faces_chunk_size`` for the mapped detection tasks."""
    _engine, ident = _identity(ctx)
    todo = _pending_videos(ctx, ident)
    chunks = make_chunks("video", list(todo["creative_id"]), ctx.settings.faces_chunk_size)
    log.info("faces: %d videos pending in %d chunks", len(todo), len(chunks))
    return chunks


def detect(ctx: StageContext) -> dict[str, Any]:
    """Sample, detect, embed and track faces in the pending videos (of this task's chunk). Videos are copied from
    the bucket one at a time; each video's tracks (not yet assigned to a unique face) and crops are written, then
    its status row, which marks it done: a killed task redoes only the videos it had not finished."""
    from adpipeline.faces.video import process_video

    settings = ctx.settings
    engine, ident = _identity(ctx)
    todo = ctx.only_chunk(_pending_videos(ctx, ident))
    forgotten = suppression.forgotten_segments(ctx)
    videos = tracks = failed = 0
    for item in todo.itertuples(index=False):
        with ctx.bucket.local_file(_blob_key(ctx, item.blob_path)) as path:
            result = forgotten.drop_from(process_video(item.creative_id, str(path), settings, engine), item.sha256)
        _write_video(ctx, result, ident)
        videos += 1
        tracks += len(result.tracks)
        failed += result.status not in ("ok", "no_faces")
    check_failure_share("faces.detect", failed, videos, settings.max_failure_share)
    return summary("faces.detect", ctx.window, videos=videos, tracks=tracks, failed=failed)


def _write_video(ctx: StageContext, result: Any, ident: dict[str, str]) -> None:
    backend, model_id = ident["backend"], ident["model_id"]
    crop_paths = {}  # bucket keys, not URLs: a moved home or bucket keeps its crops
    for t in result.tracks:
        if t.crop_jpeg:
            ctx.bucket.put_bytes(crop_key(t.track_id), t.crop_jpeg)
            crop_paths[t.track_id] = crop_key(t.track_id)
    detections = [
        FaceDetection(
            track_id=t.track_id,
            creative_id=t.creative_id,
            face_id=None,  # placed by cluster()
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
        for t in result.tracks
    ]
    status = FaceVideoStatus(
        creative_id=result.creative_id,
        status=result.status,
        reason=result.reason,
        frames_sampled=result.frames_sampled,
        tracks=len(result.tracks),
        backend=backend,
        model_id=model_id,
    )
    # The status row marks the video done, so it is written last: a crash in between redoes the video.
    ctx.warehouse.merge_rows("face_detections", detections)
    ctx.warehouse.merge_rows("face_video_status", [status])


def cluster(ctx: StageContext) -> dict[str, Any]:
    """Place every track no unique face holds yet (from any detection task, any day) in the global order
    (first seen, creative id, track id), so daily runs and one run over many days give the same face ids."""
    from adpipeline.faces.cluster import NewTrack, assign_faces
    from adpipeline.faces.video import threshold_for

    engine, ident = _identity(ctx)
    wh = ctx.warehouse
    wh.ensure_tables(FACE_TABLES)
    frame = suppression.drop_forgotten_tracks(ctx, wh.query_file("faces/select_unassigned_tracks", ident))
    assert frame is not None  # given a frame, the hook returns one
    if frame.empty:
        return summary("faces.cluster", ctx.window, tracks=0, new_faces=0)
    new_tracks = [
        NewTrack(
            r.track_id,
            r.creative_id,
            np.asarray(r.embedding, dtype=np.float64),
            float(r.quality) if r.quality == r.quality and r.quality is not None else 0.0,
            (str(r.first_seen_date)[:10], r.creative_id),
            # embedded samples behind the track's mean (the stage embeds its best face_embeds_per_track frames)
            min(int(r.n_frames), ctx.settings.face_embeds_per_track),
        )
        for r in frame.itertuples(index=False)
    ]
    assignment = assign_faces(_known_faces(ctx, ident), new_tracks, threshold_for(engine, ctx.settings))
    faces = [
        Face(
            face_id=f.face_id,
            backend=ident["backend"],
            model_id=ident["model_id"],
            centroid=[float(x) for x in f.centroid],
            n_tracks=f.n_tracks,
            n_videos=f.n_videos,
            first_creative_id=f.first_creative_id,
            best_track_id=f.best_track_id,
            best_quality=float(f.best_quality),
            best_crop_path=crop_key(f.best_track_id) if f.best_track_id else None,
        )
        for f in assignment.faces
    ]
    detections = rows_from_frame(
        FaceDetection,
        wh.query(
            "SELECT * FROM {{ face_detections }} WHERE track_id IN UNNEST(@ids)", {"ids": sorted(assignment.face_of)}
        ),
    )
    for row in detections:
        row.face_id = assignment.face_of[row.track_id]
    # Faces first, then the tracks' face ids (which take them off the pending list).
    wh.merge_rows("faces", faces)
    wh.merge_rows("face_detections", detections)
    return summary(
        "faces.cluster", ctx.window, tracks=len(new_tracks), new_faces=len(assignment.new_face_ids), faces=len(faces)
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
