"""Face identity: photo-vs-video verification, the customer gallery and the confidence floor every match needs
(adpipeline/faces/README.md)."""

from __future__ import annotations

from pydantic import Field

from adpipeline.settings.base import Domain


class IdentitySettings(Domain):
    """Verify, gallery and identify: the false-accept rates matches are calibrated for, and photo limits."""

    title = "Face identity: verify and gallery"
    readme = "adpipeline/faces/README.md"

    verify_far: float = Field(0.01, gt=0, lt=1)
    """False-accept rate the photo-vs-video and gallery match thresholds are chosen for (calibrated per model)."""
    verify_image_max_side: int = Field(1600, ge=256, le=8192)
    """Photos are decoded/downscaled to at most this side (px) before face detection."""
    verify_detect_side: int = Field(1024, ge=320, le=4096)
    """Longest side (px) a photo is scaled to (up or down) for face detection."""
    verify_max_image_pixels: int = Field(100_000_000, ge=1_000_000)
    """Non-JPEG photos with more pixels than this are refused (JPEGs are decoded at reduced scale instead)."""
    verify_min_face_px: int = Field(20, ge=8)
    """Faces smaller than this (shorter box side, photo pixels) are not counted in a verification photo."""
    gallery_url: str | None = None
    """Customer base: local folder or gs:// URL; <customer_id>.jpg|png|webp or a folder per customer."""
    gallery_output_url: str | None = None
    """Where matched customers' photos and per-video JSON records go; defaults to <bucket>/gallery_output."""
    gallery_min_face_px: int = Field(60, ge=16)
    """A gallery photo whose face is smaller than this (shorter box side, px) is rejected (face_too_small)."""
    gallery_min_sharpness: float = Field(8.0, ge=0)
    """A gallery photo whose aligned face has a Laplacian variance under this is rejected (too_blurred)."""
    gallery_far: float = Field(0.001, gt=0, lt=1)
    """False-accept rate per comparison for gallery matches (lower than verify_far: each face meets every customer)."""
    photo_cnn_fallback: bool = False
    """dlib only: photos (verify, gallery) where HOG finds no face are retried with dlib's CNN detector (1-25 s)."""
    match_min_confidence_pct: float = Field(90.0, ge=0, le=100)
    """Verify, gallery and identify never call a face matched under this calibrated confidence (%)."""
