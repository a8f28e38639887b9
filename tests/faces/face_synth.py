"""Labelled synthetic face material for the faces tests and bench: augmented photos and composited videos.

The four public-domain people in ``adpipeline/demo/assets/faces`` are pasted (as head-and-shoulders crops, with
augmentations) onto moving textured backgrounds and encoded with libx264; every appearance is recorded with its
person and box per frame, so tracks and clusters can be scored against the truth.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

ASSETS = Path(__file__).resolve().parents[2] / "adpipeline" / "demo" / "assets" / "faces"
# Face boxes (x, y, width) found once with the dlib HOG detector in the original photos.
FACE_BOXES = {
    "biden/biden.jpg": (419, 241, 322),
    "eileen_collins/astronaut.jpg": (175, 76, 91),
    "grace_hopper/grace_hopper.jpg": (180, 139, 187),
    "obama/obama.jpg": (349, 142, 269),
    "obama/obama2.jpg": (171, 290, 268),
    "obama/obama3.jpg": (633, 277, 322),
}
PEOPLE = sorted({key.split("/")[0] for key in FACE_BOXES})
_CACHE: dict[str, tuple[np.ndarray, float]] = {}


def portrait(key: str) -> tuple[np.ndarray, float]:
    """(RGB crop of 2.4 face widths around the face, face width as a fraction of the crop width)."""
    if key not in _CACHE:
        image = np.asarray(ImageOps.exif_transpose(Image.open(ASSETS / key)).convert("RGB"))
        x, y, w = FACE_BOXES[key]
        cx, cy = x + w / 2, y + w / 2
        half = 1.2 * w
        x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
        x1, y1 = int(min(image.shape[1], cx + half)), int(min(image.shape[0], cy + half * 1.2))
        crop = image[y0:y1, x0:x1]
        scale = 400 / max(crop.shape[:2])
        crop = cv2.resize(crop, (int(crop.shape[1] * scale), int(crop.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        _CACHE[key] = (np.ascontiguousarray(crop), w * scale / crop.shape[1])
    return _CACHE[key]


def photos_of(person: str) -> list[str]:
    return sorted(k for k in FACE_BOXES if k.startswith(person + "/"))


@dataclass
class Augment:
    brightness: float = 1.0
    contrast: float = 1.0
    blur: float = 0.0
    angle: float = 0.0
    flip: bool = False
    grey: bool = False
    noise: float = 0.0
    jpeg: int = 0  # 0 = no recompression

    @staticmethod
    def random(rng: random.Random, strength: float = 1.0) -> Augment:
        return Augment(
            brightness=1 + rng.uniform(-0.35, 0.35) * strength,
            contrast=1 + rng.uniform(-0.35, 0.3) * strength,
            blur=rng.choice([0, 0, 0.8, 1.5]) * strength,
            angle=rng.uniform(-12, 12) * strength,
            flip=rng.random() < 0.5,
            grey=rng.random() < 0.15 * strength,
            noise=rng.choice([0, 0, 4, 8]) * strength,
            jpeg=rng.choice([0, 30, 60]),
        )


def augment(rgb: np.ndarray, aug: Augment, seed: int = 0) -> np.ndarray:
    out = rgb.astype(np.float32)
    out = (out - 128) * aug.contrast + 128 * aug.brightness
    if aug.grey:
        out = np.repeat(out.mean(axis=2, keepdims=True), 3, axis=2)
    if aug.noise:
        out += np.random.default_rng(seed).normal(0, aug.noise, out.shape)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if aug.flip:
        out = out[:, ::-1]
    if aug.angle:
        h, w = out.shape[:2]
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), aug.angle, 1.0)
        out = cv2.warpAffine(np.ascontiguousarray(out), matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
    if aug.blur:
        out = cv2.GaussianBlur(out, (0, 0), aug.blur)
    if aug.jpeg:
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(out), [cv2.IMWRITE_JPEG_QUALITY, aug.jpeg])
        out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return np.ascontiguousarray(out)


@dataclass
class Appearance:
    """One person on screen from ``start_s`` to ``end_s``, moving from ``start_xy`` to ``end_xy`` (face centre)."""

    person: str
    photo: str
    start_s: float
    end_s: float
    start_xy: tuple[float, float]
    end_xy: tuple[float, float]
    face_px: int
    aug: Augment = field(default_factory=Augment)

    def box_at(self, t: float) -> tuple[int, int, int, int] | None:
        if not (self.start_s <= t < self.end_s):
            return None
        a = (t - self.start_s) / max(self.end_s - self.start_s, 1e-6)
        cx = self.start_xy[0] + a * (self.end_xy[0] - self.start_xy[0])
        cy = self.start_xy[1] + a * (self.end_xy[1] - self.start_xy[1])
        half = self.face_px / 2
        return int(cx - half), int(cy - half), int(cx + half), int(cy + half)


def background(width: int, height: int, t: float, seed: int) -> np.ndarray:
    """A moving gradient with drifting shapes: texture for the codec, no faces."""
    rng = np.random.default_rng(seed)
    base = rng.integers(30, 220, size=3)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    frame = np.empty((height, width, 3), np.float32)
    for c in range(3):
        frame[..., c] = base[c] + 30 * np.sin((xs / width * 3 + t * 0.3 + c) * np.pi) * np.cos(ys / height * 2)
    frame = np.clip(frame, 0, 255).astype(np.uint8)
    for k in range(4):
        cx = int((rng.uniform(0, 1) + 0.05 * t * (k + 1)) % 1 * width)
        cy = int(rng.uniform(0.1, 0.9) * height)
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        cv2.rectangle(frame, (cx, cy), (cx + width // 10, cy + height // 12), colour, -1)
    return frame


def paste_person(frame: np.ndarray, app: Appearance, t: float, seed: int) -> None:
    box = app.box_at(t)
    if box is None:
        return
    crop, face_frac = portrait(app.photo)
    crop = augment(crop, app.aug, seed)
    scale = app.face_px / (face_frac * crop.shape[1])
    crop = cv2.resize(
        crop, (max(2, int(crop.shape[1] * scale)), max(2, int(crop.shape[0] * scale))), interpolation=cv2.INTER_AREA
    )
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x0 = int(cx - crop.shape[1] / 2)
    y0 = int(cy - crop.shape[0] * 0.42)
    h, w = frame.shape[:2]
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(w, x0 + crop.shape[1]), min(h, y0 + crop.shape[0])
    if fx1 > fx0 and fy1 > fy0:
        frame[fy0:fy1, fx0:fx1] = crop[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]


def write_video(
    path: Path,
    appearances: list[Appearance],
    duration_s: float,
    size: tuple[int, int] = (640, 360),
    fps: int = 25,
    gop: int | None = None,
    seed: int = 0,
    rotate: bool = False,
    codec: str = "libx264",
    display_matrix: bool = True,
) -> Path:
    """Encode a composited video (yuv420p). ``gop`` defaults to one keyframe per second, like most ad exports."""
    import av

    width, height = size
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = (height, width) if rotate else (width, height)
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop or fps
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "26"}
        cached_bg: dict[int, np.ndarray] = {}
        for i in range(max(1, int(round(duration_s * fps)))):
            t = i / fps
            key = int(t * 4)  # the background changes four times a second: cheaper to make, still moving
            if key not in cached_bg:
                cached_bg = {key: background(width, height, key / 4, seed)}
            frame = cached_bg[key].copy()
            for n, app in enumerate(appearances):
                paste_person(frame, app, t, seed * 100 + n)
            if rotate:  # stored turned counter-clockwise; the display matrix turns it back
                frame = np.ascontiguousarray(np.rot90(frame, k=1))
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    if rotate and display_matrix:  # without it the frames play sideways (a phone clip whose metadata was lost)
        set_display_rotation(path)
    return path


def set_display_rotation(path: Path) -> None:
    """Write a 'turn 90 degrees clockwise' matrix into the mp4 track header, as phones do for portrait clips.

    PyAV cannot write the display matrix, so the tkhd box's matrix is patched in place.
    """
    data = bytearray(Path(path).read_bytes())
    at = data.find(b"tkhd")
    version = data[at + 4]
    offset = at + 8 + (20 if version == 0 else 32) + 16
    data[offset : offset + 36] = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)
    Path(path).write_bytes(bytes(data))


def random_video_plan(
    rng: random.Random, duration_s: float, size: tuple[int, int], max_people: int = 3
) -> list[Appearance]:
    """1..max_people people at separate slots; sometimes a cut replaces one by another at the same place."""
    width, height = size
    people = rng.sample(PEOPLE, k=rng.randint(1, min(max_people, len(PEOPLE))))
    slots = [(width * (i + 0.5) / len(people), height * rng.uniform(0.4, 0.55)) for i in range(len(people))]
    face_max = int(min(width / len(people) * 0.45, height * 0.45))
    plans = []
    for person, (sx, sy) in zip(people, slots, strict=True):
        face_px = rng.randint(max(70, int(face_max * 0.55)), max(71, face_max))
        start = 0.0 if rng.random() < 0.6 else rng.uniform(0, duration_s / 3)
        end = duration_s if rng.random() < 0.6 else rng.uniform(duration_s * 2 / 3, duration_s)
        dx = rng.uniform(-0.05, 0.05) * width
        plans.append(
            Appearance(
                person,
                rng.choice(photos_of(person)),
                start,
                end,
                (sx, sy),
                (sx + dx, sy),
                face_px,
                Augment.random(rng, 0.6),
            )
        )
    if rng.random() < 0.4:  # a cut: the first slot's person is replaced by someone else at the same place
        first = plans[0]
        others = [p for p in PEOPLE if p not in people]
        if others and first.end_s - first.start_s > 4:
            cut = (first.start_s + first.end_s) / 2
            newcomer = rng.choice(others)
            plans.append(
                Appearance(
                    newcomer,
                    rng.choice(photos_of(newcomer)),
                    cut,
                    first.end_s,
                    first.end_xy,
                    first.end_xy,
                    first.face_px,
                    Augment.random(rng, 0.6),
                )
            )
            first.end_s = cut
            first.end_xy = first.end_xy
    return plans


def truth_person(appearances: list[Appearance], time_s: float, box: tuple[int, int, int, int]) -> str | None:
    """The person whose planted face overlaps ``box`` most at ``time_s`` (None: a false detection).

    On screen means what ``write_video`` drew: ``start_s <= t < end_s`` (``Appearance.box_at``). At the instant of a
    cut the newcomer is shown, not the person leaving (an inclusive end labelled a sample taken exactly at a cut, as
    keyframe-snapped samples are when the encoder puts a keyframe on the cut, with the person who had just left).
    """
    best, best_iou = None, 0.1
    for app in appearances:
        planted = app.box_at(time_s)
        if planted is None:
            continue
        ix0, iy0 = max(box[0], planted[0]), max(box[1], planted[1])
        ix1, iy1 = min(box[2], planted[2]), min(box[3], planted[3])
        inter = max(0, ix1 - ix0) * max(0, iy1 - iy0)
        union = (box[2] - box[0]) * (box[3] - box[1]) + (planted[2] - planted[0]) * (planted[3] - planted[1]) - inter
        iou = inter / union if union else 0.0
        if iou > best_iou:
            best, best_iou = app.person, iou
    return best
