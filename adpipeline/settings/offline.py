"""The offline extractor and text reading: OCR on or off, at what size and on how many threads, and how videos are
sampled for it. The near-duplicate text check reads with the same ``ocr_threads``."""

from __future__ import annotations

from pydantic import Field

from adpipeline.settings.base import Domain


class OfflineSettings(Domain):
    """The embedded feature extractor (no model, no key) and the OCR it and the duplicate text check run."""

    title = "Offline features and text reading (OCR)"
    readme = "adpipeline/features/README.md"

    ocr_enabled: bool = True
    """Run OCR in the offline extractor."""
    # Downscaling before OCR keeps banner text readable and OCR near 0.5 s an image on 2 cores.
    ocr_max_side_px: int = Field(
        1280, ge=320, le=4096, description="Longest side a video frame is OCRed at (images: 640, media README)."
    )
    ocr_threads: int = Field(
        1,
        ge=0,
        le=64,
        description="onnxruntime threads per OCR call (1: grouping reads one image per core at once; "
        "0 lets onnxruntime choose).",
    )
    # Videos: frames are sampled by seeking (never a full decode); scene cuts are counted between samples.
    offline_video_sample_fps: float = Field(2.0, gt=0, le=30, description="Sampled frames per second of video.")
    offline_video_max_frames: int = Field(48, ge=1, le=600, description="Cap on sampled frames per video.")
    offline_video_ocr_frames: int = Field(3, ge=0, le=10, description="Sampled frames OCRed (spread, last included).")
