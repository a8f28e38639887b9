"""A second labelled near-duplicate set (issue 19): photo banners in other fonts and layouts.

So that the quality figures do not rest on one generator (``labelled_banners.generate_varied``: flat gradients, one
shape, Pillow's default font, text in one column), this one draws banners around *photographs* (scikit-image's
bundled sample photos: astronaut, cat, coffee, rocket, ...), in the DejaVu fonts (sans bold, serif, condensed,
mono; the system's ``fonts-dejavu-core``, as matplotlib also ships them), in four layouts: the photo full-bleed under
a translucent text panel, the photo on one side with text on the other, the photo on top with a text band below,
and a framed photo card on a flat colour with a price sticker.

Siblings (different creatives): ``price`` (another price), ``digit`` (one digit of the price), ``percent`` (one digit
of the percentage), ``headline``, ``offer``, ``cta``, ``colour`` (the product's colour: the photo's hue turned and
the accent recoloured) and ``mirrored`` (the layout flipped). The price is drawn normal, small or in low contrast
per template. Copies use the same transform families as the first set (``adpipeline.demo.copies.apply_families``),
the first two of each sibling being a crop in a frame and a brightness change recompressed. Deterministic for a
seed; even templates are the tuning part, odd ones held out.
"""

from __future__ import annotations

import colorsys
import random
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np
from labelled_banners import CTAS, PERCENT_OFFERS, VariedBanner, change_one_digit
from PIL import Image, ImageDraw, ImageFont

from adpipeline.demo.banners import encode
from adpipeline.demo.copies import apply_families, copy_families

PHOTO_SIBLING_KINDS = ("price", "digit", "percent", "headline", "offer", "cta", "colour", "mirrored")
LAYOUTS = ("panel", "split", "band", "card")
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "cat")
SIZES = [(1200, 628), (1080, 1080), (1080, 1350), (1080, 1920), (1280, 720), (970, 500)]
HEADLINES = [
    "Cozy Coffee Mornings",
    "Explore the Stars",
    "Your Cat Deserves It",
    "Launch Week",
    "Night Sky Tours",
    "Lab Grade Quality",
    "Meet the Crew",
    "Autumn Blend",
    "Deep Space Prints",
    "Feline Favourites",
]
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONTS = ("DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansCondensed.ttf", "DejaVuSansMono-Bold.ttf")


@lru_cache(maxsize=64)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    path = FONT_DIR / name
    if not path.exists():
        raise SystemExit(f"the second labelled set needs the DejaVu fonts ({path}): apt-get install fonts-dejavu-core")
    return ImageFont.truetype(str(path), max(8, size))


@lru_cache(maxsize=16)
def _photo(name: str) -> Image.Image:
    from skimage import data

    pixels = getattr(data, name)()
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    return Image.fromarray(pixels[..., :3].astype(np.uint8))


def _turn_hue(image: Image.Image, turn: float) -> Image.Image:
    hsv = np.asarray(image.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + int(turn * 255)) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def _fit(photo: Image.Image, box: tuple[int, int], focus: tuple[float, float]) -> Image.Image:
    """``photo`` scaled to cover ``box`` and cut around ``focus`` (shares)."""
    bw, bh = max(1, box[0]), max(1, box[1])
    scale = max(bw / photo.width, bh / photo.height)
    resized = photo.resize((max(bw, round(photo.width * scale)), max(bh, round(photo.height * scale))))
    x = int((resized.width - bw) * focus[0])
    y = int((resized.height - bh) * focus[1])
    return resized.crop((x, y, x + bw, y + bh))


def _accent(hue: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, 0.75, 0.85)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_photo_banner(size: tuple[int, int], spec: dict[str, object]) -> Image.Image:
    width, height = size
    unit = min(width, height)
    photo = _photo(str(spec["photo"]))
    if spec["hue_turn"]:
        photo = _turn_hue(photo, float(spec["hue_turn"]))  # type: ignore[arg-type]
    focus = spec["focus"]  # type: ignore[assignment]
    layout = str(spec["layout"])
    mirrored = bool(spec["mirrored"])
    accent = _accent(float(spec["accent_hue"]))  # type: ignore[arg-type]
    image = Image.new("RGB", size, spec["ground"])  # type: ignore[arg-type]
    if layout == "panel":
        image.paste(_fit(photo, size, focus), (0, 0))  # type: ignore[arg-type]
        panel_w = int(width * 0.5)
        px = width - panel_w if mirrored else 0
        overlay = Image.new("RGBA", size, (0, 0, 0, 0))
        ImageDraw.Draw(overlay).rectangle([px, 0, px + panel_w, height], fill=(*spec["ground"], 200))  # type: ignore[misc]
        image = Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")
        text_box = (px + int(width * 0.04), int(height * 0.08), px + panel_w - int(width * 0.03), height)
    elif layout == "split":
        pw = int(width * 0.5)
        image.paste(_fit(photo, (pw, height), focus), (width - pw if not mirrored else 0, 0))  # type: ignore[arg-type]
        x0 = int(width * 0.04) + (pw if mirrored else 0)
        text_box = (x0, int(height * 0.08), x0 + pw - int(width * 0.07), height)
    elif layout == "band":
        ph = int(height * 0.55)
        y0 = height - ph if mirrored else 0
        image.paste(_fit(photo, (width, ph), focus), (0, y0))  # type: ignore[arg-type]
        ty = int(height * 0.04) if mirrored else ph + int(height * 0.03)
        text_box = (int(width * 0.05), ty, int(width * 0.95), ty + height - ph)
    else:  # card: a framed photo on the flat ground, text beside or under it
        cw, ch = int(width * 0.46), int(height * 0.6)
        cx = int(width * 0.5) if not mirrored else int(width * 0.04)
        cy = int(height * 0.12)
        ImageDraw.Draw(image).rectangle([cx - 6, cy - 6, cx + cw + 6, cy + ch + 6], fill=accent)
        image.paste(_fit(photo, (cw, ch), focus), (cx, cy))  # type: ignore[arg-type]
        x0 = int(width * 0.04) if not mirrored else int(width * 0.54)
        text_box = (x0, int(height * 0.1), x0 + int(width * 0.42), height)
    draw = ImageDraw.Draw(image)
    x0, y0, x1, y1 = text_box
    ink = spec["ink"]
    box_h = max(1, y1 - y0)
    line = max(10, min(box_h // 7, unit // 9))
    font_name = str(spec["font"])
    y = y0
    draw.text((x0, y), str(spec["headline"]), font=_font(font_name, int(line * 0.8)), fill=ink)  # type: ignore[arg-type]
    y += int(line * 1.3)
    draw.text((x0, y), str(spec["offer"]), font=_font(font_name, int(line * 0.9)), fill=accent)
    y += int(line * 1.4)
    price_size, price_ink = int(line * 1.1), ink
    if spec["price_style"] == "small":
        price_size = max(9, unit // int(spec["price_small_div"]))  # type: ignore[call-overload]
    elif spec["price_style"] == "low":
        region = np.asarray(image.crop((x0, y, min(width, x0 + line * 4), min(height, y + line)))).reshape(-1, 3)
        behind = region.mean(axis=0) if len(region) else np.array([128.0, 128.0, 128.0])
        keep = float(spec["price_contrast"])  # type: ignore[arg-type]
        price_ink = tuple(int(g + (i - g) * keep) for i, g in zip(ink, behind, strict=True))  # type: ignore[call-overload]
    draw.text((x0, y), str(spec["price"]), font=_font(font_name, price_size), fill=price_ink)  # type: ignore[arg-type]
    y += int(line * 1.5)
    cta_font = _font(font_name, int(line * 0.55))
    tw = draw.textbbox((0, 0), str(spec["cta"]), font=cta_font)[2]
    pad = max(4, line // 5)
    draw.rounded_rectangle([x0, y, x0 + tw + 2 * pad, y + int(line * 0.55) + 2 * pad], radius=pad, fill=accent)
    draw.text((x0 + pad, y + pad), str(spec["cta"]), font=cta_font, fill=(255, 255, 255))
    return image


def _spec(rng: random.Random) -> dict[str, object]:
    dark = rng.random() < 0.5
    return {
        "photo": rng.choice(PHOTOS),
        "focus": (rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8)),
        "hue_turn": 0.0,
        "layout": rng.choice(LAYOUTS),
        "mirrored": False,
        "font": rng.choice(FONTS),
        "ground": (20, 24, 32) if dark else (246, 242, 236),
        "ink": (245, 245, 245) if dark else (25, 25, 25),
        "accent_hue": rng.random(),
        "headline": rng.choice(HEADLINES),
        "offer": rng.choice(PERCENT_OFFERS),
        "price": f"${rng.randint(5, 499)}.{rng.choice(['99', '95', '49', '00'])}",
        "cta": rng.choice(CTAS),
        "price_style": rng.choice(["normal", "small", "low"]),
        "price_small_div": rng.randint(28, 40),
        "price_contrast": rng.uniform(0.15, 0.3),
    }


def _photo_sibling(base: dict[str, object], kind: str, rng: random.Random) -> dict[str, object]:
    spec = dict(base)
    if kind == "price":
        while spec["price"] == base["price"]:
            spec["price"] = f"${rng.randint(5, 499)}.{rng.choice(['99', '95', '49', '00'])}"
    elif kind == "digit":
        spec["price"] = change_one_digit(str(base["price"]), rng)
    elif kind == "percent":
        spec["offer"] = change_one_digit(str(base["offer"]), rng, first=True)
    elif kind == "headline":
        spec["headline"] = rng.choice([h for h in HEADLINES if h != base["headline"]])
    elif kind == "offer":
        spec["offer"] = rng.choice(["FREE SHIPPING", "BUY 1 GET 1", "NEW SEASON", "MEMBERS ONLY"])
    elif kind == "cta":
        spec["cta"] = rng.choice([c for c in CTAS if c != base["cta"]])
    elif kind == "colour":
        spec["hue_turn"] = rng.uniform(0.25, 0.75)
        spec["accent_hue"] = (float(base["accent_hue"]) + rng.uniform(0.25, 0.75)) % 1.0  # type: ignore[arg-type]
    elif kind == "mirrored":
        spec["mirrored"] = True
    return spec


def generate_photo(
    templates: int = 40,
    seed: int = 101,
    copies_per_sibling: int = 5,
    *,
    parts: tuple[str, ...] = ("tune", "heldout"),
) -> Iterator[VariedBanner]:
    """``templates`` x 9 siblings (base + :data:`PHOTO_SIBLING_KINDS`) x (1 + ``copies_per_sibling``)."""
    rng = random.Random(seed)
    for t in range(templates):
        size = rng.choice(SIZES)
        base = _spec(rng)
        split = "tune" if t % 2 == 0 else "heldout"
        for s, sibling_kind in enumerate(("base", *PHOTO_SIBLING_KINDS)):
            spec = base if sibling_kind == "base" else _photo_sibling(base, sibling_kind, rng)
            label = f"p{t:03d}-s{s}"
            original = draw_photo_banner(size, spec)
            fmt = rng.choice(["PNG", "JPEG"])
            if split in parts:
                yield VariedBanner(f"{label}-orig", label, (), sibling_kind, split, encode(original, fmt))
            for c in range(copies_per_sibling):
                families = copy_families(c, rng, numbers=True)
                data, _ = apply_families(original.copy(), families, fmt, rng)
                if split in parts:
                    yield VariedBanner(f"{label}-c{c}", label, families, sibling_kind, split, data)
