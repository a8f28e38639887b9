"""Deterministic sample data for the demo and the tests.

``generate_sample(out_dir)`` writes::

    out_dir/
      media/images/img_NNN.{jpg,png,webp}   banners drawn from templates: originals, near-duplicates
                                            (resized, recompressed, cropped, badge or border added, re-encoded),
                                            exact byte copies, and template siblings (different creatives)
      media/videos/vid_NN.mp4               short H.264 clips (MPEG-4 Part 2 where the PyAV build lacks libx264),
                                            some with an AAC track, with public-domain face photos composited in
      raw_ads.csv                           ad_id,date,campaign,image_url,video_url,impressions,clicks,spend,conversions
      labels.json                           ground truth (see ``_labels``): image templates, variants, duplicate
                                            groups, persons per video with time ranges, the planted effects

Everything is a pure function of ``seed`` (and ``start``/``days``): a re-run writes byte-identical files, and
over an existing folder it replaces them (stale ``img_*``/``vid_*`` files of an earlier, larger run are removed).
URLs in the CSV are absolute paths of the files; keys in labels.json are paths relative to ``out_dir``, so the
labels do not depend on where the sample was written.

The metrics carry planted effects an analysis should find: videos showing Grace Hopper get about twice the CTR,
videos without a face about 0.6 times, and creatives with a discount convert about twice as often.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import re
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ASSETS_DIR = Path(__file__).parent / "assets" / "faces"
IMAGES_SUBDIR = Path("media") / "images"
VIDEOS_SUBDIR = Path("media") / "videos"
LABELS_VERSION = 1

RGB = tuple[int, int, int]

# --- the planted effects (also written to labels.json) ----------------------------------------------------------
BASE_CTR = {"image": 0.011, "video": 0.014}
BASE_CVR = 0.025
PERSON_CTR_MULTIPLIER = {"grace_hopper": 2.0, "obama": 1.2, "eileen_collins": 1.1, "biden": 1.0}
NO_FACE_VIDEO_CTR_MULTIPLIER = 0.6
DISCOUNT_CTR_MULTIPLIER = 1.15
DISCOUNT_CVR_MULTIPLIER = 2.0
CTR_RANGE = (0.003, 0.04)
IMPRESSIONS_RANGE = (500, 50_000)


@dataclass(frozen=True)
class SampleManifest:
    """What ``generate_sample`` wrote."""

    out_dir: Path
    raw_ads_csv: Path
    labels_path: Path
    n_rows: int
    n_ads: int
    n_images: int
    n_videos: int
    persons: tuple[str, ...]
    start: dt.date
    end: dt.date  # inclusive: the last date in the CSV


# --- face photos -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FacePhoto:
    person: str
    file: str  # relative to ASSETS_DIR
    box: tuple[int, int, int, int]  # dlib frontal detector box (left, top, right, bottom), measured once


# Boxes were measured with dlib's HOG detector (1 upsample). astronaut.jpg has a second, false detection on the
# suit patch (y > 330); the crop below stays well above it.
FACE_PHOTOS: dict[str, FacePhoto] = {
    p.file: p
    for p in (
        FacePhoto("obama", "obama/obama.jpg", (349, 142, 617, 409)),
        FacePhoto("obama", "obama/obama2.jpg", (171, 290, 438, 558)),
        FacePhoto("obama", "obama/obama3.jpg", (633, 277, 954, 598)),
        FacePhoto("biden", "biden/biden.jpg", (419, 241, 740, 562)),
        FacePhoto("eileen_collins", "eileen_collins/astronaut.jpg", (175, 76, 265, 166)),
        FacePhoto("grace_hopper", "grace_hopper/grace_hopper.jpg", (180, 139, 366, 325)),
    )
}
# Crop margins around the face box, as multiples of its size: generous, head and shoulders.
_CROP_SIDE, _CROP_TOP, _CROP_BOTTOM = 0.5, 0.45, 0.6


_CARD_FACE_PX = 150  # cards are stored at this face height, a little above the largest size drawn


@cache
def _face_card(file: str) -> tuple[Image.Image, float]:
    """Head-and-shoulders crop of a face photo with a white frame; returns (card, face height / card height)."""
    photo = FACE_PHOTOS[file]
    with Image.open(ASSETS_DIR / file) as source:
        im = source.convert("RGB")
    left, top, right, bottom = photo.box
    fw, fh = right - left, bottom - top
    crop = (
        max(0, round(left - _CROP_SIDE * fw)),
        max(0, round(top - _CROP_TOP * fh)),
        min(im.width, round(right + _CROP_SIDE * fw)),
        min(im.height, round(bottom + _CROP_BOTTOM * fh)),
    )
    card = im.crop(crop)
    scale = _CARD_FACE_PX / fh
    card = card.resize((round(card.width * scale), round(card.height * scale)), Image.Resampling.LANCZOS)
    fh = _CARD_FACE_PX
    border = max(4, card.width // 60)
    framed = Image.new("RGB", (card.width + 2 * border, card.height + 2 * border), (250, 250, 250))
    framed.paste(card, (border, border))
    return framed, fh / framed.height


# --- drawing helpers ---------------------------------------------------------------------------------------------
@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(6, int(size)))


def _darker(c: RGB, f: float = 0.7) -> RGB:
    return (int(c[0] * f), int(c[1] * f), int(c[2] * f))


def _lighter(c: RGB, f: float = 0.4) -> RGB:
    return (int(c[0] + (255 - c[0]) * f), int(c[1] + (255 - c[1]) * f), int(c[2] + (255 - c[2]) * f))


def _hex(s: str) -> RGB:
    s = s.lstrip("#")
    return (int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16))


def _gradient(w: int, h: int, top: RGB, bottom: RGB) -> Image.Image:
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    arr = (1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32)
    return Image.fromarray(np.broadcast_to((arr + 0.5).astype(np.uint8), (h, w, 3)), "RGB")


def _wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_w: float) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(lines[-1] + " " + word) <= max_w:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _fit_text(
    text: str, max_w: float, max_h: float, start: int, min_size: int = 9
) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, list[str], int]:
    """Largest font (from ``start`` down) whose wrapped lines fit the box; returns (font, lines, line height)."""
    size = int(start)
    while True:
        font = _font(size)
        lines = _wrap(text, font, max_w)
        line_h = int(size * 1.2)
        widest = max(font.getlength(line) for line in lines)
        if size <= min_size or (widest <= max_w and line_h * len(lines) <= max_h):
            return font, lines, line_h
        size = max(min_size, int(size * 0.9))


def _draw_lines(
    d: ImageDraw.ImageDraw,
    lines: list[str],
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    line_h: int,
    x: float,
    y: float,
    fill: RGB,
    align: str = "left",
    width: float = 0,
) -> float:
    for line in lines:
        lx = x
        if align == "center":
            lx = x + (width - font.getlength(line)) / 2
        d.text((lx, y), line, font=font, fill=fill)
        y += line_h
    return y


# --- products ----------------------------------------------------------------------------------------------------
def _square_in(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    s = min(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2)


def _draw_product(d: ImageDraw.ImageDraw, kind: str, box: tuple[float, float, float, float], col: RGB) -> None:
    x0, y0, x1, y1 = _square_in(box)
    s = x1 - x0

    def P(u: float, v: float) -> tuple[float, float]:
        return (x0 + u * s, y0 + v * s)

    def R(u0: float, v0: float, u1: float, v1: float) -> list[float]:
        return [x0 + u0 * s, y0 + v0 * s, x0 + u1 * s, y0 + v1 * s]

    d.ellipse(R(0.15, 0.9, 0.85, 0.99), fill=(160, 160, 160))  # shadow
    if kind == "bottle":
        d.rounded_rectangle(R(0.3, 0.32, 0.7, 0.94), radius=s * 0.07, fill=col)
        d.rectangle(R(0.42, 0.14, 0.58, 0.33), fill=col)
        d.rounded_rectangle(R(0.4, 0.04, 0.6, 0.16), radius=s * 0.02, fill=_darker(col, 0.45))
        d.rectangle(R(0.3, 0.52, 0.7, 0.72), fill=_lighter(col, 0.8))
        d.rectangle(R(0.34, 0.36, 0.38, 0.9), fill=_lighter(col, 0.35))
    elif kind == "sneaker":
        d.polygon(
            [P(0.05, 0.62), P(0.3, 0.42), P(0.5, 0.3), P(0.6, 0.48), P(0.93, 0.62), P(0.95, 0.8), P(0.05, 0.8)],
            fill=col,
        )
        d.rounded_rectangle(R(0.03, 0.78, 0.97, 0.88), radius=s * 0.03, fill=(245, 245, 245))
        for k in range(4):
            u = 0.36 + k * 0.06
            d.line(
                [P(u, 0.45 + k * 0.02), P(u + 0.07, 0.5 + k * 0.02)], fill=(250, 250, 250), width=max(1, int(s * 0.015))
            )
        d.polygon([P(0.62, 0.62), P(0.85, 0.66), P(0.62, 0.7)], fill=_lighter(col, 0.6))
    elif kind == "phone":
        d.rounded_rectangle(R(0.25, 0.04, 0.75, 0.94), radius=s * 0.06, fill=(30, 30, 34))
        d.rounded_rectangle(R(0.28, 0.09, 0.72, 0.89), radius=s * 0.03, fill=col)
        d.ellipse(R(0.48, 0.055, 0.52, 0.075), fill=(90, 90, 96))
        for k in range(3):
            d.rounded_rectangle(
                R(0.33, 0.2 + k * 0.18, 0.67, 0.32 + k * 0.18), radius=s * 0.02, fill=_lighter(col, 0.45)
            )
    elif kind == "mug":
        d.ellipse(R(0.58, 0.42, 0.86, 0.76), outline=col, width=max(2, int(s * 0.06)))
        d.rounded_rectangle(R(0.15, 0.3, 0.68, 0.92), radius=s * 0.06, fill=col)
        d.rectangle(R(0.15, 0.3, 0.68, 0.37), fill=_darker(col, 0.75))
        for k in range(3):
            u = 0.26 + k * 0.14
            d.arc(R(u, 0.06, u + 0.1, 0.26), 100, 260, fill=(150, 150, 150), width=max(1, int(s * 0.015)))
    elif kind == "watch":
        d.rounded_rectangle(R(0.36, 0.0, 0.64, 1.0), radius=s * 0.04, fill=_darker(col, 0.6))
        d.ellipse(R(0.2, 0.2, 0.8, 0.8), fill=col)
        d.ellipse(R(0.26, 0.26, 0.74, 0.74), fill=(250, 250, 248))
        d.line([P(0.5, 0.5), P(0.5, 0.32)], fill=(20, 20, 20), width=max(2, int(s * 0.025)))
        d.line([P(0.5, 0.5), P(0.64, 0.56)], fill=(20, 20, 20), width=max(2, int(s * 0.02)))
    elif kind == "bag":
        d.arc(R(0.3, 0.08, 0.7, 0.6), 180, 360, fill=_darker(col, 0.6), width=max(2, int(s * 0.05)))
        d.polygon([P(0.14, 0.34), P(0.86, 0.34), P(0.94, 0.94), P(0.06, 0.94)], fill=col)
        d.rectangle(R(0.14, 0.34, 0.86, 0.42), fill=_darker(col, 0.8))
        d.ellipse(R(0.46, 0.5, 0.54, 0.58), fill=_lighter(col, 0.7))
    elif kind == "headphones":
        d.arc(R(0.14, 0.08, 0.86, 0.8), 180, 360, fill=_darker(col, 0.6), width=max(3, int(s * 0.07)))
        d.line([P(0.18, 0.44), P(0.18, 0.6)], fill=_darker(col, 0.6), width=max(3, int(s * 0.07)))
        d.line([P(0.82, 0.44), P(0.82, 0.6)], fill=_darker(col, 0.6), width=max(3, int(s * 0.07)))
        d.rounded_rectangle(R(0.08, 0.52, 0.3, 0.86), radius=s * 0.06, fill=col)
        d.rounded_rectangle(R(0.7, 0.52, 0.92, 0.86), radius=s * 0.06, fill=col)
    else:  # pragma: no cover - the catalogue below only names the kinds above
        raise ValueError(f"unknown product kind {kind!r}")


def _draw_badge(d: ImageDraw.ImageDraw, cx: float, cy: float, diameter: float, text: str, fill: RGB) -> None:
    r = diameter / 2
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill, outline=(255, 255, 255), width=max(1, int(diameter * 0.04)))
    font, lines, line_h = _fit_text(text, diameter * 0.72, diameter * 0.5, int(diameter * 0.34), min_size=8)
    y = cy - line_h * len(lines) / 2
    _draw_lines(d, lines, font, line_h, cx - r, y, (255, 255, 255), "center", diameter)


def _draw_button(
    d: ImageDraw.ImageDraw, x: float, y: float, text: str, size: int, fill: RGB, fg: RGB
) -> tuple[float, float]:
    font = _font(size)
    tw = font.getlength(text)
    pad_x, pad_y = size * 0.8, size * 0.45
    w, h = tw + 2 * pad_x, size * 1.2 + 2 * pad_y
    d.rounded_rectangle([x, y, x + w, y + h], radius=h * 0.3, fill=fill)
    d.text((x + pad_x, y + pad_y), text, font=font, fill=fg)
    return w, h


# --- image catalogue ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Template:
    template_id: str
    brand: str
    product: str
    size: tuple[int, int]
    fmt: str
    bg: tuple[str, str]
    text_colour: str
    accent: str
    cta: str
    headlines: tuple[str, str]
    prices: tuple[str, str]
    colours: tuple[str, str]
    discount: int | None
    n_variants: int = 4
    product_right: bool = False


TEMPLATES: tuple[Template, ...] = (
    Template(
        "t01",
        "NORDLY",
        "bottle",
        (1200, 628),
        "jpg",
        ("#f6ede1", "#e6cba8"),
        "#2b2118",
        "#b5562c",
        "Shop now",
        ("Glow Serum for every skin", "Hydrate and glow all day"),
        ("$24.99", "$19.99"),
        ("#d9825b", "#6b9e78"),
        None,
    ),
    Template(
        "t02",
        "KESTREL",
        "sneaker",
        (1080, 1080),
        "jpg",
        ("#10213f", "#27497a"),
        "#ffffff",
        "#ffb400",
        "Buy now",
        ("Run faster this season", "Built for the long run"),
        ("$89.00", "$74.00"),
        ("#e4572e", "#29b6f6"),
        20,
    ),
    Template(
        "t03",
        "VOLTIX",
        "phone",
        (300, 250),
        "png",
        ("#ffffff", "#e9eef5"),
        "#111827",
        "#2563eb",
        "Learn more",
        ("Voltix X2 is here", "Meet the new X2"),
        ("$499", "$449"),
        ("#38bdf8", "#a78bfa"),
        None,
    ),
    Template(
        "t04",
        "BREWHAUS",
        "mug",
        (1080, 1350),
        "jpg",
        ("#3b2417", "#6d4429"),
        "#fff7ec",
        "#f59e0b",
        "Order today",
        ("Fresh roast delivered", "Your morning, upgraded"),
        ("$12.50", "$9.90"),
        ("#f2f2f2", "#c0392b"),
        15,
    ),
    Template(
        "t05",
        "TEMPO",
        "watch",
        (728, 90),
        "png",
        ("#0f172a", "#1e293b"),
        "#f8fafc",
        "#22c55e",
        "Shop now",
        ("Smart watch, smarter you", "Track every step"),
        ("$199", "$179"),
        ("#94a3b8", "#eab308"),
        None,
        n_variants=3,
    ),
    Template(
        "t06",
        "CARRYALL",
        "bag",
        (160, 600),
        "png",
        ("#fdf2f8", "#fbcfe8"),
        "#500724",
        "#be185d",
        "Get yours",
        ("Tote bags for city days", "Carry more, worry less"),
        ("$59", "$49"),
        ("#9d174d", "#0f766e"),
        30,
        n_variants=3,
    ),
    Template(
        "t07",
        "SONIQUE",
        "headphones",
        (1200, 628),
        "webp",
        ("#111111", "#2d2d2d"),
        "#fafafa",
        "#e11d48",
        "Listen now",
        ("Pure sound, zero noise", "Hear every detail"),
        ("$149.00", "$129.00"),
        ("#e11d48", "#f5f5f5"),
        None,
        product_right=True,
    ),
    Template(
        "t08",
        "NORDLY",
        "bottle",
        (1080, 1080),
        "webp",
        ("#e8f5e9", "#b9dfc0"),
        "#143d1f",
        "#15803d",
        "Discover",
        ("Night Repair Oil", "Wake up to softer skin"),
        ("$32.00", "$27.00"),
        ("#7c3aed", "#f59e0b"),
        25,
    ),
    Template(
        "t09",
        "KESTREL",
        "sneaker",
        (1200, 628),
        "jpg",
        ("#fff7ed", "#fed7aa"),
        "#431407",
        "#ea580c",
        "Shop the drop",
        ("Trail ready sneakers", "Grip for any trail"),
        ("$119.00", "$99.00"),
        ("#15803d", "#1d4ed8"),
        None,
        product_right=True,
    ),
    Template(
        "t10",
        "VOLTIX",
        "phone",
        (1080, 1350),
        "jpg",
        ("#eef2ff", "#c7d2fe"),
        "#1e1b4b",
        "#4f46e5",
        "Learn more",
        ("Battery that lasts two days", "Charge less, live more"),
        ("$699", "$649"),
        ("#0ea5e9", "#f43f5e"),
        10,
    ),
)


@dataclass(frozen=True)
class Variant:
    variant_id: str
    headline: str
    price: str
    discount: int | None
    product_colour: str
    differs_by: tuple[str, ...]  # what changed compared to the template's first variant


def _variants(t: Template) -> list[Variant]:
    """Template siblings: the first variant, then price, offer, and colour+headline changes (different creatives)."""
    other_discount = None if t.discount else 30
    out = [
        Variant("v1", t.headlines[0], t.prices[0], t.discount, t.colours[0], ()),
        Variant("v2", t.headlines[0], t.prices[1], t.discount, t.colours[0], ("price",)),
        Variant("v3", t.headlines[0], t.prices[0], other_discount, t.colours[0], ("offer",)),
        Variant("v4", t.headlines[1], t.prices[0], t.discount, t.colours[1], ("headline", "product_colour")),
    ]
    return out[: t.n_variants]


def _render_banner(t: Template, v: Variant, seed: int) -> Image.Image:
    w, h = t.size
    img = _gradient(w, h, _hex(t.bg[0]), _hex(t.bg[1]))
    d = ImageDraw.Draw(img)
    # Decoration depends on the template only, so siblings share it.
    rng = np.random.default_rng([seed, 101, int(t.template_id[1:])])
    bg_light = _lighter(_hex(t.bg[1]), 0.12)
    for _ in range(4):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.08, 0.25) * min(w, h) + 0.04 * max(w, h)
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=bg_light)

    fg, accent = _hex(t.text_colour), _hex(t.accent)
    colour = _hex(v.product_colour)
    ratio = w / h
    m = 0.05 * min(w, h)
    if ratio >= 3.5:  # leaderboard: product | brand + headline | price | button
        prod = (m, m * 0.5, h - m * 0.5 + m, h - m * 0.5)
        _draw_product(d, t.product, prod, colour)
        tx = prod[2] + m * 2
        d.text((tx, h * 0.1), t.brand, font=_font(h * 0.16), fill=_lighter(fg, 0.3))
        font, lines, lh = _fit_text(v.headline, w * 0.42, h * 0.55, int(h * 0.3))
        _draw_lines(d, lines, font, lh, tx, h * 0.34, fg)
        px = tx + w * 0.43
        d.text((px, h * 0.3), v.price, font=_font(h * 0.32), fill=fg)
        bw, bh = _draw_button(d, w * 0.8, h * 0.3, t.cta, int(h * 0.16), accent, (255, 255, 255))
        if v.discount:
            _draw_badge(d, w * 0.72, h * 0.5, h * 0.55, f"-{v.discount}%", (220, 38, 38))
        return img
    if ratio >= 1.3:  # landscape: product on one side, text column on the other
        col_w = w * 0.5
        if t.product_right:
            prod, tx = (w * 0.52, m, w - m, h - m), m * 2
        else:
            prod, tx = (m, m, w * 0.48, h - m), w * 0.5
        _draw_product(d, t.product, prod, colour)
        y = h * 0.1
        d.text((tx, y), t.brand, font=_font(h * 0.05), fill=_lighter(fg, 0.25) if sum(fg) < 300 else _darker(fg, 0.8))
        font, lines, lh = _fit_text(v.headline, col_w * 0.88, h * 0.34, int(h * 0.1))
        y = _draw_lines(d, lines, font, lh, tx, h * 0.2, fg)
        d.text((tx, y + h * 0.04), v.price, font=_font(h * 0.1), fill=fg)
        _draw_button(d, tx, y + h * 0.2, t.cta, int(h * 0.055), accent, (255, 255, 255))
        if v.discount:
            sq = _square_in(prod)
            _draw_badge(d, sq[0] + h * 0.1, sq[1] + h * 0.12, h * 0.22, f"-{v.discount}%", (220, 38, 38))
        return img
    # square, portrait and skyscraper: headline on top, product in the middle, price and button below
    sky = ratio < 0.6
    d.text((m, m * 0.6), t.brand, font=_font(w * (0.1 if sky else 0.04)), fill=fg)
    font, lines, lh = _fit_text(v.headline, w - 2 * m, h * (0.22 if sky else 0.18), int(w * (0.16 if sky else 0.08)))
    _draw_lines(d, lines, font, lh, m, h * (0.07 if sky else 0.09), fg, "center", w - 2 * m)
    prod = (m, h * 0.3, w - m, h * (0.64 if sky else 0.7))
    _draw_product(d, t.product, prod, colour)
    price_size = int(w * (0.17 if sky else 0.08))
    pf = _font(price_size)
    d.text(((w - pf.getlength(v.price)) / 2, h * (0.68 if sky else 0.73)), v.price, font=pf, fill=fg)
    bsize = int(w * (0.085 if sky else 0.04))
    bf = _font(bsize)
    bw = bf.getlength(t.cta) + 1.6 * bsize
    _draw_button(d, (w - bw) / 2, h * (0.8 if sky else 0.84), t.cta, bsize, accent, (255, 255, 255))
    if v.discount:
        dia = w * (0.4 if sky else 0.2)
        sq = _square_in(prod)
        _draw_badge(d, min(w - dia * 0.55, sq[2]), sq[1] + dia * 0.4, dia, f"-{v.discount}%", (220, 38, 38))
    return img


def _save(img: Image.Image, path: Path, fmt: str, quality: int = 90) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jpg":
        img.save(path, "JPEG", quality=quality, optimize=False, progressive=False)
    elif fmt == "png":
        img.save(path, "PNG", optimize=False, compress_level=6)
    elif fmt == "webp":
        img.save(path, "WEBP", quality=quality, method=4)
    else:  # pragma: no cover
        raise ValueError(fmt)


# Near-duplicate recipes, applied in turn to originals; each is "the same creative" to a person.
_NEAR_DUP_RECIPES: tuple[tuple[str, ...], ...] = (
    ("resize",),
    ("recompress",),
    ("crop",),
    ("badge",),
    ("border",),
    ("resize", "recompress"),
    ("reformat",),
    ("crop", "resize"),
    ("border", "recompress"),
)
# How many near-duplicates each original gets, cycling over originals.
_NEAR_DUP_COUNTS = (1, 0, 2, 1)
# Originals (by index) that also get a byte-identical copy under another name.
_EXACT_COPY_EVERY = 13


def _near_duplicate(
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
            d = ImageDraw.Draw(img)
            dia = max(14.0, 0.09 * min(w, h))
            _draw_badge(d, dia * 0.65, h - dia * 0.65, dia, "NEW", (16, 122, 87))
            steps.append("badge(text=NEW)")
        elif op == "border":
            px = max(2, round(0.008 * min(w, h)))
            colour = (255, 255, 255) if rng.random() < 0.5 else (20, 20, 20)
            framed = Image.new("RGB", (w + 2 * px, h + 2 * px), colour)
            framed.paste(img, (px, px))
            img = framed
            steps.append(f"border(px={px})")
        elif op == "reformat":
            fmt = {"jpg": "png", "png": "webp", "webp": "jpg"}[fmt]
            quality = 80
            steps.append(f"reformat(to={fmt})")
        else:  # pragma: no cover
            raise ValueError(op)
    return img, fmt, quality, steps


@dataclass
class _ImageRecord:
    file: str  # relative to out_dir
    template_id: str
    variant_id: str
    near_duplicate_of: str | None
    transform: str | None
    creative_id: str
    discount: int | None
    headline: str
    price: str
    cta: str
    product: str
    product_colour: str
    differs_by: tuple[str, ...]
    width: int = 0
    height: int = 0


def _record(t: Template, v: Variant, near_duplicate_of: str | None, transform: str | None) -> _ImageRecord:
    return _ImageRecord(
        "",
        t.template_id,
        v.variant_id,
        near_duplicate_of,
        transform,
        f"{t.template_id}{v.variant_id}",
        v.discount,
        v.headline,
        v.price,
        t.cta,
        t.product,
        v.product_colour,
        v.differs_by,
    )


def _generate_images(out_dir: Path, seed: int, n_images: int | None) -> list[_ImageRecord]:
    # Plan every file first (an original, then its near-duplicates and copies), keep the first n_images, and
    # only then draw them; names come from a shuffle so that they say nothing about the truth.
    planned: list[tuple[_ImageRecord, Template, Variant, tuple[str, ...] | None]] = []
    recipe_i = 0
    i = 0
    for t in TEMPLATES:
        for v in _variants(t):
            planned.append((_record(t, v, None, None), t, v, None))
            for _ in range(_NEAR_DUP_COUNTS[i % len(_NEAR_DUP_COUNTS)]):
                planned.append((_record(t, v, "", None), t, v, _NEAR_DUP_RECIPES[recipe_i % len(_NEAR_DUP_RECIPES)]))
                recipe_i += 1
            if i % _EXACT_COPY_EVERY == 5:
                planned.append((_record(t, v, "", "exact_copy"), t, v, ()))
            i += 1
    if n_images is not None:
        planned = planned[:n_images]

    order = np.random.default_rng([seed, 5]).permutation(len(planned))
    original_file: dict[str, str] = {}
    for new_index, k in enumerate(order):
        # the extension follows once the format is known (a near-duplicate may change it)
        planned[int(k)][0].file = f"img_{new_index + 1:03d}"
    rng = np.random.default_rng([seed, 1])
    originals: dict[str, Image.Image] = {}
    records = []
    for rec, t, v, step_names in planned:  # plan order: an original is saved before its copies
        if step_names is None:
            img, fmt, quality = _render_banner(t, v, seed), t.fmt, 90
            originals[rec.creative_id] = img
        elif step_names == ():
            img, fmt, quality = originals[rec.creative_id], t.fmt, 90
        else:
            img, fmt, quality, steps = _near_duplicate(originals[rec.creative_id], t.fmt, step_names, rng)
            rec.transform = "+".join(steps)
        rec.file = f"{IMAGES_SUBDIR.as_posix()}/{rec.file}.{fmt}"
        if step_names is None:
            original_file[rec.creative_id] = rec.file
        else:
            rec.near_duplicate_of = original_file[rec.creative_id]
        path = out_dir / rec.file
        if step_names == ():
            path.write_bytes((out_dir / original_file[rec.creative_id]).read_bytes())
        else:
            _save(img, path, fmt, quality)
        rec.width, rec.height = img.size
        records.append(rec)
    return sorted(records, key=lambda r: r.file)


# --- videos ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Appearance:
    photo: str  # key of FACE_PHOTOS
    start_s: float
    end_s: float
    slot: str  # "center", "left", "right"


@dataclass(frozen=True)
class VideoPlan:
    duration_s: int
    audio: bool
    product: str
    headline: str
    discount: int | None
    cast: tuple[Appearance, ...] = field(default_factory=tuple)


GH, OB1, OB2, OB3 = "grace_hopper/grace_hopper.jpg", "obama/obama.jpg", "obama/obama2.jpg", "obama/obama3.jpg"
BI, EC = "biden/biden.jpg", "eileen_collins/astronaut.jpg"
VIDEO_PLANS: tuple[VideoPlan, ...] = (
    VideoPlan(8, True, "bottle", "Glow Serum - now in stores", None, (Appearance(GH, 0, 8, "center"),)),
    VideoPlan(10, True, "sneaker", "Run with us", 20, (Appearance(GH, 0, 6, "left"), Appearance(OB1, 3, 10, "right"))),
    VideoPlan(12, False, "phone", "Voltix X2 - learn more", None, (Appearance(GH, 2, 12, "center"),)),
    VideoPlan(7, True, "mug", "Fresh roast, every morning", None, (Appearance(OB2, 0, 7, "center"),)),
    VideoPlan(
        9,
        False,
        "watch",
        "Tempo - track every step",
        15,
        (Appearance(OB3, 0, 5, "left"), Appearance(BI, 4, 9, "right")),
    ),
    VideoPlan(10, True, "bag", "Carryall city totes", None, (Appearance(BI, 1, 10, "center"),)),
    VideoPlan(6, True, "headphones", "Sonique - hear every detail", None, (Appearance(EC, 0, 6, "center"),)),
    VideoPlan(
        8, False, "bottle", "Night Repair Oil", 25, (Appearance(EC, 0, 8, "left"), Appearance(BI, 0, 8, "right"))
    ),
    VideoPlan(6, True, "sneaker", "Trail ready - shop the drop", None),
    VideoPlan(10, False, "phone", "Two-day battery", 10),
    VideoPlan(5, True, "mug", "Brewhaus - order today", None),
    VideoPlan(11, True, "headphones", "Pure sound, zero noise", None, (Appearance(OB1, 0, 11, "center"),)),
    VideoPlan(
        9, False, "watch", "Smart watch, smarter you", 30, (Appearance(GH, 1, 9, "left"), Appearance(EC, 1, 9, "right"))
    ),
    VideoPlan(15, True, "bag", "Carry more, worry less", None),
)
VIDEO_SIZE = (640, 360)
VIDEO_FPS = 10
AUDIO_RATE = 22050
_PAN = (96, 54)  # background canvas margin the camera pans over


def _video_codec() -> tuple[str, str]:
    import av

    if "libx264" in av.codecs_available:
        return "libx264", "h264"
    return "mpeg4", "mpeg4"


def _video_background(plan: VideoPlan, rng: np.random.Generator) -> Image.Image:
    w, h = VIDEO_SIZE[0] + _PAN[0], VIDEO_SIZE[1] + _PAN[1]
    hue = rng.uniform(0, 1)
    top = _hsv(hue, 0.35, 0.95)
    bottom = _hsv((hue + 0.08) % 1, 0.55, 0.7)
    img = _gradient(w, h, top, bottom)
    d = ImageDraw.Draw(img)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(20, 90)
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_lighter(bottom, float(rng.uniform(0.15, 0.4))))
    colour = _hsv((hue + 0.5) % 1, 0.7, 0.8)
    # The product sits where faces do not: the right edge with people, the centre without.
    box: tuple[float, float, float, float]
    if plan.cast:
        box = (w - _PAN[0] - 135, h - 250, w - _PAN[0] - 5, h - 110)
    else:
        box = (w / 2 - 120, h / 2 - 150, w / 2 + 120, h / 2 + 90)
    _draw_product(d, plan.product, box, colour)
    return img


def _hsv(h: float, s: float, v: float) -> RGB:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return (int(255 * r), int(255 * g), int(255 * b))


def _lower_third(plan: VideoPlan, brand_colour: RGB) -> np.ndarray:
    w, bar_h = VIDEO_SIZE[0], 52
    img = Image.new("RGB", (w, bar_h), (18, 18, 22))
    d = ImageDraw.Draw(img)
    d.text((14, 12), plan.headline, font=_font(24), fill=(255, 255, 255))
    x = w - 14
    cta = "Shop now" if plan.discount else "Learn more"
    bw = _font(18).getlength(cta) + 2 * 18 * 0.8
    _draw_button(d, x - bw, 6, cta, 18, brand_colour, (255, 255, 255))
    if plan.discount:
        _draw_badge(d, x - bw - 34, bar_h / 2, 46, f"-{plan.discount}%", (220, 38, 38))
    return np.asarray(img)


def _slot_geometry(slot: str, n_people: int) -> tuple[float, float, float]:
    """(centre x, centre y, face height in px) of a card slot; faces stay >= 100 px tall."""
    w, h = VIDEO_SIZE
    face_h = 118.0 if n_people == 1 else 104.0
    cx = {"center": w * 0.4, "left": w * 0.26, "right": w * 0.62}[slot]
    return cx, h * 0.42, face_h


def _render_video(path: Path, plan: VideoPlan, seed: int, index: int) -> None:
    import av

    rng = np.random.default_rng([seed, 2, index])
    bg = np.asarray(_video_background(plan, rng))
    brand_colour = _hsv(float(rng.uniform(0, 1)), 0.75, 0.75)
    bar = _lower_third(plan, brand_colour)
    w, h = VIDEO_SIZE
    n_frames = plan.duration_s * VIDEO_FPS
    pan_dir = rng.choice([-1, 1], size=2)
    zoom_rate = float(rng.uniform(0.04, 0.1))
    wobble = float(rng.uniform(8, 18))
    n_people = len({a.slot for a in plan.cast})
    cards = []
    for a in plan.cast:
        card, face_frac = _face_card(a.photo)
        cx, cy, face_h = _slot_geometry(a.slot, n_people)
        cards.append((a, card, face_frac, cx, cy, face_h))

    codec, _ = _video_codec()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w", format="mp4") as container:
        vs = container.add_stream(codec, rate=VIDEO_FPS)
        assert isinstance(vs, av.VideoStream)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.codec_context.thread_count = 1  # the encoder's output depends on its thread count: keep it fixed
        if codec == "libx264":
            vs.options = {"preset": "veryfast", "crf": "24"}
        else:
            vs.bit_rate = 800_000
        as_ = container.add_stream("aac", rate=AUDIO_RATE, layout="mono") if plan.audio else None

        for i in range(n_frames):
            t = i / VIDEO_FPS
            p = i / max(1, n_frames - 1)
            ox = int(round(_PAN[0] / 2 + pan_dir[0] * (p - 0.5) * _PAN[0]))
            oy = int(round(_PAN[1] / 2 + pan_dir[1] * (p - 0.5) * _PAN[1] * 0.6))
            frame = bg[oy : oy + h, ox : ox + w].copy()
            for a, card, face_frac, cx, cy, face_h in cards:
                if not (a.start_s <= t < a.end_s):
                    continue
                local = (t - a.start_s) / max(1e-6, a.end_s - a.start_s)
                scale = (face_h / face_frac) / card.height * (1 + zoom_rate * local)
                cw, ch = max(1, round(card.width * scale)), max(1, round(card.height * scale))
                resized = np.asarray(card.resize((cw, ch), Image.Resampling.BILINEAR))
                x0 = int(round(cx + wobble * math.sin(2 * math.pi * local) - cw / 2))
                y0 = int(round(cy - ch / 2))
                fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(w, x0 + cw), min(h - bar.shape[0], y0 + ch)
                frame[fy0:fy1, fx0:fx1] = resized[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
            frame[h - bar.shape[0] :] = bar
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            for packet in vs.encode(vf):
                container.mux(packet)
        for packet in vs.encode():
            container.mux(packet)

        if as_ is not None:
            arng = np.random.default_rng([seed, 3, index])
            freq = float(arng.choice([220.0, 261.63, 329.63, 392.0, 440.0]))
            n_samples = plan.duration_s * AUDIO_RATE
            chunk = 1024
            for s0 in range(0, n_samples, chunk):
                n = min(chunk, n_samples - s0)
                ts = (s0 + np.arange(n)) / AUDIO_RATE
                env = 0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * ts) ** 2
                x = 0.18 * env * np.sin(2 * np.pi * freq * ts) + 0.02 * arng.standard_normal(n)
                af = av.AudioFrame.from_ndarray(x.astype(np.float32)[None, :], format="fltp", layout="mono")
                af.sample_rate = AUDIO_RATE
                af.pts = s0
                for packet in as_.encode(af):
                    container.mux(packet)
            for packet in as_.encode():
                container.mux(packet)
    tmp.replace(path)


# --- ads and metrics ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Creative:
    file: str
    kind: str  # image | video
    discount: bool
    persons: tuple[str, ...]


def _ctr_multiplier(c: _Creative) -> float:
    m = DISCOUNT_CTR_MULTIPLIER if c.discount else 1.0
    if c.kind == "video":
        m *= max((PERSON_CTR_MULTIPLIER[p] for p in c.persons), default=NO_FACE_VIDEO_CTR_MULTIPLIER)
    return m


def _campaign(c: _Creative, rng: np.random.Generator) -> str:
    if c.discount:
        return "autumn_sale"
    if c.kind == "video":
        return str(rng.choice(["brand_video", "brand_video", "prospecting"]))
    return str(rng.choice(["new_arrivals", "prospecting", "retargeting"]))


def _generate_ads(
    out_dir: Path, creatives: list[_Creative], start: dt.date, days: int, seed: int
) -> tuple[list[dict[str, object]], int]:
    rng = np.random.default_rng([seed, 4])
    # Every creative gets one ad (videos two); a third of them get more ads that share the very same URL.
    ad_creatives: list[_Creative] = list(creatives) + [c for c in creatives if c.kind == "video"]
    extra = rng.choice(len(creatives), size=max(1, len(creatives) // 3), replace=True)
    ad_creatives += [creatives[int(k)] for k in extra]
    rows: list[dict[str, object]] = []
    base = out_dir.resolve()
    for n, c in enumerate(ad_creatives):
        ad_id = f"ad_{n + 1:04d}"
        campaign = _campaign(c, rng)
        if n % 5 == 0:
            first, length = 0, days
        else:
            length = int(rng.integers(3, days + 1))
            first = int(rng.integers(0, days - length + 1))
        imp_level = float(np.exp(rng.normal(math.log(6000), 0.8)))
        ad_ctr = BASE_CTR[c.kind] * _ctr_multiplier(c) * float(np.exp(rng.normal(0, 0.12)))
        ad_cvr = BASE_CVR * (DISCOUNT_CVR_MULTIPLIER if c.discount else 1.0) * float(np.exp(rng.normal(0, 0.12)))
        cpm = float(rng.uniform(4.0, 12.0))
        url = str(base / c.file)
        for day in range(first, first + length):
            imp = int(np.clip(imp_level * np.exp(rng.normal(0, 0.25)), *IMPRESSIONS_RANGE))
            ctr = float(np.clip(ad_ctr * np.exp(rng.normal(0, 0.15)), *CTR_RANGE))
            clicks = int(rng.binomial(imp, ctr))
            conversions = int(rng.binomial(clicks, min(0.5, ad_cvr * float(np.exp(rng.normal(0, 0.15))))))
            spend = round(imp * cpm / 1000 * float(np.exp(rng.normal(0, 0.05))), 2)
            rows.append(
                {
                    "ad_id": ad_id,
                    "date": (start + dt.timedelta(days=day)).isoformat(),
                    "campaign": campaign,
                    "image_url": url if c.kind == "image" else "",
                    "video_url": url if c.kind == "video" else "",
                    "impressions": imp,
                    "clicks": clicks,
                    "spend": f"{spend:.2f}",
                    "conversions": conversions,
                }
            )
    rows.sort(key=lambda r: (str(r["date"]), str(r["ad_id"])))
    return rows, len(ad_creatives)


CSV_COLUMNS = ("ad_id", "date", "campaign", "image_url", "video_url", "impressions", "clicks", "spend", "conversions")


def _write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


# --- labels ------------------------------------------------------------------------------------------------------
def _labels(
    images: list[_ImageRecord], videos: dict[str, tuple[VideoPlan, bool]], start: dt.date, days: int, seed: int
) -> dict[str, object]:
    groups: dict[str, list[str]] = {}
    for r in images:
        groups.setdefault(r.creative_id, []).append(r.file)
    siblings: dict[str, list[str]] = {}
    for r in images:
        if r.near_duplicate_of is None:
            siblings.setdefault(r.template_id, []).append(r.creative_id)
    _, codec_name = _video_codec()
    return {
        "version": LABELS_VERSION,
        "seed": seed,
        "start": start.isoformat(),
        "end": (start + dt.timedelta(days=days - 1)).isoformat(),
        "paths": "keys and file names are relative to the sample folder; raw_ads.csv holds absolute paths",
        "images": {
            r.file: {
                "template_id": r.template_id,
                "variant_id": r.variant_id,
                "creative_id": r.creative_id,
                "near_duplicate_of": r.near_duplicate_of,
                "transform": r.transform,
                "differs_from_v1_by": list(r.differs_by),
                "width": r.width,
                "height": r.height,
                "product": r.product,
                "product_colour": r.product_colour,
                "headline": r.headline,
                "price": r.price,
                "cta": r.cta,
                "discount_pct": r.discount,
            }
            for r in images
        },
        # Files a person would call the same creative (only groups of two or more; every other image is alone).
        "duplicate_groups": sorted(sorted(g) for g in groups.values() if len(g) > 1),
        # Creatives drawn from one template: near-identical to a hash, yet different creatives.
        "template_siblings": {tid: sorted(ids) for tid, ids in sorted(siblings.items())},
        "videos": {
            file: {
                "duration_s": plan.duration_s,
                "fps": VIDEO_FPS,
                "width": VIDEO_SIZE[0],
                "height": VIDEO_SIZE[1],
                "codec": codec_name,
                "has_audio": plan.audio,
                "headline": plan.headline,
                "product": plan.product,
                "discount_pct": plan.discount,
                "persons": sorted({FACE_PHOTOS[a.photo].person for a in plan.cast}),
                "appearances": [
                    {
                        "person": FACE_PHOTOS[a.photo].person,
                        "photo": a.photo,
                        "start_s": float(a.start_s),
                        "end_s": float(a.end_s),
                        "start_frame": int(a.start_s * VIDEO_FPS),
                        "end_frame": int(a.end_s * VIDEO_FPS),  # exclusive
                        "slot": a.slot,
                    }
                    for a in plan.cast
                ],
            }
            for file, (plan, _) in sorted(videos.items())
        },
        "persons": sorted({p.person for p in FACE_PHOTOS.values()}),
        "effects": {
            "description": (
                "CTR = base_ctr[kind] x discount_ctr_multiplier (if discounted) x, for videos, the largest person "
                "multiplier of the persons shown (no_face_video_ctr_multiplier when none); CVR = base_cvr x "
                "discount_cvr_multiplier (if discounted); lognormal noise per ad and per day; CTR clipped"
            ),
            "base_ctr": BASE_CTR,
            "base_cvr": BASE_CVR,
            "person_ctr_multiplier": PERSON_CTR_MULTIPLIER,
            "no_face_video_ctr_multiplier": NO_FACE_VIDEO_CTR_MULTIPLIER,
            "discount_ctr_multiplier": DISCOUNT_CTR_MULTIPLIER,
            "discount_cvr_multiplier": DISCOUNT_CVR_MULTIPLIER,
            "ctr_range": list(CTR_RANGE),
            "impressions_range": list(IMPRESSIONS_RANGE),
            "favoured_person": max(PERSON_CTR_MULTIPLIER, key=PERSON_CTR_MULTIPLIER.__getitem__),
        },
    }


# --- entry points ------------------------------------------------------------------------------------------------
_OWNED = re.compile(r"^(img_\d+\.(jpg|png|webp)|vid_\d+\.mp4|vid_\d+\.tmp\.mp4)$")


def _remove_stale(folder: Path, keep: set[str]) -> None:
    if not folder.is_dir():
        return
    for p in folder.iterdir():
        if p.is_file() and _OWNED.match(p.name) and p.name not in keep:
            p.unlink()


def generate_sample(
    out_dir: Path,
    *,
    start: dt.date = dt.date(2026, 10, 1),
    days: int = 14,
    seed: int = 7,
    n_images: int | None = None,
    n_videos: int | None = None,
) -> SampleManifest:
    """Write the sample (images, videos, raw_ads.csv, labels.json) into ``out_dir``; deterministic for a seed.

    ``n_images``/``n_videos`` keep only the first creatives of the plan (for fast tests); the defaults write
    all of them (78 images, 14 videos).
    """
    if days < 3:
        raise ValueError("days must be at least 3")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    images = _generate_images(out_dir, seed, n_images)

    plans = VIDEO_PLANS if n_videos is None else VIDEO_PLANS[:n_videos]
    videos: dict[str, tuple[VideoPlan, bool]] = {}
    for i, plan in enumerate(plans):
        file = f"{VIDEOS_SUBDIR.as_posix()}/vid_{i + 1:02d}.mp4"
        _render_video(out_dir / file, plan, seed, i)
        videos[file] = (plan, plan.audio)
    _remove_stale(out_dir / IMAGES_SUBDIR, {Path(r.file).name for r in images})
    _remove_stale(out_dir / VIDEOS_SUBDIR, {Path(f).name for f in videos})

    creatives = [_Creative(r.file, "image", bool(r.discount), ()) for r in images]
    creatives += [
        _Creative(f, "video", bool(p.discount), tuple(sorted({FACE_PHOTOS[a.photo].person for a in p.cast})))
        for f, (p, _) in videos.items()
    ]
    rows, n_ads = _generate_ads(out_dir, creatives, start, days, seed)
    csv_path = out_dir / "raw_ads.csv"
    _write_csv(csv_path, rows)
    labels_path = out_dir / "labels.json"
    labels = _labels(images, videos, start, days, seed)
    labels_path.write_text(json.dumps(labels, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    persons = tuple(sorted({p for c in creatives for p in c.persons}))
    return SampleManifest(
        out_dir=out_dir,
        raw_ads_csv=csv_path,
        labels_path=labels_path,
        n_rows=len(rows),
        n_ads=n_ads,
        n_images=len(images),
        n_videos=len(videos),
        persons=persons,
        start=start,
        end=start + dt.timedelta(days=days - 1),
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m adpipeline.demo.sample OUT_DIR [--seed N] [--start YYYY-MM-DD] [--days N]``"""
    parser = argparse.ArgumentParser(prog="python -m adpipeline.demo.sample", description=main.__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 10, 1))
    parser.add_argument("--days", type=int, default=14)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    m = generate_sample(args.out_dir, start=args.start, days=args.days, seed=args.seed)
    print(
        f"wrote {m.n_images} images, {m.n_videos} videos, {m.n_rows} rows ({m.n_ads} ads, {m.start}..{m.end}), "
        f"persons {', '.join(m.persons)} to {m.out_dir} in {time.perf_counter() - t0:.1f} s"
    )


if __name__ == "__main__":
    main()
