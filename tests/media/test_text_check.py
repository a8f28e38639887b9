"""The text evidence of the near-duplicate check: OCR lines compared by place (media.text)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from adpipeline.media import dedupe
from adpipeline.media.images import analyse_image
from adpipeline.media.text import lines_differ, normalise, parse_text, text_key, texts_differ
from adpipeline.settings import Settings
from adpipeline.text_reader import read_text
from tests.media.conftest import with_text


def record(*lines: tuple[str, float, float, float, float]) -> str:
    """A stored record from (text, x0, y0, x1, y1) lines, confidence 0.95."""
    return json.dumps([[text, 0.95, x0, y0, x1, y1] for text, x0, y0, x1, y1 in lines])


BASE = (
    ("Summer Sale", 0.52, 0.08, 0.95, 0.14),
    ("20% OFF", 0.52, 0.30, 0.90, 0.36),
    ("$45.99", 0.52, 0.52, 0.80, 0.60),
    ("Shop now", 0.54, 0.79, 0.84, 0.83),
)


def with_line(index: int, text: str) -> tuple[tuple[str, float, float, float, float], ...]:
    lines = list(BASE)
    lines[index] = (text, *lines[index][1:])
    return tuple(lines)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("$45.99", "$46.99"),  # a digit replaced
        ("$19.99", "$119.99"),  # a digit added inside
        ("10%off", "20%off"),
        ("shopnow", "learnmore"),
        ("summersale", "freshpicks"),
        ("buy1get1", "freegift"),
    ],
)
def test_other_text_in_the_same_place_differs(a: str, b: str) -> None:
    assert lines_differ(normalise(a), normalise(b))
    assert lines_differ(normalise(b), normalise(a))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Shop now", "Shopnow"),  # spacing read differently
        ("FREE GIFT", "FREE GIF7"),  # a letter read as the digit it resembles
        ("Holiday Gifts", "loliday Gifts"),  # a letter cut at the edge (crop)
        ("Free Shippi", "Free Shippii"),  # a line cut by the image edge reads longer or shorter
        ("Free Shipping", "Free Shipp"),
        ("Best Sellers", "Best Seller5"),
        ("BUY 1 GET 1", "BUY 1 GEI1"),  # two letters confused with each other (both read as digits)
    ],
)
def test_ocr_noise_is_not_a_difference(a: str, b: str) -> None:
    assert not lines_differ(normalise(a), normalise(b))


def test_copies_with_additions_say_the_same() -> None:
    badge = ("NEW", 0.87, 0.04, 0.95, 0.06)
    watermark = ("shared via adhub", 0.73, 0.98, 0.99, 0.998)
    assert not texts_differ(record(*BASE), record(*BASE, badge))
    assert not texts_differ(record(*BASE, watermark), record(badge, *BASE))
    shifted = tuple((t, x0 - 0.03, y0 - 0.04, x1 - 0.03, y1 - 0.04) for t, x0, y0, x1, y1 in BASE)  # a crop
    assert not texts_differ(record(*BASE), record(*shifted))


@pytest.mark.parametrize(("index", "text"), [(0, "New Arrivals"), (1, "30% OFF"), (2, "$46.99"), (3, "Buy now")])
def test_siblings_say_something_else(index: int, text: str) -> None:
    assert texts_differ(record(*BASE), record(*with_line(index, text)))
    assert texts_differ(record(*with_line(index, text)), record(*BASE))


def test_no_record_or_no_text_is_no_evidence() -> None:
    assert not texts_differ(None, record(*BASE))
    assert not texts_differ(record(), record(*BASE))
    faint = json.dumps([["$12.99", 0.3, 0.52, 0.52, 0.8, 0.6]])  # below the confidence floor
    assert parse_text(faint) == ()


def _banner(price: str, cta: str = "Shop now", *, brightness: float = 1.0, scale: float = 1.0) -> bytes:
    image = Image.new("RGB", (1200, 628), (52, 152, 219))
    draw = ImageDraw.Draw(image)
    draw.ellipse([80, 150, 420, 490], fill=(241, 196, 15), outline=(20, 20, 20), width=4)
    draw.text((620, 60), "Summer Sale", font=ImageFont.load_default(size=64), fill=(255, 255, 255))
    draw.text((620, 300), price, font=ImageFont.load_default(size=80), fill=(255, 255, 255))
    draw.rounded_rectangle([620, 490, 850, 560], radius=14, fill=(200, 30, 30))
    draw.text((640, 500), cta, font=ImageFont.load_default(size=40), fill=(255, 255, 255))
    if brightness != 1.0:
        from PIL import ImageEnhance

        image = ImageEnhance.Brightness(image).enhance(brightness)
    if scale != 1.0:
        image = image.resize((round(1200 * scale), round(628 * scale)), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=70)
    return out.getvalue()


def test_read_text_finds_the_lines_with_their_places() -> None:
    rgb = np.asarray(Image.open(io.BytesIO(_banner("$45.99"))).convert("RGB"))
    lines = parse_text(read_text(rgb))
    assert lines is not None
    texts = {line.text for line in lines}
    assert {"summersale", "$4599", "shopnow"} <= texts
    price = next(line for line in lines if line.text == "$4599")
    assert 0.45 < price.box[0] < 0.6 and 0.4 < price.box[1] < 0.6  # shares of the image


def _hashed(name: str, data: bytes, settings: Settings) -> dedupe.HashedImage:
    import hashlib

    facts = with_text(data, settings)
    return dedupe.HashedImage(
        name,
        hashlib.sha256(data).hexdigest(),
        facts.dhash,
        None,
        facts.fine_thumb,
        facts.width,
        facts.height,
        facts.ocr_text,
    )


def test_text_keeps_cta_siblings_apart_and_copies_together() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    images = [
        _hashed("base", _banner("$45.99"), settings),
        _hashed("base-copy", _banner("$45.99", brightness=1.15, scale=0.6), settings),
        _hashed("cta", _banner("$45.99", "Buy now"), settings),
        _hashed("price", _banner("$46.99"), settings),
    ]
    assert all(image.ocr_text for image in images)
    groups = {row.creative_id: row.group_id for row in dedupe.group_duplicates(images)}
    assert groups["base"] == groups["base-copy"]
    assert len({groups["base"], groups["cta"], groups["price"]}) == 3
    # the check can be turned off: the text is then no evidence
    loose = dedupe.group_duplicates(images, detail_threshold=10.0, coarse_reject=255.0, text_check=False)
    assert len({row.group_id for row in loose}) < 3


def test_analysis_reads_no_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """Text is read only when grouping needs it (or by the offline extractor), never at analysis."""
    import adpipeline.text_reader as text_reader

    def no_ocr(*args: object, **kwargs: object) -> None:
        raise AssertionError("analysis ran OCR")

    monkeypatch.setattr(text_reader, "run_ocr", no_ocr)
    facts = analyse_image(_banner("$45.99"), Settings(_env_file=None))  # type: ignore[call-arg]
    assert facts.ocr_text is None and facts.to_row("c", "s").ocr_text is None and facts.fine_thumb


@pytest.mark.parametrize("bad", ["not json", "[[1, 2]]", '{"a": 1}', "[null]"])
def test_a_malformed_record_is_no_evidence(bad: str) -> None:
    assert parse_text(bad) == ()
    assert not texts_differ(bad, record(*BASE))


def test_an_ocr_failure_is_no_text_evidence(monkeypatch: pytest.MonkeyPatch) -> None:
    import adpipeline.text_reader as text_reader
    from adpipeline.media.images import read_image_text

    def broken(rgb: np.ndarray, **kwargs: object) -> str:
        raise RuntimeError("onnxruntime session failed")

    monkeypatch.setattr(text_reader, "read_text", broken)
    assert read_image_text(_banner("$45.99"), Settings(_env_file=None)) is None  # type: ignore[call-arg]
    assert read_image_text(b"not an image", Settings(_env_file=None)) is None  # type: ignore[call-arg]


def test_text_key_is_the_tallest_line_whatever_its_place_or_a_slip() -> None:
    """A copy's crop, frame, badge or OCR slip (``O``/``0``) keeps the key; another headline, price or no text does
    not share it; short lines and records without text give none."""
    tallest = ("$45.99", 0.52, 0.50, 0.80, 0.62)  # the tallest line of BASE
    base = record(*BASE[:2], tallest, BASE[3])
    moved = record(
        *(
            (t, x0 * 0.95 + 0.02, y0 * 0.94 + 0.03, x1 * 0.95 + 0.02, y1 * 0.94 + 0.03)
            for t, x0, y0, x1, y1 in (*BASE[:2], tallest, BASE[3])
        ),
        ("NEW", 0.02, 0.02, 0.08, 0.06),
    )
    assert text_key(base) is not None and 0 <= text_key(base) < 2**63  # stored as a signed INT64
    assert text_key(moved) == text_key(base)
    assert text_key(record(("$45.99", 0.5, 0.5, 0.8, 0.62))) == text_key(record(("$45.9g", 0.5, 0.5, 0.8, 0.62)))
    assert text_key(record(*BASE[:2], ("$46.99", 0.52, 0.50, 0.80, 0.62))) != text_key(base)
    assert text_key(record(("Sale", 0.1, 0.1, 0.5, 0.3))) is not None
    assert text_key(record(("OK", 0.1, 0.1, 0.5, 0.3))) is None  # too short to key on
    assert text_key(None) is None and text_key("[]") is None and text_key("not json") is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("$14.99", "$1q.99"),  # $19.99 with its changed 9 read as q, against $14.99
        ("Now only $19.99 today", "Now only $1A.99 today"),  # $14.99 with its 4 read as A, against $19.99: a long line
        ("50% OFF everything", "3O% OFF everything"),  # 5 -> 3 with the 0 read as O on one side
        ("S0% OFF", "30% OFF"),  # the changed digit read as the letter it resembles (S = 5) against a real 3
        ("Only $66.99 today", "Only $6A.99 today"),  # $64.99 with its 4 read as A, against $66.99
    ],
)
def test_a_number_change_differs_also_with_one_digit_misread(a: str, b: str) -> None:
    assert lines_differ(normalise(a), normalise(b))
    assert lines_differ(normalise(b), normalise(a))


def test_a_price_sibling_misread_on_one_side_stays_apart_and_its_copy_together() -> None:
    base = record(*with_line(2, "$19.99"))
    sibling_misread = record(*with_line(2, "$1A.99"))  # the sibling says $14.99; OCR read its 4 as A
    copy_misread = record(*with_line(2, "$1g.99"))  # a copy of the base, 9 read as g (the digit it resembles)
    assert texts_differ(base, sibling_misread)
    assert texts_differ(sibling_misread, base)
    assert not texts_differ(base, copy_misread)
    assert not texts_differ(base, record(*with_line(2, "S19.99")))  # the $ read as S
    assert not texts_differ(record(*with_line(2, "302.99")), record(*with_line(2, "B02.99")))  # 3 read as B
    assert not texts_differ(record(*with_line(2, "$446.49")), record(*with_line(2, "$446.4")))  # cut at the edge
    assert not texts_differ(base, record(*with_line(2, "$19.99 ")))


def test_the_number_family_changes_one_digit_and_keeps_the_rest() -> None:
    """The labelled generators' number siblings (bench/labelled_banners.py, bench/labelled_photo_banners.py): the
    ``digit`` sibling's price and the ``percent`` sibling's offer differ from the base in exactly one digit, and every
    sibling has a crop in a frame and a brightness change recompressed among its copies."""
    import random
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
    from labelled_banners import FORCED_COMBOS, change_one_digit, generate_varied

    rng = random.Random(3)
    for text in ("$45.99", "$5.99", "20% OFF", "$184.00"):
        for _ in range(20):
            changed = change_one_digit(text, rng)
            assert len(changed) == len(text)
            assert sum(x != y for x, y in zip(text, changed, strict=True)) == 1
            assert lines_differ(normalise(text), normalise(changed))
        first = change_one_digit(text, rng, first=True)
        assert first[text.index(next(c for c in text if c.isdigit()))] != "0"
    banners = list(generate_varied(templates=1, seed=4, copies_per_sibling=2, numbers=True))
    kinds = {b.sibling_kind for b in banners}
    assert {"digit", "percent", "price"} <= kinds
    for sibling in {b.label for b in banners}:
        assert {b.families for b in banners if b.label == sibling and b.families} == set(FORCED_COMBOS)
