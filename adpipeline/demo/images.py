"""The demo's banner images: a catalogue of templates, their variants (template siblings), and the near-duplicates
and exact copies of each, drawn with the shared banner generator (``adpipeline.demo.banners``) and copy transforms
(``adpipeline.demo.copies``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from adpipeline.demo.banners import (
    darker,
    default_font,
    draw_badge,
    draw_button,
    draw_lines,
    draw_product,
    encode,
    fit_text,
    gradient,
    hex_rgb,
    lighter,
    square_in,
)
from adpipeline.demo.copies import near_duplicate

IMAGES_SUBDIR = Path("media") / "images"


# --- the catalogue ---------------------------------------------------------------------------------------------
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


def variants(t: Template) -> list[Variant]:
    """Template siblings: the first variant, then price, offer, and colour+headline changes (different creatives)."""
    other_discount = None if t.discount else 30
    out = [
        Variant("v1", t.headlines[0], t.prices[0], t.discount, t.colours[0], ()),
        Variant("v2", t.headlines[0], t.prices[1], t.discount, t.colours[0], ("price",)),
        Variant("v3", t.headlines[0], t.prices[0], other_discount, t.colours[0], ("offer",)),
        Variant("v4", t.headlines[1], t.prices[0], t.discount, t.colours[1], ("headline", "product_colour")),
    ]
    return out[: t.n_variants]


def render_banner(t: Template, v: Variant, seed: int) -> Image.Image:
    w, h = t.size
    img = gradient(w, h, hex_rgb(t.bg[0]), hex_rgb(t.bg[1]))
    d = ImageDraw.Draw(img)
    # Decoration depends on the template only, so siblings share it.
    rng = np.random.default_rng([seed, 101, int(t.template_id[1:])])
    bg_light = lighter(hex_rgb(t.bg[1]), 0.12)
    for _ in range(4):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.08, 0.25) * min(w, h) + 0.04 * max(w, h)
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=bg_light)

    fg, accent = hex_rgb(t.text_colour), hex_rgb(t.accent)
    colour = hex_rgb(v.product_colour)
    ratio = w / h
    m = 0.05 * min(w, h)
    if ratio >= 3.5:  # leaderboard: product | brand + headline | price | button
        prod = (m, m * 0.5, h - m * 0.5 + m, h - m * 0.5)
        draw_product(d, t.product, prod, colour)
        tx = prod[2] + m * 2
        d.text((tx, h * 0.1), t.brand, font=default_font(h * 0.16), fill=lighter(fg, 0.3))
        font, lines, lh = fit_text(v.headline, w * 0.42, h * 0.55, int(h * 0.3))
        draw_lines(d, lines, font, lh, tx, h * 0.34, fg)
        px = tx + w * 0.43
        d.text((px, h * 0.3), v.price, font=default_font(h * 0.32), fill=fg)
        bw, bh = draw_button(d, w * 0.8, h * 0.3, t.cta, int(h * 0.16), accent, (255, 255, 255))
        if v.discount:
            draw_badge(d, w * 0.72, h * 0.5, h * 0.55, f"-{v.discount}%", (220, 38, 38))
        return img
    if ratio >= 1.3:  # landscape: product on one side, text column on the other
        col_w = w * 0.5
        if t.product_right:
            prod, tx = (w * 0.52, m, w - m, h - m), m * 2
        else:
            prod, tx = (m, m, w * 0.48, h - m), w * 0.5
        draw_product(d, t.product, prod, colour)
        y = h * 0.1
        d.text(
            (tx, y), t.brand, font=default_font(h * 0.05), fill=lighter(fg, 0.25) if sum(fg) < 300 else darker(fg, 0.8)
        )
        font, lines, lh = fit_text(v.headline, col_w * 0.88, h * 0.34, int(h * 0.1))
        y = draw_lines(d, lines, font, lh, tx, h * 0.2, fg)
        d.text((tx, y + h * 0.04), v.price, font=default_font(h * 0.1), fill=fg)
        draw_button(d, tx, y + h * 0.2, t.cta, int(h * 0.055), accent, (255, 255, 255))
        if v.discount:
            sq = square_in(prod)
            draw_badge(d, sq[0] + h * 0.1, sq[1] + h * 0.12, h * 0.22, f"-{v.discount}%", (220, 38, 38))
        return img
    # square, portrait and skyscraper: headline on top, product in the middle, price and button below
    sky = ratio < 0.6
    d.text((m, m * 0.6), t.brand, font=default_font(w * (0.1 if sky else 0.04)), fill=fg)
    font, lines, lh = fit_text(v.headline, w - 2 * m, h * (0.22 if sky else 0.18), int(w * (0.16 if sky else 0.08)))
    draw_lines(d, lines, font, lh, m, h * (0.07 if sky else 0.09), fg, "center", w - 2 * m)
    prod = (m, h * 0.3, w - m, h * (0.64 if sky else 0.7))
    draw_product(d, t.product, prod, colour)
    price_size = int(w * (0.17 if sky else 0.08))
    pf = default_font(price_size)
    d.text(((w - pf.getlength(v.price)) / 2, h * (0.68 if sky else 0.73)), v.price, font=pf, fill=fg)
    bsize = int(w * (0.085 if sky else 0.04))
    bf = default_font(bsize)
    bw = bf.getlength(t.cta) + 1.6 * bsize
    draw_button(d, (w - bw) / 2, h * (0.8 if sky else 0.84), t.cta, bsize, accent, (255, 255, 255))
    if v.discount:
        dia = w * (0.4 if sky else 0.2)
        sq = square_in(prod)
        draw_badge(d, min(w - dia * 0.55, sq[2]), sq[1] + dia * 0.4, dia, f"-{v.discount}%", (220, 38, 38))
    return img


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


@dataclass
class ImageRecord:
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


def _record(t: Template, v: Variant, near_duplicate_of: str | None, transform: str | None) -> ImageRecord:
    return ImageRecord(
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


def generate_images(out_dir: Path, seed: int, n_images: int | None) -> list[ImageRecord]:
    # Plan every file first (an original, then its near-duplicates and copies), keep the first n_images, and
    # only then draw them; names come from a shuffle so that they say nothing about the truth.
    planned: list[tuple[ImageRecord, Template, Variant, tuple[str, ...] | None]] = []
    recipe_i = 0
    i = 0
    for t in TEMPLATES:
        for v in variants(t):
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
            img, fmt, quality = render_banner(t, v, seed), t.fmt, 90
            originals[rec.creative_id] = img
        elif step_names == ():
            img, fmt, quality = originals[rec.creative_id], t.fmt, 90
        else:
            img, fmt, quality, steps = near_duplicate(originals[rec.creative_id], t.fmt, step_names, rng)
            rec.transform = "+".join(steps)
        rec.file = f"{IMAGES_SUBDIR.as_posix()}/{rec.file}.{fmt}"
        if step_names is None:
            original_file[rec.creative_id] = rec.file
        else:
            rec.near_duplicate_of = original_file[rec.creative_id]
        path = out_dir / rec.file
        path.parent.mkdir(parents=True, exist_ok=True)
        if step_names == ():
            path.write_bytes((out_dir / original_file[rec.creative_id]).read_bytes())
        else:
            path.write_bytes(encode(img, fmt, quality))
        rec.width, rec.height = img.size
        records.append(rec)
    return sorted(records, key=lambda r: r.file)
