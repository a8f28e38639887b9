"""The labelled face set for calibration and the identity bench: changed photos of the shipped public-domain people.

Source: the 6 photos of 4 people in ``adpipeline/demo/assets/faces`` (public domain, see its README). No other
permissively licensed face photos ship in the installed packages (scikit-image's ``lfw_subset`` is 25x25 px, too small
to embed), so the set is built by *changing* those photos the way customer photos and ad frames change:

| family | change |
|---|---|
| clean | the portrait, resized (face 110-200 px) |
| mirror | flipped left-right |
| rotate | turned in plane 8-20 degrees |
| rotate_strong | turned 25-45 degrees (failure-mode probe) |
| recrop | tight or off-centre crop (part of the head cut off), rescaled |
| dark | brightness x0.3-0.55, gamma |
| recompress | JPEG quality 8-25, re-encoded twice |
| small | face 36-60 px |
| occlusion | a bar over the eyes (sunglasses) or a block over the mouth and chin (mask) |
| mixed | the faces bench's random mix (brightness, contrast, blur, noise, grey, JPEG, mirror, +-12 deg) |

Splits: ``tuning`` and ``heldout`` use disjoint random seeds (same families); calibration and thresholds are fitted on
``tuning`` only and scored on ``heldout``. References (what a video track gives) are means of 3 mild video-like
variants (face 90-150 px, JPEG 55-80, small light and angle changes) from their own seeds per split.

Honest limits: 4 people (3 photos of one, 1 of the others), so "same person, other photo" pairs exist for one person
only, and there are no real look-alikes; the nearest different-person pairs (the hardest negatives this set has) are
reported instead.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "faces")]

import face_synth as fs  # noqa: E402

FAMILIES = (
    "clean",
    "mirror",
    "rotate",
    "rotate_strong",
    "recrop",
    "dark",
    "recompress",
    "small",
    "occlusion",
    "mixed",
)
SPLIT_SEEDS = {"tuning": 1000, "heldout": 9000}


@dataclass
class Probe:
    person: str
    photo: str
    family: str
    split: str
    index: int
    rgb: np.ndarray


def _resize_face(rgb: np.ndarray, face_frac: float, face_px: float) -> np.ndarray:
    scale = face_px / (face_frac * rgb.shape[1])
    size = (max(8, int(rgb.shape[1] * scale)), max(8, int(rgb.shape[0] * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


def _rotate(rgb: np.ndarray, angle: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(np.ascontiguousarray(rgb), matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


def change(photo: str, family: str, rng: random.Random) -> np.ndarray:
    """One changed version of a photo (an RGB uint8 image with one face)."""
    crop, frac = fs.portrait(photo)  # 400 px, face ~ frac * width; face centred at ~(0.5, 0.42)
    out = crop
    if family == "clean":
        return _resize_face(out, frac, rng.uniform(110, 200))
    if family == "mirror":
        return _resize_face(np.ascontiguousarray(out[:, ::-1]), frac, rng.uniform(100, 200))
    if family == "rotate":
        return _resize_face(_rotate(out, rng.choice((-1, 1)) * rng.uniform(8, 20)), frac, rng.uniform(100, 200))
    if family == "rotate_strong":
        return _resize_face(_rotate(out, rng.choice((-1, 1)) * rng.uniform(25, 45)), frac, rng.uniform(100, 200))
    if family == "recrop":
        h, w = out.shape[:2]
        face_w = frac * w
        cx, cy = w / 2 + rng.uniform(-0.25, 0.25) * face_w, 0.45 * h + rng.uniform(-0.2, 0.2) * face_w
        half = rng.uniform(0.55, 0.8) * face_w  # cuts into the hair / chin / ears
        x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
        x1, y1 = int(min(w, cx + half)), int(min(h, cy + half * 1.1))
        part = out[y0:y1, x0:x1]
        return _resize_face(part, face_w / part.shape[1], rng.uniform(110, 200))
    if family == "dark":
        factor, gamma = rng.uniform(0.3, 0.55), rng.uniform(1.0, 1.6)
        dark = 255.0 * ((out.astype(np.float32) / 255.0) ** gamma) * factor
        return _resize_face(np.clip(dark, 0, 255).astype(np.uint8), frac, rng.uniform(100, 200))
    if family == "recompress":
        small = _resize_face(out, frac, rng.uniform(90, 180))
        return _jpeg(_jpeg(small, rng.randint(8, 25)), rng.randint(15, 40))
    if family == "small":
        return _resize_face(out, frac, rng.uniform(36, 60))
    if family == "occlusion":
        occluded = out.copy()
        h, w = occluded.shape[:2]
        face_w = frac * w
        cx, cy = w / 2, 0.42 * h
        colour = tuple(int(v) for v in rng.choice(((20, 20, 20), (230, 230, 235), (70, 110, 160))))
        if rng.random() < 0.5:  # sunglasses bar over the eyes
            y = cy - 0.18 * face_w
            cv2.rectangle(
                occluded,
                (int(cx - 0.5 * face_w), int(y - 0.1 * face_w)),
                (int(cx + 0.5 * face_w), int(y + 0.12 * face_w)),
                colour,
                -1,
            )
        else:  # mask over mouth and chin
            cv2.rectangle(
                occluded,
                (int(cx - 0.45 * face_w), int(cy + 0.12 * face_w)),
                (int(cx + 0.45 * face_w), int(cy + 0.6 * face_w)),
                colour,
                -1,
            )
        return _resize_face(occluded, frac, rng.uniform(110, 200))
    if family == "mixed":
        return _resize_face(
            fs.augment(out, fs.Augment.random(rng, 1.0), seed=rng.randint(0, 9999)), frac, rng.uniform(70, 200)
        )
    raise ValueError(f"unknown family {family}")


def video_like(photo: str, rng: random.Random) -> np.ndarray:
    """A mild change like an ad video's frame: face 90-150 px, JPEG 55-80, light and angle changes."""
    crop, frac = fs.portrait(photo)
    aug = fs.Augment(
        brightness=1 + rng.uniform(-0.1, 0.1),
        contrast=1 + rng.uniform(-0.1, 0.1),
        angle=rng.uniform(-5, 5),
        flip=rng.random() < 0.3,
    )
    img = _resize_face(fs.augment(crop, aug, seed=rng.randint(0, 9999)), frac, rng.uniform(90, 150))
    return _jpeg(img, rng.randint(55, 80))


def probes(split: str, per_family: int) -> list[Probe]:
    """``per_family`` changed versions of every photo for every family, seeded by the split."""
    out = []
    for p_index, photo in enumerate(sorted(fs.FACE_BOXES)):
        for f_index, family in enumerate(FAMILIES):
            for n in range(per_family):
                rng = random.Random(SPLIT_SEEDS[split] + 100_000 * p_index + 1000 * f_index + n)
                out.append(Probe(photo.split("/")[0], photo, family, split, n, change(photo, family, rng)))
    return out


def references(split: str, per_photo: int, frames: int = 3) -> list[tuple[str, str, list[np.ndarray]]]:
    """(person, photo, frames) per reference: what one video track of that photo gives."""
    out = []
    for p_index, photo in enumerate(sorted(fs.FACE_BOXES)):
        for n in range(per_photo):
            rng = random.Random(SPLIT_SEEDS[split] + 500_000 + 1000 * p_index + n)
            out.append((photo.split("/")[0], photo, [video_like(photo, rng) for _ in range(frames)]))
    return out
