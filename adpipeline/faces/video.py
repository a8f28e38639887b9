"""Faces in one video: sample frames, detect, align, track, embed a few samples per track.

Only sampled frames are decoded past what the codec needs: the packets are indexed once (demuxing reads bytes, no
decoding), and for each sample time the decoder jumps to the keyframe before it when that keyframe lies ahead of the
current position, so a video with a keyframe every second decodes one frame per sample. Frames are converted
(scaled by swscale while converting) to at most ``face_frame_max_side`` and rotated as the display matrix says; the
detector sees a copy downscaled to ``face_detect_max_side``.

Bad input never raises: the result carries a status (``ok``, ``no_faces``, ``missing``, ``corrupt``,
``no_video_stream``, ``no_frames``, ``failed``) and a reason. A stream that breaks part-way keeps the faces found
before the break and says so in ``reason``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np

from adpipeline.faces.engine import FaceEngine, get_engine
from adpipeline.faces.tracking import Detection, Track, Tracker, chip_signature, face_quality

if TYPE_CHECKING:
    from adpipeline.settings import Settings

__all__ = ["VideoFaces", "process_video", "process_videos", "sample_frames", "shared_engine"]

log = logging.getLogger(__name__)
CROP_MAX_SIDE = 256
CROP_MARGIN = 0.25


@dataclass
class VideoFaces:
    """The faces stage's result for one video (what ``face_video_status`` and ``face_detections`` store)."""

    creative_id: str
    status: str
    reason: str | None = None
    frames_sampled: int = 0
    duration_s: float | None = None
    width: int | None = None  # display size, after rotation
    height: int | None = None
    backend: str = ""
    model_id: str = ""
    tracks: list[Track] = field(default_factory=list)
    embeddings_computed: int = 0
    seconds: float = 0.0  # wall time spent on this video


@dataclass
class _Sample:
    index: int
    time_s: float
    rgb: np.ndarray  # work frame, rotated
    scale: float  # work pixels per video pixel


class _VideoError(Exception):
    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _rotate(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """Apply a display-matrix rotation (PyAV's ``frame.rotation``: counter-clockwise degrees)."""
    quarter = round(degrees / 90.0) % 4
    return np.ascontiguousarray(np.rot90(rgb, k=quarter)) if quarter else rgb


@dataclass
class _Probe:
    duration_s: float | None
    keyframes: list[int]  # pts of keyframe packets, ascending
    width: int
    height: int


def sample_frames(
    path: str, sample_fps: float, max_frames: int, frame_max_side: int, info: dict[str, object] | None = None
) -> Iterator[tuple[float, np.ndarray, float]]:
    """Yield (time_s, rgb, scale) for the sampled frames of a video; raises ``_VideoError`` on unreadable input.

    ``scale`` is work pixels per video pixel. If the video is longer than ``max_frames / sample_fps`` the samples are
    spread evenly over its whole duration instead. ``info`` (optional) receives duration, size and truncation.
    """
    import av

    info = info if info is not None else {}
    if not os.path.exists(path):
        raise _VideoError("missing", f"no file at {path}")
    try:
        container = av.open(path, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise _VideoError("corrupt", f"cannot open: {type(exc).__name__}: {exc}") from exc
    with container:
        if not container.streams.video:
            raise _VideoError("no_video_stream", "the file has no video stream")
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1  # parallelism is across videos, one process per core
        time_base = float(stream.time_base) if stream.time_base else 1 / 90000
        start_pts = stream.start_time or 0
        duration_s = None
        if stream.duration and stream.time_base:
            duration_s = float(stream.duration * stream.time_base)
        elif container.duration:
            duration_s = container.duration / 1_000_000
        interval = 1.0 / sample_fps
        if duration_s and duration_s > 0:
            interval = max(interval, duration_s / max_frames)
            offset = min(interval, duration_s) / 2.0
            count = min(max_frames, max(1, math.ceil((duration_s - offset) / interval)))
        else:
            offset, count = 0.0, max_frames
        targets = [offset + k * interval for k in range(count)]
        info["duration_s"] = duration_s
        # Index keyframes up to the last target (demux only: no decoding).
        keyframes: list[int] = []
        last_target_pts = start_pts + targets[-1] / time_base
        try:
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                if packet.is_keyframe:
                    keyframes.append(int(packet.pts))
                if packet.pts > last_target_pts and keyframes:
                    break
        except av.FFmpegError:
            pass  # a broken tail still leaves the keyframes before it
        keyframes.sort()
        if not keyframes:
            raise _VideoError("corrupt", "no decodable keyframe")
        targets = _snap_to_keyframes(targets, [(k - start_pts) * time_base for k in keyframes], interval)
        try:
            container.seek(keyframes[0], stream=stream, backward=True)
        except av.FFmpegError as exc:
            raise _VideoError("corrupt", f"cannot seek: {exc}") from exc

        decoder = container.decode(stream)
        position: int | None = None  # pts of the last decoded frame
        produced = 0
        try:
            for target in targets:
                target_pts = start_pts + target / time_base
                before = [k for k in keyframes if k <= target_pts + 1e-3 / time_base]
                key = before[-1] if before else keyframes[0]
                if key > (position if position is not None else keyframes[0]):
                    container.seek(key, stream=stream, backward=True)
                    decoder = container.decode(stream)
                frame = None
                last_seen = None
                for candidate in decoder:
                    position = candidate.pts if candidate.pts is not None else (position or 0) + 1
                    if candidate.pts is None or candidate.pts >= target_pts - 1e-6 / time_base:
                        frame = candidate
                        break
                    last_seen = candidate
                if frame is None and produced == 0 and last_seen is not None:
                    frame = last_seen  # shorter than the first sample time (e.g. a one-frame video)
                if frame is None:
                    break
                yield _convert(frame, frame_max_side, start_pts, time_base, target)
                produced += 1
        except av.FFmpegError as exc:
            if produced == 0:
                raise _VideoError("corrupt", f"decode failed: {type(exc).__name__}: {exc}") from exc
            info["truncated"] = f"decoding stopped after {produced} samples: {type(exc).__name__}"


def _snap_to_keyframes(targets: list[float], keyframe_times: list[float], interval: float) -> list[float]:
    """Move each sample time to the nearest keyframe within half an interval: a keyframe decodes alone, while a
    frame between keyframes costs decoding every frame since the last one (~15 frames at 30 fps, gop 1 s)."""
    snapped: list[float] = []
    for target in targets:
        near = [k for k in keyframe_times if abs(k - target) <= interval / 2 and (not snapped or k > snapped[-1])]
        snapped.append(min(near, key=lambda k: abs(k - target)) if near else target)
    return snapped


def _convert(
    frame: object, frame_max_side: int, start_pts: int, time_base: float, target: float
) -> tuple[float, np.ndarray, float]:
    width, height = frame.width, frame.height  # type: ignore[attr-defined]
    scale = min(1.0, frame_max_side / max(width, height))
    out_w, out_h = max(2, int(round(width * scale))), max(2, int(round(height * scale)))
    if (out_w, out_h) != (width, height):
        rgb = frame.reformat(width=out_w, height=out_h, format="rgb24", interpolation="AREA").to_ndarray()  # type: ignore[attr-defined]
    else:
        rgb = frame.to_ndarray(format="rgb24")  # type: ignore[attr-defined]
    rotation = getattr(frame, "rotation", 0) or 0
    rgb = _rotate(rgb, rotation)
    pts = frame.pts  # type: ignore[attr-defined]
    time_s = (pts - start_pts) * time_base if pts is not None else target
    return float(max(0.0, time_s)), rgb, scale


def _crop(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    mx, my = (x1 - x0) * CROP_MARGIN, (y1 - y0) * CROP_MARGIN
    h, w = rgb.shape[:2]
    cx0, cy0 = max(0, int(x0 - mx)), max(0, int(y0 - my))
    cx1, cy1 = min(w, int(x1 + mx)), min(h, int(y1 + my))
    crop = rgb[cy0:cy1, cx0:cx1]
    side = max(crop.shape[:2])
    if side > CROP_MAX_SIDE:
        factor = CROP_MAX_SIDE / side
        crop = cv2.resize(
            crop,
            (max(1, int(crop.shape[1] * factor)), max(1, int(crop.shape[0] * factor))),
            interpolation=cv2.INTER_AREA,
        )
    return np.ascontiguousarray(crop)


def count_faces(engine: FaceEngine, rgb: np.ndarray, settings: Settings) -> int:
    """Faces in one still image with the same size, score and detection-resolution rules as the video pipeline
    (the offline feature extractor's ``face_count``)."""
    height, width = rgb.shape[:2]
    det_scale = min(1.0, settings.face_detect_max_side / max(height, width))
    det_rgb = rgb
    if det_scale < 1.0:
        size = (max(1, int(width * det_scale)), max(1, int(height * det_scale)))
        det_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    min_score = settings.face_min_det_score if settings.face_min_det_score is not None else engine.default_min_score
    return sum(
        1
        for face in engine.detect(det_rgb)
        if face.score >= min_score and face.size_px / det_scale >= settings.face_min_size_px
    )


def detect_in_frame(
    engine: FaceEngine,
    rgb: np.ndarray,
    scale: float,
    sample_index: int,
    time_s: float,
    settings: Settings,
) -> list[Detection]:
    """Detections (with aligned chips, quality and crops) in one work frame; tiny and low-score faces dropped."""
    height, width = rgb.shape[:2]
    det_scale = min(1.0, settings.face_detect_max_side / max(height, width))
    if det_scale < 1.0:
        det_rgb = cv2.resize(
            rgb, (max(1, int(width * det_scale)), max(1, int(height * det_scale))), interpolation=cv2.INTER_AREA
        )
    else:
        det_rgb = rgb
    min_score = settings.face_min_det_score if settings.face_min_det_score is not None else engine.default_min_score
    detections = []
    for face in engine.detect(det_rgb):
        if face.score < min_score:
            continue
        face = face.scaled(1.0 / det_scale, width, height) if det_scale < 1.0 else face
        size_px = int(round(face.size_px / scale))
        if size_px < settings.face_min_size_px:
            continue
        chip = engine.align(rgb, face)
        detections.append(
            Detection(
                sample_index=sample_index,
                time_s=time_s,
                box=face.box,
                size_px=size_px,
                video_box=tuple(int(round(v / scale)) for v in face.box),  # type: ignore[arg-type]
                score=face.score,
                quality=face_quality(chip, size_px, face.score, engine.default_min_score),
                chip=chip,
                crop=_crop(rgb, face.box),
                signature=chip_signature(chip),
            )
        )
    return detections


def threshold_for(engine: FaceEngine, settings: Settings) -> float:
    """The identity threshold in force: the setting, else the backend's measured default."""
    return settings.face_match_threshold if settings.face_match_threshold is not None else engine.default_threshold


def process_video(creative_id: str, path: str, settings: Settings, engine: FaceEngine | None = None) -> VideoFaces:
    """Sample, detect, track and embed the faces of one video. Never raises for bad input (see the module doc)."""
    started = time.perf_counter()
    engine = engine or shared_engine(settings)
    result = VideoFaces(creative_id=creative_id, status="ok", backend=engine.name, model_id=engine.model_id)
    tracker = Tracker(engine, threshold_for(engine, settings), settings.face_embeds_per_track)
    info: dict[str, object] = {}
    try:
        frames = sample_frames(
            path, settings.face_sample_fps, settings.face_max_frames, settings.face_frame_max_side, info
        )
        for index, (time_s, rgb, scale) in enumerate(frames):
            if result.width is None:
                result.height, result.width = (int(round(v / scale)) for v in rgb.shape[:2])
            tracker.update(index, detect_in_frame(engine, rgb, scale, index, time_s, settings))
            result.frames_sampled += 1
        result.tracks = tracker.finish(creative_id)
    except _VideoError as exc:
        result.status, result.reason = exc.status, exc.reason
    except Exception as exc:  # a per-video failure is a row, not a crashed batch
        log.exception("faces: video %s failed", creative_id)
        result.status, result.reason = "failed", f"{type(exc).__name__}: {exc}"[:500]
        result.tracks = []
    result.duration_s = info.get("duration_s")  # type: ignore[assignment]
    result.embeddings_computed = tracker.embeddings_computed
    if result.status == "ok":
        if result.frames_sampled == 0:
            result.status, result.reason = "no_frames", "no frame could be decoded"
        elif not result.tracks:
            result.status = "no_faces"
        if info.get("truncated"):
            result.reason = str(info["truncated"])
    result.seconds = round(time.perf_counter() - started, 3)
    log.info(
        "faces: %s %s frames=%d tracks=%d embeds=%d %.2fs",
        creative_id,
        result.status,
        result.frames_sampled,
        len(result.tracks),
        result.embeddings_computed,
        result.seconds,
    )
    return result


# --- parallel ---------------------------------------------------------------------------------------------------------
_ENGINES: dict[tuple[object, ...], FaceEngine] = {}


def _engine_key(settings: Settings) -> tuple[object, ...]:
    return (
        settings.face_backend,
        str(settings.insightface_model_dir),
        settings.face_detect_upsample,
        settings.face_detector,
    )


def shared_engine(settings: Settings) -> FaceEngine:
    """The engine for these settings, loaded once per process (the stage and ``process_videos`` share it)."""
    key = _engine_key(settings)
    if key not in _ENGINES:
        _ENGINES[key] = get_engine(settings)
    return _ENGINES[key]


@contextmanager
def _one_thread_each() -> Generator[None, None, None]:
    """OpenCV and BLAS (the numpy ResNet) on one thread, for callers that run one process per core."""
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl comes with scipy/scikit-image installs
            yield
            return
        with threadpool_limits(limits=1):
            yield
    finally:
        cv2.setNumThreads(previous)


def process_videos(items: Sequence[tuple[str, str]], settings: Settings) -> list[VideoFaces]:
    """``process_video`` over (creative_id, path) pairs, one after another in this process; results in input order.

    There is deliberately no process pool here: inside an Airflow worker a spawned child re-runs the worker's
    entry point, and parallel work belongs to Airflow anyway (the faces DAG maps one task per chunk of videos, so
    Celery or Kubernetes executors spread it over machines). A misconfigured backend (``FaceEngineUnavailable``)
    raises before any video is read: it is a setup error rather than bad input.
    """
    if not items:
        return []
    engine = shared_engine(settings)
    return [process_video(cid, path, settings, engine) for cid, path in items]
