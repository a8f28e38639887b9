"""Copy transforms: what turns a banner into "the same creative" to a person (resized, recompressed, cropped, a
badge or a border added, watermarked, re-encoded), shared by the demo sample and the benches' labelled sets.

The pixel operations are written once (:func:`framed`, :func:`stamp_new`, :func:`crop_share`, and
``banners.encode``); three ways of drawing their parameters sit on them, each fixed by the files already measured with
it: :func:`near_duplicate` (the demo's recipes, a numpy generator, each step described for labels.json),
:func:`simple_copy` (``labelled_banners.generate``: one transform or a pair) and :func:`apply_families`
(``generate_varied`` and the photo set: 1-4 random families in a realistic order).
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

from adpipeline.demo.banners import RGB, default_font, draw_badge, encode

COPY_KINDS = ("resize", "jpeg", "crop", "badge", "border", "resize+jpeg", "crop+jpeg")
FAMILIES = ("brightness", "contrast", "resize", "jpeg", "crop", "border", "badge", "watermark", "format")
# copies every set holds at least once per sibling when ``numbers`` is on: what broke recall before issue 19
FORCED_COMBOS = (("crop", "border"), ("brightness", "jpeg"))
_FAMILY_ORDER = {
    name: k
    for k, name in enumerate(
        ("crop", "brightness", "contrast", "badge", "watermark", "border", "resize", "jpeg", "format")
    )
}


# --- the pixel operations -------------------------------------------------------------------------------------------
def framed(image: Image.Image, pad: int, colour: RGB) -> Image.Image:
    """``image`` inside a border of ``pad`` pixels of ``colour``."""
    width, height = image.size
    out = Image.new("RGB", (width + 2 * pad, height + 2 * pad), colour)
    out.paste(image, (pad, pad))
    return out


def stamp_new(image: Image.Image, r: int, corner: str) -> None:
    """Draw a white "NEW" disc of radius ``r`` in a corner (``tl``, ``tr``, ``bl``, ``br``), in place."""
    width, height = image.size
    draw = ImageDraw.Draw(image)
    cx = r + 8 if corner[1] == "l" else width - r - 8
    cy = r + 8 if corner[0] == "t" else height - r - 8
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(255, 255, 255), outline=(200, 0, 0), width=3)
    draw.text((cx - r * 0.7, cy - r * 0.35), "NEW", font=default_font(int(r * 0.6)), fill=(200, 0, 0))


def crop_share(image: Image.Image, share_x: float, share_y: float, at_x: float, at_y: float) -> Image.Image:
    """Cut ``share_x`` of the width and ``share_y`` of the height in all, the part ``at_x``/``at_y`` of each from the
    left/top side and the rest from the other."""
    width, height = image.size
    left = int(width * share_x * at_x)
    top = int(height * share_y * at_y)
    return image.crop((left, top, width - int(width * share_x) + left, height - int(height * share_y) + top))


# --- the demo's recipes ---------------------------------------------------------------------------------------------
def near_duplicate(
    img: Image.Image, fmt: str, recipe: tuple[str, ...], rng: np.random.Generator
) -> tuple[Image.Image, str, int, list[str]]:
    """Apply a recipe; returns (image, format, jpeg/webp quality, description of each step)."""
    quality = 90
    steps: list[str] = []
    for op in recipe:
        w, h = img.size
        if op == "resize":
            scale = float(rng.choice([0.5, 0.6, 0.67, 0.75, 0.8]))
            if min(w, h) * scale < 60:  # keep tiny banners legible
                scale = 0.9 if min(w, h) * 0.9 >= 60 else 1.25
            img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
            steps.append(f"resize(scale={scale})")
        elif op == "recompress":
            quality = int(rng.integers(35, 61))
            fmt = "jpg"
            steps.append(f"recompress(jpeg_quality={quality})")
        elif op == "crop":
            # ``frac`` of the width and of the height is cut in all: evenly, or all of it from one corner
            frac = float(rng.choice([0.02, 0.03, 0.04, 0.05]))
            dx, dy = max(1, round(w * frac / 2)), max(1, round(h * frac / 2))
            side = int(rng.integers(0, 3))
            box = [(dx, dy, w - dx, h - dy), (0, 0, w - 2 * dx, h - 2 * dy), (2 * dx, 2 * dy, w, h)][side]
            img = img.crop(box)
            steps.append(f"crop(fraction={frac})")
        elif op == "badge":
            img = img.copy()
            dia = max(14.0, 0.09 * min(w, h))
            draw_badge(ImageDraw.Draw(img), dia * 0.65, h - dia * 0.65, dia, "NEW", (16, 122, 87))
            steps.append("badge(text=NEW)")
        elif op == "border":
            px = max(2, round(0.008 * min(w, h)))
            colour = (255, 255, 255) if rng.random() < 0.5 else (20, 20, 20)
            img = framed(img, px, colour)
            steps.append(f"border(px={px})")
        elif op == "reformat":
            fmt = {"jpg": "png", "png": "webp", "webp": "jpg"}[fmt]
            quality = 80
            steps.append(f"reformat(to={fmt})")
        else:  # pragma: no cover
            raise ValueError(op)
    return img, fmt, quality, steps


# --- labelled_banners.generate: one transform or a pair -------------------------------------------------------------
def simple_copy(image: Image.Image, kind: str, rng: random.Random) -> tuple[Image.Image, int]:
    """Apply one of :data:`COPY_KINDS`; return the image and the JPEG quality to save with."""
    quality = 92
    for part in kind.split("+"):
        width, height = image.size
        if part == "resize":
            scale = rng.choice([0.5, 0.66, 0.8, 1.25])
            image = image.resize((max(16, int(width * scale)), max(16, int(height * scale))), Image.Resampling.BICUBIC)
        elif part == "jpeg":
            quality = rng.choice([45, 60, 75])
        elif part == "crop":
            share = rng.uniform(0.02, 0.05)  # of each dimension, split unevenly between the two sides
            image = crop_share(image, share, share, rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8))
        elif part == "badge":
            stamp_new(image, int(min(width, height) * 0.06), rng.choice(["tl", "tr", "br"]))
        elif part == "border":
            pad = int(min(width, height) * rng.uniform(0.01, 0.03))
            image = framed(image, pad, rng.choice([(255, 255, 255), (0, 0, 0)]))
    return image, quality


# --- generate_varied and the photo set: random transform families ---------------------------------------------------
def apply_families(image: Image.Image, families: tuple[str, ...], fmt: str, rng: random.Random) -> tuple[bytes, str]:
    """Apply the copy ``families`` (in a fixed, realistic order) to ``image`` saved as ``fmt``; return bytes, format.

    brightness / contrast: a factor 0.8-1.2 (at least 3 % away from 1); resize: 50-200 % (aspect kept within 1 %);
    jpeg: quality 25-90; crop: 1-6 % of each dimension in all, split unevenly between the sides; border: 1-2 px, or a
    frame of 1-3 %; badge: a "NEW" disc of 5-7 % in a corner; watermark: a light (20-35 % opacity) text in a corner;
    format: saved as another of PNG / JPEG / WebP.
    """
    out_fmt, quality = fmt, 92
    for family in sorted(families, key=_FAMILY_ORDER.__getitem__):
        width, height = image.size
        if family in ("brightness", "contrast"):
            factor = 1.0 + rng.choice([-1, 1]) * rng.uniform(0.03, 0.2)
            enhancer = ImageEnhance.Brightness if family == "brightness" else ImageEnhance.Contrast
            image = enhancer(image).enhance(factor)
        elif family == "resize":
            scale = rng.uniform(0.5, 2.0)
            stretch = rng.uniform(0.99, 1.01)
            image = image.resize(
                (max(16, round(width * scale * stretch)), max(16, round(height * scale))), Image.Resampling.BICUBIC
            )
        elif family == "jpeg":
            out_fmt, quality = "JPEG", rng.randint(25, 90)
        elif family == "crop":
            share_x, share_y = rng.uniform(0.01, 0.06), rng.uniform(0.01, 0.06)
            image = crop_share(image, share_x, share_y, rng.uniform(0.0, 1.0), rng.uniform(0.0, 1.0))
        elif family == "border":
            pad = rng.choice([1, 2]) if rng.random() < 0.6 else int(min(width, height) * rng.uniform(0.01, 0.03))
            image = framed(image, pad, rng.choice([(255, 255, 255), (0, 0, 0)]))
        elif family == "badge":
            r = int(min(width, height) * rng.uniform(0.05, 0.07))
            stamp_new(image, r, rng.choice(["tl", "tr", "bl", "br"]))
        elif family == "watermark":
            layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
            unit = min(width, height)
            text = rng.choice(["@adsdaily", "shared via adhub", "(c) reposter", "sample"])
            font = default_font(max(8, unit // 30))
            box = ImageDraw.Draw(layer).textbbox((0, 0), text, font=font)
            x = 10 if rng.random() < 0.5 else width - (box[2] - box[0]) - 10
            y = 10 if rng.random() < 0.5 else height - (box[3] - box[1]) - 14
            alpha = int(255 * rng.uniform(0.2, 0.35))
            ImageDraw.Draw(layer).text((x, y), text, font=font, fill=(255, 255, 255, alpha))
            image = Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")
        elif family == "format":
            out_fmt = rng.choice([f for f in ("PNG", "JPEG", "WEBP") if f != fmt])
    return encode(image, out_fmt, 80 if out_fmt == "WEBP" else quality), out_fmt


def copy_families(c: int, rng: random.Random, *, numbers: bool) -> tuple[str, ...]:
    """The transform families of copy ``c``: 1-4 at random (one: 40 %, two: 30 %, three: 20 %, four: 10 %); with
    ``numbers`` the first copies are :data:`FORCED_COMBOS` (a crop in a frame, a brightness change recompressed)."""
    if numbers and c < len(FORCED_COMBOS):
        return FORCED_COMBOS[c]
    k = rng.choices([1, 2, 3, 4], weights=[4, 3, 2, 1])[0]
    return tuple(rng.sample(FAMILIES, k))
