"""A labelled near-duplicate set: banners from templates, template siblings, and transformed copies.

Each template (background, product shape, headline, price, offer, button) yields *siblings* that differ in price,
headline, offer or product colour: different creatives a person would not call duplicates. Each sibling yields
*copies*: resized, recompressed, 2-5 % cropped, a small badge, a border, or two of these at once: the same creative.
``label`` of an image is ``template-sibling``; two images are duplicates exactly when their labels are equal.

Banners are drawn by the shared generator (``adpipeline.demo.banners.draw_flat_banner``) and copied with the shared
transforms (``adpipeline.demo.copies``); this module says which banners and copies a set holds and how they are
labelled. Deterministic for a seed. Used by ``bench/bench_dedupe.py --quality`` and by the dedupe tests (a small seed).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from adpipeline.demo.banners import draw_flat_banner, encode
from adpipeline.demo.copies import COPY_KINDS, FAMILIES, FORCED_COMBOS, apply_families, copy_families, simple_copy

__all__ = [
    "COPY_KINDS",
    "FAMILIES",
    "FORCED_COMBOS",
    "Banner",
    "VariedBanner",
    "apply_families",
    "change_one_digit",
    "copy_families",
    "generate",
    "generate_varied",
]

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


@dataclass(frozen=True)
class Banner:
    name: str  # unique file stem
    label: str  # identity: template-sibling
    kind: str  # "original", or the copy transform
    sibling_kind: str  # "base" or what differs from the template's base sibling
    data: bytes
    image_format: str


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
            original = draw_flat_banner(size, spec)
            fmt = rng.choice(["PNG", "JPEG"])
            yield Banner(f"{label}-orig", label, "original", sibling_kind, encode(original, fmt), fmt)
            kinds = rng.sample(COPY_KINDS, k=min(copies_per_sibling, len(COPY_KINDS)))
            for c, kind in enumerate(kinds):
                copied, quality = simple_copy(original.copy(), kind, rng)
                yield Banner(f"{label}-c{c}", label, kind, sibling_kind, encode(copied, "JPEG", quality), "JPEG")


# --- the varied set (issue 14): random transform families and combinations, every sibling kind ----------------------
VARIED_SIBLING_KINDS = ("price", "headline", "offer", "cta", "colour", "mirrored")
# the number family (issue 19: a price is never a copy): one digit of the price, one digit of a percentage
NUMBER_SIBLING_KINDS = ("digit", "percent")
NUMBER_KINDS = ("price", "digit", "percent")  # siblings whose only change is a number
PERCENT_OFFERS = ["10% OFF", "15% OFF", "20% OFF", "25% OFF", "30% OFF", "40% OFF", "50% OFF", "70% OFF"]


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
            original = draw_flat_banner(size, spec)
            fmt = rng.choice(["PNG", "JPEG"])
            if split in parts:
                yield VariedBanner(f"{label}-orig", label, (), sibling_kind, split, encode(original, fmt))
            for c in range(copies_per_sibling):
                families = copy_families(c, rng, numbers=numbers)
                data, _ = apply_families(original.copy(), families, fmt, rng)
                if split in parts:
                    yield VariedBanner(f"{label}-c{c}", label, families, sibling_kind, split, data)
