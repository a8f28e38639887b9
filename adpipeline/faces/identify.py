"""Identify gallery customers in a video file, a stream (http/rtsp) or a camera, frame by frame.

``identify(source, templates, settings, ...)`` decodes the source in order (PyAV for files and URLs, OpenCV for a
camera index), looks at ``sample_fps`` frames a second, detects and embeds the faces of those frames (the faces
stage's ``detect_in_frame``), and names each face with the open-set gallery match (a customer, or "unknown") and its
calibrated confidence. Optional outputs: an annotated video (every decoded frame, with the latest sample's boxes and
names drawn) and one JSON record per sampled frame in date folders (``<json_dir>/YYYYMMDD/<source>_<ms>.json``; a
folder or a bucket URL).
``KeyboardInterrupt`` (Ctrl-C) stops cleanly: the annotated video is finished and every record written so far is
kept; the summary says ``interrupted``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:
    from adpipeline.faces.engine import FaceEngine
    from adpipeline.settings import Settings

__all__ = ["Gallery", "IdentifySummary", "identify", "open_source"]


@dataclass
class Gallery:
    """Templates of one model: ``customer_ids[i]`` owns row ``templates[i]`` (unit vectors)."""

    model_id: str
    customer_ids: list[str]
    templates: np.ndarray


@dataclass
class IdentifySummary:
    source: str
    frames_decoded: int = 0
    frames_sampled: int = 0
    faces: int = 0
    named: int = 0
    customers: dict[str, int] = field(default_factory=dict)  # customer -> sampled frames they were seen in
    records: int = 0
    out: str | None = None
    seconds: float = 0.0
    interrupted: bool = False
    source_fps: float | None = None

    @property
    def processing_fps(self) -> float:
        """Decoded frames per wall second (compare with ``source_fps``: >= means it keeps up with a live source)."""
        return self.frames_decoded / self.seconds if self.seconds else 0.0


def open_source(source: str) -> tuple[Iterator[tuple[float, Callable[[], np.ndarray]]], float | None, float | None]:
    """(frames as (time_s, a function giving the RGB), frames per second, duration_s) of a file, URL or camera
    index. The RGB conversion (~3 ms a 720p frame) is paid only for frames that are looked at or written."""
    if re.fullmatch(r"\d+", source):
        return _camera(int(source))
    import av

    container = av.open(source, mode="r", metadata_errors="ignore", timeout=(10.0, 10.0))
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    fps = float(stream.average_rate) if stream.average_rate else None
    duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
    if duration is None and container.duration:
        duration = container.duration / 1_000_000

    def frames() -> Iterator[tuple[float, Callable[[], np.ndarray]]]:
        from adpipeline.faces.video import _rotate

        def converter(frame: Any) -> Callable[[], np.ndarray]:
            return lambda: _rotate(frame.to_ndarray(format="rgb24"), getattr(frame, "rotation", 0) or 0)

        try:
            start = stream.start_time or 0
            base = float(stream.time_base) if stream.time_base else 1 / 90000
            for n, frame in enumerate(container.decode(stream)):
                t = (frame.pts - start) * base if frame.pts is not None else n / (fps or 25.0)
                yield max(0.0, t), converter(frame)
        finally:
            container.close()

    return frames(), fps, duration


def _camera(index: int) -> tuple[Iterator[tuple[float, Callable[[], np.ndarray]]], float | None, float | None]:
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise OSError(f"cannot open camera {index}")
    fps = capture.get(cv2.CAP_PROP_FPS) or None

    def frames() -> Iterator[tuple[float, Callable[[], np.ndarray]]]:
        started = time.monotonic()
        try:
            while True:
                ok, bgr = capture.read()
                if not ok:
                    return
                yield time.monotonic() - started, functools.partial(cv2.cvtColor, bgr, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()

    return frames(), fps, None


def _label(name: str, confidence: float | None) -> str:
    return name if confidence is None else f"{name} {confidence:.0f}%"


def _draw(rgb: np.ndarray, faces: list[dict[str, Any]]) -> np.ndarray:
    out = rgb.copy()
    for face in faces:
        x0, y0, x1, y1 = face["box"]
        colour = (40, 200, 60) if face["customer_id"] else (230, 60, 40)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, 2)
        text = _label(face["name"], face["confidence_pct"])
        (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1)
        cv2.rectangle(out, (x0, max(0, y0 - h - 8)), (x0 + w + 6, y0), colour, -1)
        cv2.putText(out, text, (x0 + 3, max(h, y0 - 5)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


class _Writer:
    """Annotated output video (H.264, yuv420p); even-sized frames."""

    def __init__(self, path: Path, fps: float) -> None:
        import av

        self.path = path
        self.fps = max(1, int(round(fps)))
        self.container = av.open(str(path), mode="w")
        self.stream: Any = None

    def write(self, rgb: np.ndarray) -> None:
        import av

        h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
        if self.stream is None:
            self.stream = self.container.add_stream("libx264", rate=self.fps)
            self.stream.width, self.stream.height = w, h
            self.stream.pix_fmt = "yuv420p"
            self.stream.options = {"preset": "ultrafast", "crf": "28"}
            self.stream.codec_context.thread_count = 1
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        if self.stream is not None:
            for packet in self.stream.encode():
                self.container.mux(packet)
        self.container.close()


def identify(
    source: str,
    gallery: Gallery,
    settings: Settings,
    *,
    engine: FaceEngine | None = None,
    sample_fps: float = 2.0,
    out: Path | None = None,
    json_dir: Path | str | None = None,
    max_seconds: float | None = None,
    progress: Callable[[float, float | None], None] | None = None,
    today: dt.date | None = None,
    location: str | None = None,
) -> IdentifySummary:
    """Name the faces of ``source`` with ``gallery`` (see the module doc). ``progress(t, duration)`` is called per
    decoded frame; ``max_seconds`` stops after that much source time (for live sources). ``json_dir`` is a folder or
    a bucket URL (``gs://...``); ``location`` (e.g. a store or camera name) is recorded in each JSON record."""
    from adpipeline.faces.calibration import calibration_for
    from adpipeline.faces.engine import engine_info
    from adpipeline.faces.video import shared_engine, threshold_for

    engine = engine or shared_engine(settings)
    _, model_id = engine_info(engine)
    if gallery.customer_ids and gallery.model_id != model_id:
        raise ValueError(f"the gallery holds {gallery.model_id} vectors; this engine makes {model_id} vectors")
    calibration = calibration_for(model_id)
    threshold = (
        calibration.decision_threshold(settings.gallery_far, settings.match_min_confidence_pct / 100)
        if calibration
        else threshold_for(engine, settings)
    )
    summary = IdentifySummary(source=source)
    started = time.perf_counter()
    frames, fps, duration = open_source(source)
    summary.source_fps = fps
    writer = _Writer(out, fps or sample_fps) if out else None
    day = (today or dt.date.today()).strftime("%Y%m%d")
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(source).stem if not source.isdigit() else f"camera{source}")[:60]
    records = None
    if json_dir:
        from adpipeline.bucket import Bucket

        records = Bucket(str(json_dir), gcp_conn_id=settings.gcp_conn_id or None)  # a folder or gs://
    next_sample = 0.0
    faces: list[dict[str, Any]] = []
    from adpipeline.faces.video import _one_thread_each

    with _one_thread_each():  # BLAS/OpenCV on one thread: measured faster on 2 busy cores (README)
        try:
            for time_s, get_rgb in frames:
                if max_seconds is not None and time_s > max_seconds:
                    break
                summary.frames_decoded += 1
                rgb = None
                if time_s + 1e-6 >= next_sample:
                    rgb = get_rgb()
                    next_sample = time_s + 1.0 / sample_fps
                    faces = _identify_frame(engine, rgb, time_s, summary, settings, gallery, threshold, calibration)
                    faces = faces if faces is not None else []
                    if records is not None:
                        record = {"source": source, "time_s": round(time_s, 3), "model_id": model_id, "faces": faces}
                        if location:
                            record["location"] = location
                        name = f"{stem}_{int(round(time_s * 1000)):09d}.json"
                        records.put_bytes(f"{day}/{name}", json.dumps(record, sort_keys=True).encode())
                        summary.records += 1
                if writer:
                    rgb = get_rgb() if rgb is None else rgb
                    writer.write(_draw(rgb, faces) if faces else rgb)
                if progress:
                    progress(time_s, duration)
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            if writer:
                writer.close()
                summary.out = str(out)
            close = getattr(frames, "close", None)
            if close:
                close()
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


def _identify_frame(
    engine: FaceEngine,
    rgb: np.ndarray,
    time_s: float,
    summary: IdentifySummary,
    settings: Settings,
    gallery: Gallery,
    threshold: float,
    calibration: Any,
) -> list[dict[str, Any]]:
    from adpipeline.faces.gallery import match_vectors, similarity
    from adpipeline.faces.video import detect_in_frame

    height, width = rgb.shape[:2]
    scale = min(1.0, settings.face_frame_max_side / max(height, width))
    work = (
        rgb
        if scale == 1.0
        else cv2.resize(rgb, (int(width * scale), int(height * scale)), interpolation=cv2.INTER_AREA)
    )
    detections = detect_in_frame(engine, work, scale, summary.frames_sampled, time_s, settings)
    summary.frames_sampled += 1
    if not detections:
        return []
    vectors = engine.embed_chips([d.chip for d in detections])
    matches = match_vectors(vectors, gallery.customer_ids, gallery.templates, threshold)
    faces = []
    for det, m in zip(detections, matches, strict=True):
        distance = m.distance if np.isfinite(m.distance) else None
        confidence = (
            round(100 * calibration.confidence(distance), 1)
            if calibration is not None and distance is not None
            else None
        )
        faces.append(
            {
                "box": [int(v) for v in det.video_box],
                "name": m.customer_id or "unknown",
                "customer_id": m.customer_id,
                "distance": None if distance is None else round(distance, 4),
                "similarity": None if distance is None else round(similarity(distance), 4),
                "confidence_pct": confidence,
            }
        )
        summary.faces += 1
        if m.customer_id:
            summary.named += 1
            summary.customers[m.customer_id] = summary.customers.get(m.customer_id, 0) + 1
    return faces
