"""Is the person in this photo in this video? One function, used by the CLI, the manual DAG and the insights page.

``verify(image, video, settings)`` never raises for bad input: a corrupt, missing or face-less photo or video gives a
:class:`Verification` with a ``status`` and a ``reason``. A missing face backend (``FaceEngineUnavailable``) is a
setup error and raises.

- The photo: EXIF orientation applied, decoded at reduced size when it is very large (JPEG draft mode, then a
  downscale to ``verify_image_max_side``), faces detected upright and, when none is found, on the photo turned a
  quarter either way or upside down (sideways phone photos without EXIF). The largest face is used; the count of
  faces is reported.
- The video: frames sampled as the faces stage samples them (``face_sample_fps``, ``face_max_frames``, rotation
  metadata applied), every detection embedded; a frame with no upright face is also tried turned a quarter either
  way (sideways recordings without rotation metadata). Detections are linked into tracks; a track's embedding is the
  mean of its samples, and the closest track to the photo decides. ``best_frame_time_s`` is that track's sample
  closest to the photo.
- ``confidence_pct`` is the calibrated probability of "same person" (``calibration.py``, fitted per model id);
  ``threshold`` is the distance the answer was decided with: the requested false-accept rate (default ``verify_far``
  = 1 %) for the whole answer, i.e. each of the video's k tracks held to 1 - (1 - far)^(1/k) (the answer is the best
  of k comparisons), and no match under ``match_min_confidence_pct`` (default 90 %). A model without a calibration
  gets ``confidence_pct = None`` and the backend's identity threshold.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np
from pydantic import BaseModel, Field

from adpipeline.faces.calibration import calibration_for

if TYPE_CHECKING:
    from adpipeline.faces.engine import FaceBox, FaceEngine
    from adpipeline.faces.tracking import Detection
    from adpipeline.settings import Settings

__all__ = ["ImageFace", "Verification", "VerifyStatus", "load_image", "photo_face", "verify"]

log = logging.getLogger(__name__)

VerifyStatus = Literal[
    "ok",  # both faces found and compared (matched says the answer)
    "no_face_in_image",
    "no_face_in_video",
    "bad_image",  # not an image, corrupt, or too many pixels
    "bad_video",  # missing, corrupt, no video stream, nothing decodable
    "failed",  # unexpected error; reason holds the exception
]
# Sideways frames: counter-clockwise quarter turns tried when nothing is found upright.
_TURNS = (1, 3, 2)
# HOG's own score cut, kept when it is the photo fallback behind BlazeFace (whose scale is another).
_HOG_MIN_SCORE = 0.3


class Verification(BaseModel):
    """The answer for one photo and one video (what ``face_verifications`` stores, less the ids)."""

    status: VerifyStatus
    reason: str | None = None
    face_in_image: bool = False
    faces_in_image: int = 0
    face_in_video: bool = False
    faces_in_video: int = Field(default=0, description="Tracks (people stretches) found in the video.")
    matched: bool = False
    confidence_pct: float | None = Field(default=None, description="Calibrated probability (0-100) of the same person.")
    frames_checked: int = 0
    best_frame_time_s: float | None = None
    distance: float | None = Field(
        default=None, description="Euclidean distance between unit embeddings (closest track)."
    )
    threshold: float | None = None
    far: float | None = Field(default=None, description="False-accept rate the threshold was chosen for.")
    calibrated: bool = False
    backend: str = ""
    model: str = ""
    image_rotation: int = Field(
        default=0, description="Degrees (counter-clockwise) the photo was turned to find a face."
    )
    image_size: tuple[int, int] | None = Field(
        default=None, description="Photo size (width, height) after EXIF rotation."
    )
    video_duration_s: float | None = None
    seconds: float = 0.0


@dataclass
class ImageFace:
    """The face chosen in a photo (the largest) and how many there were."""

    embedding: np.ndarray
    faces: int
    face_sizes: list[int]  # shorter box side of every counted face, largest first
    box: tuple[int, int, int, int]  # in the photo's pixels after EXIF rotation and turn
    size_px: int
    sharpness: float
    rotation: int
    image_size: tuple[int, int]


class BadImage(ValueError):
    """The bytes are not a usable image; the message says why."""


def load_image(data: bytes | Path | str, max_side: int, max_pixels: int) -> np.ndarray:
    """RGB uint8 of a photo: EXIF orientation applied, at most ``max_side`` on its longest side.

    JPEGs are decoded at a reduced scale (draft mode) when they are much larger than needed, so a 50-megapixel
    photo never costs its full-size decode. Other formats above ``max_pixels`` are refused (``BadImage``).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(data, (str, Path)):
        path = Path(data)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise BadImage(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not data:
        raise BadImage("empty file")
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if img.format == "JPEG":
                img.draft("RGB", (max_side, max_side))  # decodes at 1/2, 1/4 or 1/8 scale when that is enough
            elif width * height > max_pixels:
                raise BadImage(f"{width}x{height} is over the {max_pixels}-pixel limit for {img.format} photos")
            img.load()
            upright = ImageOps.exif_transpose(img).convert("RGB")
            upright.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            return np.ascontiguousarray(np.asarray(upright, dtype=np.uint8))
    except BadImage:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise BadImage(f"not an image: {type(exc).__name__}") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # truncated or damaged data
        raise BadImage(f"damaged image: {type(exc).__name__}: {exc}") from exc


def _detect_scaled(
    engine: FaceEngine, rgb: np.ndarray, target_side: int, hog: bool = False
) -> tuple[list[FaceBox], float]:
    """Faces in ``rgb`` detected on a copy whose longest side is ``target_side`` (up or down), in ``rgb`` pixels."""
    height, width = rgb.shape[:2]
    scale = target_side / max(height, width)
    det = rgb
    if abs(scale - 1.0) > 0.02:
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        det = cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=interp)
    else:
        scale = 1.0
    faces = engine.detect_hog(det) if hog else engine.detect(det)  # type: ignore[attr-defined]
    if scale != 1.0:
        faces = [f.scaled(1.0 / scale, width, height) for f in faces]
    return faces, scale


def _sharpness(chip: np.ndarray) -> float:
    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def photo_face(
    engine: FaceEngine, rgb: np.ndarray, settings: Settings, min_size_px: int | None = None
) -> ImageFace | None:
    """The largest face of a photo (tried upright, then turned), with its embedding; None when there is none.

    Detection runs on a copy whose longest side is brought into [640, ``verify_detect_side``] (small photos are
    enlarged: dlib's HOG window is ~80 px); faces under the detector's score cut or under ``min_size_px`` photo pixels
    (default ``verify_min_face_px``) do not count.
    """
    min_score = settings.face_min_det_score if settings.face_min_det_score is not None else engine.default_min_score
    min_size = settings.verify_min_face_px if min_size_px is None else min_size_px
    target = min(max(max(rgb.shape[:2]), 640), settings.verify_detect_side)
    tries: list[tuple[int, str]] = [(0, "default"), *((turn, "default") for turn in _TURNS)]
    if getattr(engine, "detector", None) == "blazeface":
        # BlazeFace full-range misses a face that fills the whole picture (a tight crop); HOG finds those
        tries.append((0, "hog"))
    if settings.photo_cnn_fallback and hasattr(engine, "detect_cnn"):
        tries.append((0, "cnn"))  # occluded or strongly turned faces: nothing found anywhere
    for turn, method in tries:
        turned = np.ascontiguousarray(np.rot90(rgb, k=turn)) if turn else rgb
        if method == "cnn":
            scale = min(1.0, 640 / max(turned.shape[:2]))
            small = (
                cv2.resize(turned, (round(turned.shape[1] * scale), round(turned.shape[0] * scale)))
                if scale < 1
                else turned
            )
            faces = engine.detect_cnn(small)  # type: ignore[attr-defined]
            if scale < 1:
                faces = [f.scaled(1.0 / scale, turned.shape[1], turned.shape[0]) for f in faces]
        elif method == "hog":
            faces, _ = _detect_scaled(engine, turned, target, hog=True)
            faces = [dataclasses.replace(f, score=max(f.score, min_score)) for f in faces if f.score >= _HOG_MIN_SCORE]
        else:
            faces, _ = _detect_scaled(engine, turned, target)
        faces = [f for f in faces if f.score >= min_score and f.size_px >= min_size]
        if not faces:
            continue
        largest = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        chip = engine.align(turned, largest)
        return ImageFace(
            embedding=engine.embed_chips([chip])[0],
            faces=len(faces),
            face_sizes=sorted((f.size_px for f in faces), reverse=True),
            box=largest.box,
            size_px=largest.size_px,
            sharpness=_sharpness(chip),
            rotation=turn * 90,
            image_size=(rgb.shape[1], rgb.shape[0]),
        )
    return None


def _video_detections(
    engine: FaceEngine, path: str, settings: Settings, info: dict[str, object]
) -> tuple[list[list[Detection]], int]:
    """Embedded detections per sampled frame (sideways frames retried turned); raises the sampler's video error."""
    from adpipeline.faces.video import detect_in_frame, sample_frames

    per_frame: list[list[Detection]] = []
    frames = 0
    for index, (time_s, rgb, scale) in enumerate(
        sample_frames(path, settings.face_sample_fps, settings.face_max_frames, settings.face_frame_max_side, info)
    ):
        frames += 1
        found = detect_in_frame(engine, rgb, scale, index, time_s, settings)
        if not found:
            for turn in _TURNS[:2]:
                found = detect_in_frame(
                    engine, np.ascontiguousarray(np.rot90(rgb, k=turn)), scale, index, time_s, settings
                )
                if found:
                    break
        if found:
            vectors = engine.embed_chips([d.chip for d in found])
            for det, vector in zip(found, vectors, strict=True):
                det.embedding = vector
        per_frame.append(found)
    return per_frame, frames


def _tracks_of(engine: FaceEngine, per_frame: list[list[Detection]], threshold: float) -> list[list[Detection]]:
    """Link the detections into tracks (the faces stage's tracker; all samples are already embedded)."""
    from adpipeline.faces.tracking import Tracker

    tracker = Tracker(engine, threshold, embeds_per_track=1)
    for index, detections in enumerate(per_frame):
        tracker.update(index, detections)
    tracklets = tracker._done + tracker._active  # noqa: SLF001 - the tracker's linking only, not its summary
    parts: list[list[Detection]] = []
    for tracklet in tracklets:
        parts.extend(tracker._split(tracklet.detections))  # noqa: SLF001
    return parts


def verify(
    image: bytes | Path | str,
    video: Path | str,
    settings: Settings | None = None,
    *,
    far: float | None = None,
    engine: FaceEngine | None = None,
) -> Verification:
    """Compare the largest face of ``image`` (bytes or a path) with the faces of the video at ``video`` (a path).

    Returns a :class:`Verification`; never raises for bad input (see the module doc).
    """
    from adpipeline.faces.engine import engine_info
    from adpipeline.faces.video import _VideoError, shared_engine, threshold_for
    from adpipeline.settings import get_settings

    started = time.perf_counter()
    settings = settings or get_settings()
    engine = engine or shared_engine(settings)
    backend, model_id = engine_info(engine)
    far = settings.verify_far if far is None else far
    calibration = calibration_for(model_id)
    threshold = (
        calibration.decision_threshold(far, settings.match_min_confidence_pct / 100)
        if calibration
        else threshold_for(engine, settings)
    )
    result = Verification(
        status="ok",
        backend=backend,
        model=model_id,
        threshold=round(threshold, 4),
        far=far,
        calibrated=bool(calibration),
    )
    problems: list[tuple[VerifyStatus, str]] = []
    face: ImageFace | None = None
    try:
        rgb = load_image(image, settings.verify_image_max_side, settings.verify_max_image_pixels)
        face = photo_face(engine, rgb, settings)
        result.image_size = (rgb.shape[1], rgb.shape[0])
        if face is None:
            problems.append(("no_face_in_image", "no face found in the photo (tried upright and turned)"))
        else:
            result.face_in_image, result.faces_in_image, result.image_rotation = True, face.faces, face.rotation
    except BadImage as exc:
        problems.append(("bad_image", str(exc)))

    tracks: list[list[Detection]] = []
    info: dict[str, object] = {}
    try:
        per_frame, result.frames_checked = _video_detections(engine, str(video), settings, info)
        tracks = _tracks_of(engine, per_frame, threshold_for(engine, settings))
        result.face_in_video, result.faces_in_video = bool(tracks), len(tracks)
        if not result.frames_checked:
            problems.append(("bad_video", "no frame could be decoded"))
        elif not tracks:
            problems.append(("no_face_in_video", f"no face in {result.frames_checked} sampled frames"))
    except _VideoError as exc:
        problems.append(("bad_video", f"{exc.status}: {exc.reason}"))
    except Exception as exc:  # noqa: BLE001 - a verification answers with a status, never a traceback
        log.exception("verify: video %s failed", video)
        problems.append(("failed", f"{type(exc).__name__}: {exc}"[:500]))
    duration = info.get("duration_s")
    result.video_duration_s = round(float(duration), 3) if isinstance(duration, (int, float)) else None

    if face is not None and tracks:
        best: tuple[float, float] | None = None  # (distance, time of the closest sample)
        for dets in tracks:
            vectors = np.stack([d.embedding for d in dets if d.embedding is not None]).astype(np.float64)
            mean = vectors.mean(axis=0)
            mean /= max(float(np.linalg.norm(mean)), 1e-12)
            distance = float(np.linalg.norm(mean - face.embedding.astype(np.float64)))
            per_sample = np.linalg.norm(vectors - face.embedding.astype(np.float64), axis=1)
            closest = dets[int(np.argmin(per_sample))]
            if best is None or distance < best[0]:
                best = (distance, closest.time_s)
        assert best is not None
        result.distance = round(best[0], 4)
        result.best_frame_time_s = round(best[1], 3)
        if calibration:
            # The answer is the best of len(tracks) comparisons: each is held to the FAR that makes the chance of
            # any impostor track passing equal ``far`` (Sidak: 1 - (1 - far)^(1/k)), and to the confidence floor.
            per_track_far = 1.0 - (1.0 - far) ** (1.0 / len(tracks))
            threshold = calibration.decision_threshold(per_track_far, settings.match_min_confidence_pct / 100)
            result.threshold = round(threshold, 4)
        result.matched = best[0] <= threshold
        if calibration:
            result.confidence_pct = round(100.0 * calibration.confidence(best[0]), 2)
    if problems:
        # The photo's problem first: it is the one the user can fix by choosing another photo.
        order = ["bad_image", "no_face_in_image", "bad_video", "no_face_in_video", "failed"]
        problems.sort(key=lambda p: order.index(p[0]))
        result.status = problems[0][0]
        result.reason = "; ".join(reason for _, reason in problems)
    result.seconds = round(time.perf_counter() - started, 3)
    return result
