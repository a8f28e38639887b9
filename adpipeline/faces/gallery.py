"""The customer gallery: enrol photos, build one template per customer, match faces against it (open set).

Pure logic over bytes and vectors; the gallery stage (``adpipeline/stages/gallery.py``) reads the buckets and writes
the tables. Nothing here imports Airflow or the warehouse.

Layout of a customer base (a local folder or a ``gs://`` prefix): ``<customer_id>.jpg|jpeg|png|webp`` (one photo)
or ``<customer_id>/<any name>.<ext>`` (several photos of one customer). Hidden files are ignored; any other file is
listed and rejected as ``not_an_image``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from adpipeline.faces.verify import BadImage, load_image, photo_face

if TYPE_CHECKING:
    from adpipeline.faces.engine import FaceEngine
    from adpipeline.settings import Settings

__all__ = [
    "IMAGE_EXTENSIONS",
    "Enrolment",
    "GalleryEntry",
    "Match",
    "enrol_photo",
    "gallery_entries",
    "gallery_from_folder",
    "match_vectors",
    "similarity",
    "template_of",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
# A second face at least this share of the largest face's size makes the photo ambiguous (more_than_one_face);
# smaller ones (a passer-by far behind) are ignored.
SECOND_FACE_SHARE = 0.5
_CUSTOMER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")


@dataclass(frozen=True)
class GalleryEntry:
    """One file of the customer base: whose it is and where it lies (key relative to the gallery root)."""

    customer_id: str
    photo_key: str


@dataclass
class Enrolment:
    """What enrolment made of one photo: ``enrolled`` with an embedding, or ``rejected`` with a reason."""

    status: str
    reason: str | None = None
    faces: int = 0
    face_px: int | None = None
    sharpness: float | None = None
    embedding: np.ndarray | None = None


@dataclass(frozen=True)
class Match:
    """The open-set answer for one vector: the closest customer when within the threshold, else None (unknown)."""

    customer_id: str | None
    distance: float  # to the closest template (inf when the gallery is empty)
    nearest_customer_id: str | None  # the closest template even when it is too far (for reports, never a match)


def gallery_entries(keys: list[str]) -> list[GalleryEntry]:
    """The customer base's files as entries; keys that name no customer (nested deeper, bad id) are dropped."""
    entries = []
    for key in sorted(keys):
        parts = key.strip("/").split("/")
        if any(p.startswith(".") for p in parts):
            continue
        if len(parts) == 1:
            stem = parts[0].rsplit(".", 1)[0] if "." in parts[0] else parts[0]
            customer = stem
        elif len(parts) == 2:
            customer = parts[0]
        else:
            continue
        if _CUSTOMER_ID.match(customer):
            entries.append(GalleryEntry(customer, "/".join(parts)))
    return entries


def enrol_photo(engine: FaceEngine, data: bytes, photo_key: str, settings: Settings) -> Enrolment:
    """Check one gallery photo and embed its face. Rejections: not_an_image, no_face, more_than_one_face,
    face_too_small (``gallery_min_face_px``), too_blurred (``gallery_min_sharpness`` on the aligned face)."""
    if not photo_key.lower().endswith(IMAGE_EXTENSIONS):
        return Enrolment("rejected", "not_an_image")
    try:
        rgb = load_image(data, settings.verify_image_max_side, settings.verify_max_image_pixels)
    except BadImage:
        return Enrolment("rejected", "not_an_image")
    face = photo_face(engine, rgb, settings)
    if face is None:
        return Enrolment("rejected", "no_face")
    result = Enrolment(
        "rejected", faces=face.faces, face_px=face.size_px, sharpness=round(face.sharpness, 2), embedding=None
    )
    if sum(size >= SECOND_FACE_SHARE * face.size_px for size in face.face_sizes) > 1:
        result.reason = "more_than_one_face"
    elif face.size_px < settings.gallery_min_face_px:
        result.reason = "face_too_small"
    elif face.sharpness < settings.gallery_min_sharpness:
        result.reason = "too_blurred"
    else:
        result.status, result.embedding = "enrolled", face.embedding
    return result


def template_of(embeddings: list[np.ndarray]) -> np.ndarray:
    """One template from several unit embeddings: their unit-length mean (float32)."""
    mean = np.mean(np.stack([np.asarray(e, dtype=np.float64) for e in embeddings]), axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def match_vectors(vectors: np.ndarray, customer_ids: list[str], templates: np.ndarray, threshold: float) -> list[Match]:
    """Open-set identification: each vector gets the closest template's customer if its distance is within the
    threshold, else unknown. Never a forced nearest neighbour. Vectors and templates must be of one model."""
    vectors = np.asarray(vectors, dtype=np.float64).reshape(len(vectors), -1)
    if not len(customer_ids):
        return [Match(None, float("inf"), None) for _ in range(len(vectors))]
    templates = np.asarray(templates, dtype=np.float64)
    # Euclidean distance between unit vectors from the dot product (one matrix product for all pairs).
    dots = np.clip(vectors @ templates.T, -1.0, 1.0)
    distances = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * dots))
    out = []
    for row in distances:
        best = int(np.argmin(row))
        d = float(row[best])
        out.append(Match(customer_ids[best] if d <= threshold else None, d, customer_ids[best]))
    return out


def similarity(distance: float) -> float:
    """Cosine similarity of two unit vectors at this Euclidean distance."""
    return 1.0 - distance * distance / 2.0


def gallery_from_folder(engine: FaceEngine, folder: str, settings: Settings) -> tuple[list[str], np.ndarray, dict]:
    """Enrol a customer base in memory (no warehouse): (customer ids, templates, {photo_key: Enrolment})."""
    from adpipeline.bucket import Bucket

    base = Bucket(folder)
    results: dict[str, Enrolment] = {}
    per_customer: dict[str, list[np.ndarray]] = {}
    for entry in gallery_entries(list(base.list())):
        result = enrol_photo(engine, base.get_bytes(entry.photo_key), entry.photo_key, settings)
        results[entry.photo_key] = result
        if result.embedding is not None:
            per_customer.setdefault(entry.customer_id, []).append(result.embedding)
    ids = sorted(per_customer)
    templates = np.stack([template_of(per_customer[c]) for c in ids]) if ids else np.zeros((0, engine.dim), np.float32)
    return ids, templates, results
