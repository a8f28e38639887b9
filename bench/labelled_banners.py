"""A labelled near-duplicate set: banners from templates, template siblings, and transformed copies.

Each template (background, product shape, headline, price, offer, button) yields *siblings* that differ in price,
headline, offer or product colour: different creatives a person would not call duplicates. Each sibling yields
*copies*: resized, recompressed, 2-5 % cropped, a small badge, a border, or two of these at once: the same creative.
``label`` of an image is ``template-sibling``; two images are duplicates exactly when their labels are equal.

Deterministic for a seed. Used by ``bench/bench_dedupe.py --quality`` and by the dedupe tests (a small seed).
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

SIZES = [(1200, 628), (1080, 1080), (1080, 1350), (1080, 1920), (1280, 720)]
HEADLINES = [
    "Summer Sale",
    "New Arrivals",
    "Fresh Picks",
    "Free Shipping",
    "Back to School",
    "Weekend Deals",
    "Limited Edition",
    "Spring Collection",
    "Best Sellers",
    "Just Landed",
    "Holiday Gifts",
    "Members Only",
]
OFFERS = ["10% OFF", "20% OFF", "30% OFF", "BUY 1 GET 1", "50% OFF", "FREE GIFT"]
CTAS = ["Shop now", "Learn more", "Buy now", "Order today"]
PALETTE = [
    (231, 76, 60),
    (46, 204, 113),
    (52, 152, 219),
    (155, 89, 182),
    (241, 196, 15),
    (230, 126, 34),
    (26, 188, 156),
    (52, 73, 94),
    (236, 240, 241),
    (149, 165, 166),
    (192, 57, 43),
    (41, 128, 185),
]
SIBLING_KINDS = ("price", "headline", "offer", "colour")
COPY_KINDS = ("resize", "jpeg", "crop", "badge", "border", "resize+jpeg", "crop+jpeg")


@dataclass(frozen=True)
class Banner:
    name: str  # unique file stem
    label: str  # identity: template-sibling
    kind: str  # "original", or the copy transform
    sibling_kind: str  # "base" or what differs from the template's base sibling
    data: bytes
    image_format: str


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _draw_banner(size: tuple[int, int], spec: dict[str, object]) -> Image.Image:
    width, height = size
    unit = min(width, height)
    top, bottom = spec["bg_top"], spec["bg_bottom"]
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(height):  # vertical gradient background
        t = y / max(1, height - 1)
        colour = tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))  # type: ignore[arg-type]
        draw.line([(0, y), (width, y)], fill=colour)
    # the product: a shape in the product colour
    cx, cy = int(width * spec["product_x"]), int(height * 0.55)  # type: ignore[operator]
    r = int(unit * 0.22)
    box = [cx - r, cy - r, cx + r, cy + r]
    if spec["shape"] == "circle":
        draw.ellipse(box, fill=spec["product"], outline=(20, 20, 20), width=max(2, unit // 200))
    else:
        draw.rounded_rectangle(
            box, radius=r // 4, fill=spec["product"], outline=(20, 20, 20), width=max(2, unit // 200)
        )
    text_x = int(width * (0.06 if spec["product_x"] > 0.5 else 0.52))  # type: ignore[operator]
    draw.text((text_x, int(height * 0.08)), str(spec["headline"]), font=_font(unit // 11), fill=spec["ink"])
    draw.text((text_x, int(height * 0.30)), str(spec["offer"]), font=_font(unit // 9), fill=spec["accent"])
    price_ink, price_size = spec["ink"], unit // 8
    if spec.get("price_style") == "small":  # a small price (a footnote-sized tag)
        price_size = unit // int(spec.get("price_small_div", 24))  # type: ignore[call-overload]
    elif spec.get("price_style") == "low":  # a low-contrast price: its ink most of the way to the background
        y = int(height * 0.55)
        t = y / max(1, height - 1)
        behind = [a + (b - a) * t for a, b in zip(top, bottom, strict=True)]  # type: ignore[call-overload]
        keep = float(spec.get("price_contrast", 0.3))  # type: ignore[arg-type]
        price_ink = tuple(int(g + (i - g) * keep) for i, g in zip(spec["ink"], behind, strict=True))  # type: ignore[call-overload]
    draw.text((text_x, int(height * 0.52)), str(spec["price"]), font=_font(price_size), fill=price_ink)
    bx, by = text_x, int(height * 0.78)
    draw.rounded_rectangle([bx, by, bx + unit * 0.36, by + unit * 0.1], radius=unit // 40, fill=spec["accent"])
    draw.text((bx + unit * 0.03, by + unit * 0.015), str(spec["cta"]), font=_font(unit // 16), fill=(255, 255, 255))
    return image


def _encode(image: Image.Image, fmt: str, quality: int = 92) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.save(out, "JPEG", quality=quality)
    else:
        image.save(out, fmt)
    return out.getvalue()


def _copy(image: Image.Image, kind: str, rng: random.Random) -> tuple[Image.Image, int]:
    """Apply one copy transform; return the image and the JPEG quality to save with."""
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
            left = int(width * share * rng.uniform(0.2, 0.8))
            top = int(height * share * rng.uniform(0.2, 0.8))
            image = image.crop((left, top, width - int(width * share) + left, height - int(height * share) + top))
        elif part == "badge":
            draw = ImageDraw.Draw(image)
            r = int(min(width, height) * 0.06)
            corner = rng.choice(["tl", "tr", "br"])
            cx = r + 8 if corner == "tl" else width - r - 8
            cy = r + 8 if corner in ("tl", "tr") else height - r - 8
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(255, 255, 255), outline=(200, 0, 0), width=3)
            draw.text((cx - r * 0.7, cy - r * 0.35), "NEW", font=_font(int(r * 0.6)), fill=(200, 0, 0))
        elif part == "border":
            pad = int(min(width, height) * rng.uniform(0.01, 0.03))
            framed = Image.new("RGB", (width + 2 * pad, height + 2 * pad), rng.choice([(255, 255, 255), (0, 0, 0)]))
            framed.paste(image, (pad, pad))
            image = framed
    return image, quality


def generate(templates: int = 40, seed: int = 7, copies_per_sibling: int = 4) -> Iterator[Banner]:
    """Yield ``templates`` x 5 siblings x (1 + ``copies_per_sibling``) labelled banners."""
    rng = random.Random(seed)
    for t in range(templates):
        size = rng.choice(SIZES)
        base: dict[str, object] = {
            "bg_top": rng.choice(PALETTE),
            "bg_bottom": rng.choice(PALETTE),
            "product": rng.choice(PALETTE),
            "product_x": rng.choice([0.25, 0.75]),
            "shape": rng.choice(["circle", "box"]),
            "headline": rng.choice(HEADLINES),
            "offer": rng.choice(OFFERS),
            "price": f"${rng.randint(5, 199)}.99",
            "cta": rng.choice(CTAS),
            "ink": rng.choice([(20, 20, 20), (255, 255, 255)]),
            "accent": rng.choice([(200, 30, 30), (30, 30, 200), (20, 120, 40)]),
        }
        siblings: list[tuple[str, dict[str, object]]] = [("base", base)]
        for kind in SIBLING_KINDS:
            spec = dict(base)
            if kind == "price":
                spec["price"] = f"${rng.randint(5, 199)}.99"
                while spec["price"] == base["price"]:
                    spec["price"] = f"${rng.randint(5, 199)}.99"
            elif kind == "headline":
                spec["headline"] = rng.choice([h for h in HEADLINES if h != base["headline"]])
            elif kind == "offer":
                spec["offer"] = rng.choice([o for o in OFFERS if o != base["offer"]])
            elif kind == "colour":
                spec["product"] = rng.choice([c for c in PALETTE if c != base["product"]])
            siblings.append((kind, spec))
        for s, (sibling_kind, spec) in enumerate(siblings):
            label = f"t{t:03d}-s{s}"
            original = _draw_banner(size, spec)
            fmt = rng.choice(["PNG", "JPEG"])
            yield Banner(f"{label}-orig", label, "original", sibling_kind, _encode(original, fmt), fmt)
            kinds = rng.sample(COPY_KINDS, k=min(copies_per_sibling, len(COPY_KINDS)))
            for c, kind in enumerate(kinds):
                copied, quality = _copy(original.copy(), kind, rng)
                yield Banner(f"{label}-c{c}", label, kind, sibling_kind, _encode(copied, "JPEG", quality), "JPEG")


# --- the varied set (issue 14): random transform families and combinations, every sibling kind ----------------------
VARIED_SIBLING_KINDS = ("price", "headline", "offer", "cta", "colour", "mirrored")
# the number family (issue 19: a price is never a copy): one digit of the price, one digit of a percentage
NUMBER_SIBLING_KINDS = ("digit", "percent")
NUMBER_KINDS = ("price", "digit", "percent")  # siblings whose only change is a number
PERCENT_OFFERS = ["10% OFF", "15% OFF", "20% OFF", "25% OFF", "30% OFF", "40% OFF", "50% OFF", "70% OFF"]
# copies every set holds at least once per sibling when ``numbers`` is on: what broke recall before issue 19
FORCED_COMBOS = (("crop", "border"), ("brightness", "jpeg"))
FAMILIES = ("brightness", "contrast", "resize", "jpeg", "crop", "border", "badge", "watermark", "format")
_FAMILY_ORDER = {
    name: k
    for k, name in enumerate(
        ("crop", "brightness", "contrast", "badge", "watermark", "border", "resize", "jpeg", "format")
    )
}


@dataclass(frozen=True)
class VariedBanner:
    name: str
    label: str  # identity: template-sibling
    families: tuple[str, ...]  # () for the original; else the copy's transform families
    sibling_kind: str  # "base" or what differs from the template's base sibling
    split: str  # "tune" or "heldout" (by template)
    data: bytes


def _varied_spec(rng: random.Random) -> dict[str, object]:
    return {
        "bg_top": rng.choice(PALETTE),
        "bg_bottom": rng.choice(PALETTE),
        "product": rng.choice(PALETTE),
        "product_x": rng.choice([0.25, 0.75]),
        "shape": rng.choice(["circle", "box"]),
        "headline": rng.choice(HEADLINES),
        "offer": rng.choice(OFFERS),
        "price": f"${rng.randint(5, 199)}.99",
        "cta": rng.choice(CTAS),
        "ink": rng.choice([(20, 20, 20), (255, 255, 255)]),
        "accent": rng.choice([(200, 30, 30), (30, 30, 200), (20, 120, 40)]),
    }


def change_one_digit(text: str, rng: random.Random, *, first: bool = False) -> str:
    """``text`` with one of its digits (the first one with ``first``) replaced by another (never a leading zero)."""
    places = [k for k, c in enumerate(text) if c.isdigit()]
    k = places[0] if first else rng.choice(places)
    leading = k == 0 or not text[k - 1].isdigit()
    choices = [d for d in "0123456789" if d != text[k] and not (leading and d == "0")]
    return text[:k] + rng.choice(choices) + text[k + 1 :]


def _sibling(base: dict[str, object], kind: str, rng: random.Random) -> dict[str, object]:
    spec = dict(base)
    if kind == "digit":
        spec["price"] = change_one_digit(str(base["price"]), rng)
    elif kind == "percent":
        spec["offer"] = change_one_digit(str(base["offer"]), rng, first=True)
    elif kind == "price":
        while spec["price"] == base["price"]:
            spec["price"] = f"${rng.randint(5, 199)}.99"
    elif kind == "headline":
        spec["headline"] = rng.choice([h for h in HEADLINES if h != base["headline"]])
    elif kind == "offer":
        spec["offer"] = rng.choice([o for o in OFFERS if o != base["offer"]])
    elif kind == "cta":
        spec["cta"] = rng.choice([c for c in CTAS if c != base["cta"]])
    elif kind == "colour":
        spec["product"] = rng.choice([c for c in PALETTE if c != base["product"]])
    elif kind == "mirrored":
        spec["product_x"] = 1.0 - float(base["product_x"])  # type: ignore[arg-type]
    return spec


def apply_families(image: Image.Image, families: tuple[str, ...], fmt: str, rng: random.Random) -> tuple[bytes, str]:
    """Apply the copy ``families`` (in a fixed, realistic order) to ``image`` saved as ``fmt``; return bytes, format.

    brightness / contrast: a factor 0.8-1.2 (at least 3 % away from 1); resize: 50-200 % (aspect kept within 1 %);
    jpeg: quality 25-90; crop: 1-6 % of each dimension in all, split unevenly between the sides; border: 1-2 px, or a
    frame of 1-3 %; badge: a "NEW" disc of 5-7 % in a corner; watermark: a light (20-35 % opacity) text in a corner;
    format: saved as another of PNG / JPEG / WebP.
    """
    from PIL import ImageEnhance

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
            left = int(width * share_x * rng.uniform(0.0, 1.0))
            top = int(height * share_y * rng.uniform(0.0, 1.0))
            image = image.crop((left, top, width - int(width * share_x) + left, height - int(height * share_y) + top))
        elif family == "border":
            pad = rng.choice([1, 2]) if rng.random() < 0.6 else int(min(width, height) * rng.uniform(0.01, 0.03))
            framed = Image.new("RGB", (width + 2 * pad, height + 2 * pad), rng.choice([(255, 255, 255), (0, 0, 0)]))
            framed.paste(image, (pad, pad))
            image = framed
        elif family == "badge":
            draw = ImageDraw.Draw(image)
            r = int(min(width, height) * rng.uniform(0.05, 0.07))
            corner = rng.choice(["tl", "tr", "bl", "br"])
            cx = r + 8 if corner[1] == "l" else width - r - 8
            cy = r + 8 if corner[0] == "t" else height - r - 8
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(255, 255, 255), outline=(200, 0, 0), width=3)
            draw.text((cx - r * 0.7, cy - r * 0.35), "NEW", font=_font(int(r * 0.6)), fill=(200, 0, 0))
        elif family == "watermark":
            layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
            unit = min(width, height)
            text = rng.choice(["@adsdaily", "shared via adhub", "(c) reposter", "sample"])
            font = _font(max(8, unit // 30))
            box = ImageDraw.Draw(layer).textbbox((0, 0), text, font=font)
            x = 10 if rng.random() < 0.5 else width - (box[2] - box[0]) - 10
            y = 10 if rng.random() < 0.5 else height - (box[3] - box[1]) - 14
            alpha = int(255 * rng.uniform(0.2, 0.35))
            ImageDraw.Draw(layer).text((x, y), text, font=font, fill=(255, 255, 255, alpha))
            image = Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")
        elif family == "format":
            out_fmt = rng.choice([f for f in ("PNG", "JPEG", "WEBP") if f != fmt])
    out = io.BytesIO()
    if out_fmt == "JPEG":
        image.save(out, "JPEG", quality=quality)
    elif out_fmt == "WEBP":
        image.save(out, "WEBP", quality=80)
    else:
        image.save(out, out_fmt)
    return out.getvalue(), out_fmt


def copy_families(c: int, rng: random.Random, *, numbers: bool) -> tuple[str, ...]:
    """The transform families of copy ``c``: 1-4 at random (one: 40 %, two: 30 %, three: 20 %, four: 10 %); with
    ``numbers`` the first copies are :data:`FORCED_COMBOS` (a crop in a frame, a brightness change recompressed)."""
    if numbers and c < len(FORCED_COMBOS):
        return FORCED_COMBOS[c]
    k = rng.choices([1, 2, 3, 4], weights=[4, 3, 2, 1])[0]
    return tuple(rng.sample(FAMILIES, k))


def generate_varied(
    templates: int = 40,
    seed: int = 14,
    copies_per_sibling: int = 5,
    *,
    numbers: bool = False,
    parts: tuple[str, ...] = ("tune", "heldout"),
) -> Iterator[VariedBanner]:
    """``templates`` x 7 siblings (base + each of :data:`VARIED_SIBLING_KINDS`) x (1 + ``copies_per_sibling``).

    Each copy draws 1-4 transform families at random (:func:`copy_families`). Even templates form the tuning part,
    odd ones the held-out part, so no creative (and no template) is in both; ``parts`` keeps only those (the others
    are still drawn, so a part is the same whatever else is asked for).

    ``numbers`` (issue 19) adds the number family: siblings whose only change is one digit of the price (``digit``)
    or of a percentage offer (``percent``; the base offer is then always a percentage), and a price style per
    template: a third of them normal, a third small (1/28-1/40 of the short side), a third low contrast (15-30 % of
    the normal ink contrast to the background), so OCR reads those prices less surely; and the forced copies of
    :data:`FORCED_COMBOS`.
    """
    rng = random.Random(seed)
    kinds = ("base", *VARIED_SIBLING_KINDS, *(NUMBER_SIBLING_KINDS if numbers else ()))
    for t in range(templates):
        size = rng.choice(SIZES)
        base = _varied_spec(rng)
        if numbers:
            base["offer"] = rng.choice(PERCENT_OFFERS)
            base["price_style"] = rng.choice(["normal", "small", "low"])
            base["price_small_div"] = rng.randint(28, 40)
            base["price_contrast"] = rng.uniform(0.15, 0.3)
        split = "tune" if t % 2 == 0 else "heldout"
        for s, sibling_kind in enumerate(kinds):
            spec = base if sibling_kind == "base" else _sibling(base, sibling_kind, rng)
            label = f"v{t:03d}-s{s}"
            original = _draw_banner(size, spec)
            fmt = rng.choice(["PNG", "JPEG"])
            if split in parts:
                yield VariedBanner(f"{label}-orig", label, (), sibling_kind, split, _encode(original, fmt))
            for c in range(copies_per_sibling):
                families = copy_families(c, rng, numbers=numbers)
                data, _ = apply_families(original.copy(), families, fmt, rng)
                if split in parts:
                    yield VariedBanner(f"{label}-c{c}", label, families, sibling_kind, split, data)
