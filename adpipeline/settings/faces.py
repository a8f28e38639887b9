"""Faces in videos: the engine and detector, frame sampling and sizes, tracking and clustering
(adpipeline/faces/README.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator

from adpipeline.settings.base import Domain


class FaceSettings(Domain):
    """The face engine and how adp_faces samples, detects, tracks and clusters faces."""

    title = "Faces: detection, tracking and clustering"
    readme = "adpipeline/faces/README.md"

    face_backend: Literal["dlib", "insightface"] = "dlib"
    """Face engine: dlib (embedded default) or insightface (model folder; non-commercial licence)."""
    face_detector: Literal["blazeface", "hog"] = "blazeface"
    """dlib backend's face detector: blazeface (MediaPipe full-range; turned, covered, small faces) or hog."""
    insightface_model_dir: Path | None = None
    """Folder with InsightFace buffalo_l det_10g.onnx and w600k_r50.onnx (never downloaded)."""
    face_sample_fps: float = Field(1.0, gt=0, le=30)
    """Video frames sampled per second for faces."""
    face_max_frames: int = Field(120, ge=1)
    """Cap on sampled frames per video."""
    face_min_size_px: int = Field(40, ge=8)
    """Skip faces smaller than this (shorter box side, video pixels)."""
    face_match_threshold: float | None = Field(None, gt=0, description="Distance to join a face; backend default.")
    # Frames are converted at most this size (longest side, px); crops and aligned chips come from it.
    face_frame_max_side: int = Field(1280, ge=160, le=8192)
    """Longest side (px) frames are converted at; crops and aligned chips come from it."""
    # Frames are downscaled to this longest side before detection: dlib HOG time grows with pixels (640: ~27 ms,
    # 1280: ~95 ms a frame) and its window is ~80 px, so 640 finds faces from ~80 px in 720p (~160 px in 1080p).
    face_detect_max_side: int = Field(640, ge=160, le=8192)
    """Longest side (px) frames are downscaled to before detection (640 finds faces from ~80 px in 720p)."""
    # dlib only: times the detection image is doubled (each ~4x slower, halves the smallest face found).
    face_detect_upsample: int = Field(0, ge=0, le=2)
    """dlib only: times the detection image is doubled (each ~4x slower, halves the smallest face found)."""
    # Detector score under which detections are dropped; None = the backend's default (dlib 0.3, insightface 0.5).
    face_min_det_score: float | None = None
    """Detector score under which detections are dropped; empty = backend default (dlib 0.3, insightface 0.5)."""
    # Embeddings computed per track (best-quality samples); dlib embeds cost ~100 ms each, so tracks reuse them.
    face_embeds_per_track: int = Field(3, ge=1, le=50)
    """Embeddings computed per track (its best-quality samples)."""

    @model_validator(mode="after")
    def _insightface_needs_models(self) -> Self:
        if self.face_backend == "insightface" and self.insightface_model_dir is None:
            raise ValueError("ADP_FACE_BACKEND=insightface needs ADP_INSIGHTFACE_MODEL_DIR")
        return self
