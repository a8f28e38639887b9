"""The banner generator shared by the demo sample and the benches' labelled sets.

Drawing primitives (Pillow's default font at any size, colours, gradients, wrapped and fitted text, product shapes,
discount badges, buttons), the flat banner of the labelled near-duplicate sets (:func:`draw_flat_banner`: a gradient,
one product shape, headline, offer, price and button from a spec), and :func:`encode` (one way to save a banner in each
format). The demo's catalogue banners (``adpipeline.demo.images``) and the second labelled set's photo banners
(``bench/labelled_photo_banners.py``) draw with these; the copy transforms all of them use are in
``adpipeline.demo.copies``.
"""

from __future__ import annotations

import io
from functools import cache
from typing import cast

import numpy as np
from PIL import Image, ImageDraw, ImageFont

RGB = tuple[int, int, int]


# --- drawing primitives ---------------------------------------------------------------------------------------------
@cache
def default_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(6, int(size)))


def darker(c: RGB, f: float = 0.7) -> RGB:
    return (int(c[0] * f), int(c[1] * f), int(c[2] * f))


def lighter(c: RGB, f: float = 0.4) -> RGB:
    return (int(c[0] + (255 - c[0]) * f), int(c[1] + (255 - c[1]) * f), int(c[2] + (255 - c[2]) * f))


def hex_rgb(s: str) -> RGB:
    s = s.lstrip("#")
    return (int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16))


def gradient(w: int, h: int, top: RGB, bottom: RGB, *, rounding: str = "nearest") -> Image.Image:
    """A vertical gradient from ``top`` to ``bottom``. ``rounding="floor"`` truncates each channel as the flat
    banners of the labelled sets always have (their bytes, and the quality figures measured on them, stay the same)."""
    if rounding == "floor":
        t64 = (np.arange(h, dtype=np.float64) / max(1, h - 1))[:, None, None]
        a = np.array(top, np.float64)
        rows = (a + (np.array(bottom, np.float64) - a) * t64).astype(np.uint8)
    else:
        t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
        arr = (1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32)
        rows = (arr + 0.5).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(np.broadcast_to(rows, (h, w, 3))), "RGB")


def wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_w: float) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(lines[-1] + " " + word) <= max_w:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def fit_text(
    text: str, max_w: float, max_h: float, start: int, min_size: int = 9
) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, list[str], int]:
    """Largest font (from ``start`` down) whose wrapped lines fit the box; returns (font, lines, line height)."""
    size = int(start)
    while True:
        font = default_font(size)
        lines = wrap(text, font, max_w)
        line_h = int(size * 1.2)
        widest = max(font.getlength(line) for line in lines)
        if size <= min_size or (widest <= max_w and line_h * len(lines) <= max_h):
            return font, lines, line_h
        size = max(min_size, int(size * 0.9))


def draw_lines(
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


# --- products and controls -------------------------------------------------------------------------------------------
def square_in(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    s = min(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2)


def draw_product(d: ImageDraw.ImageDraw, kind: str, box: tuple[float, float, float, float], col: RGB) -> None:
    x0, y0, x1, y1 = square_in(box)
    s = x1 - x0

    def P(u: float, v: float) -> tuple[float, float]:
        return (x0 + u * s, y0 + v * s)

    def R(u0: float, v0: float, u1: float, v1: float) -> list[float]:
        return [x0 + u0 * s, y0 + v0 * s, x0 + u1 * s, y0 + v1 * s]

    d.ellipse(R(0.15, 0.9, 0.85, 0.99), fill=(160, 160, 160))  # shadow
    if kind == "bottle":
        d.rounded_rectangle(R(0.3, 0.32, 0.7, 0.94), radius=s * 0.07, fill=col)
        d.rectangle(R(0.42, 0.14, 0.58, 0.33), fill=col)
        d.rounded_rectangle(R(0.4, 0.04, 0.6, 0.16), radius=s * 0.02, fill=darker(col, 0.45))
        d.rectangle(R(0.3, 0.52, 0.7, 0.72), fill=lighter(col, 0.8))
        d.rectangle(R(0.34, 0.36, 0.38, 0.9), fill=lighter(col, 0.35))
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
        d.polygon([P(0.62, 0.62), P(0.85, 0.66), P(0.62, 0.7)], fill=lighter(col, 0.6))
    elif kind == "phone":
        d.rounded_rectangle(R(0.25, 0.04, 0.75, 0.94), radius=s * 0.06, fill=(30, 30, 34))
        d.rounded_rectangle(R(0.28, 0.09, 0.72, 0.89), radius=s * 0.03, fill=col)
        d.ellipse(R(0.48, 0.055, 0.52, 0.075), fill=(90, 90, 96))
        for k in range(3):
            d.rounded_rectangle(
                R(0.33, 0.2 + k * 0.18, 0.67, 0.32 + k * 0.18), radius=s * 0.02, fill=lighter(col, 0.45)
            )
    elif kind == "mug":
        d.ellipse(R(0.58, 0.42, 0.86, 0.76), outline=col, width=max(2, int(s * 0.06)))
        d.rounded_rectangle(R(0.15, 0.3, 0.68, 0.92), radius=s * 0.06, fill=col)
        d.rectangle(R(0.15, 0.3, 0.68, 0.37), fill=darker(col, 0.75))
        for k in range(3):
            u = 0.26 + k * 0.14
            d.arc(R(u, 0.06, u + 0.1, 0.26), 100, 260, fill=(150, 150, 150), width=max(1, int(s * 0.015)))
    elif kind == "watch":
        d.rounded_rectangle(R(0.36, 0.0, 0.64, 1.0), radius=s * 0.04, fill=darker(col, 0.6))
        d.ellipse(R(0.2, 0.2, 0.8, 0.8), fill=col)
        d.ellipse(R(0.26, 0.26, 0.74, 0.74), fill=(250, 250, 248))
        d.line([P(0.5, 0.5), P(0.5, 0.32)], fill=(20, 20, 20), width=max(2, int(s * 0.025)))
        d.line([P(0.5, 0.5), P(0.64, 0.56)], fill=(20, 20, 20), width=max(2, int(s * 0.02)))
    elif kind == "bag":
        d.arc(R(0.3, 0.08, 0.7, 0.6), 180, 360, fill=darker(col, 0.6), width=max(2, int(s * 0.05)))
        d.polygon([P(0.14, 0.34), P(0.86, 0.34), P(0.94, 0.94), P(0.06, 0.94)], fill=col)
        d.rectangle(R(0.14, 0.34, 0.86, 0.42), fill=darker(col, 0.8))
        d.ellipse(R(0.46, 0.5, 0.54, 0.58), fill=lighter(col, 0.7))
    elif kind == "headphones":
        d.arc(R(0.14, 0.08, 0.86, 0.8), 180, 360, fill=darker(col, 0.6), width=max(3, int(s * 0.07)))
        d.line([P(0.18, 0.44), P(0.18, 0.6)], fill=darker(col, 0.6), width=max(3, int(s * 0.07)))
        d.line([P(0.82, 0.44), P(0.82, 0.6)], fill=darker(col, 0.6), width=max(3, int(s * 0.07)))
        d.rounded_rectangle(R(0.08, 0.52, 0.3, 0.86), radius=s * 0.06, fill=col)
        d.rounded_rectangle(R(0.7, 0.52, 0.92, 0.86), radius=s * 0.06, fill=col)
    else:  # pragma: no cover - the catalogue below only names the kinds above
        raise ValueError(f"unknown product kind {kind!r}")


def draw_badge(d: ImageDraw.ImageDraw, cx: float, cy: float, diameter: float, text: str, fill: RGB) -> None:
    r = diameter / 2
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill, outline=(255, 255, 255), width=max(1, int(diameter * 0.04)))
    font, lines, line_h = fit_text(text, diameter * 0.72, diameter * 0.5, int(diameter * 0.34), min_size=8)
    y = cy - line_h * len(lines) / 2
    draw_lines(d, lines, font, line_h, cx - r, y, (255, 255, 255), "center", diameter)


def draw_button(
    d: ImageDraw.ImageDraw, x: float, y: float, text: str, size: int, fill: RGB, fg: RGB
) -> tuple[float, float]:
    font = default_font(size)
    tw = font.getlength(text)
    pad_x, pad_y = size * 0.8, size * 0.45
    w, h = tw + 2 * pad_x, size * 1.2 + 2 * pad_y
    d.rounded_rectangle([x, y, x + w, y + h], radius=h * 0.3, fill=fill)
    d.text((x + pad_x, y + pad_y), text, font=font, fill=fg)
    return w, h


# --- the flat banner of the labelled sets ---------------------------------------------------------------------------
def draw_flat_banner(size: tuple[int, int], spec: dict[str, object]) -> Image.Image:
    """A banner from a spec: ``bg_top``/``bg_bottom`` (gradient), ``product`` (colour) at ``product_x`` as a
    ``shape`` (circle or box), ``headline``, ``offer``, ``price`` (``price_style`` normal, small or low contrast), a
    ``cta`` button, ``ink`` and ``accent`` colours."""
    width, height = size
    unit = min(width, height)
    top, bottom = cast(RGB, spec["bg_top"]), cast(RGB, spec["bg_bottom"])
    product, ink, accent = cast(RGB, spec["product"]), cast(RGB, spec["ink"]), cast(RGB, spec["accent"])
    product_x = float(cast(float, spec["product_x"]))
    image = gradient(width, height, top, bottom, rounding="floor")
    draw = ImageDraw.Draw(image)
    # the product: a shape in the product colour
    cx, cy = int(width * product_x), int(height * 0.55)
    r = int(unit * 0.22)
    box = [cx - r, cy - r, cx + r, cy + r]
    if spec["shape"] == "circle":
        draw.ellipse(box, fill=product, outline=(20, 20, 20), width=max(2, unit // 200))
    else:
        draw.rounded_rectangle(box, radius=r // 4, fill=product, outline=(20, 20, 20), width=max(2, unit // 200))
    text_x = int(width * (0.06 if product_x > 0.5 else 0.52))
    draw.text((text_x, int(height * 0.08)), str(spec["headline"]), font=default_font(unit // 11), fill=ink)
    draw.text((text_x, int(height * 0.30)), str(spec["offer"]), font=default_font(unit // 9), fill=accent)
    price_ink, price_size = ink, unit // 8
    if spec.get("price_style") == "small":  # a small price (a footnote-sized tag)
        price_size = unit // int(cast(int, spec.get("price_small_div", 24)))
    elif spec.get("price_style") == "low":  # a low-contrast price: its ink most of the way to the background
        y = int(height * 0.55)
        t = y / max(1, height - 1)
        behind = [a + (b - a) * t for a, b in zip(top, bottom, strict=True)]
        keep = float(cast(float, spec.get("price_contrast", 0.3)))
        price_ink = cast(RGB, tuple(int(g + (i - g) * keep) for i, g in zip(ink, behind, strict=True)))
    draw.text((text_x, int(height * 0.52)), str(spec["price"]), font=default_font(price_size), fill=price_ink)
    bx, by = text_x, int(height * 0.78)
    draw.rounded_rectangle([bx, by, bx + unit * 0.36, by + unit * 0.1], radius=unit // 40, fill=accent)
    draw.text(
        (bx + unit * 0.03, by + unit * 0.015), str(spec["cta"]), font=default_font(unit // 16), fill=(255, 255, 255)
    )
    return image


# --- saving ---------------------------------------------------------------------------------------------------------
FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}


def encode(image: Image.Image, fmt: str, quality: int = 92) -> bytes:
    """``image`` as a file of format ``fmt`` (jpg/JPEG, png/PNG, webp/WEBP; ``quality`` for JPEG and WebP)."""
    out = io.BytesIO()
    name = FORMATS[fmt.lower()]
    if name == "PNG":
        image.save(out, "PNG")
    else:
        image.save(out, name, quality=quality)
    return out.getvalue()
