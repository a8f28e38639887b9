"""Offline rules on text and pixels (no OCR here: fast)."""

from __future__ import annotations

import numpy as np
import pytest

from adpipeline import geometry
from adpipeline.features import offline, schema


def _kinds(text: str) -> list[str]:
    return [p["kind"] for p in offline.find_promotions(text)]


@pytest.mark.parametrize(
    ("text", "kinds", "percent", "amount"),
    [
        ("SALE -30%\nShop now", ["sale", "percent_off"], 30.0, None),
        ("SALE-30%", ["sale", "percent_off"], 30.0, None),
        ("Up to 50% off everything", ["percent_off"], 50.0, None),
        ("Nur heute: 20% Rabatt", ["limited_time", "percent_off"], 20.0, None),
        ("Save $10 today", ["amount_off"], None, 10.0),
        ("Now only $19.99", ["price"], None, None),
        ("Free shipping on all orders", ["free_shipping"], None, None),
        ("Buy 1 Get 1 free", ["bogo"], None, None),
        ("Limited time offer", ["limited_time"], None, None),
        ("Use code SPRING25 at checkout", ["coupon_code"], None, None),
        ("Start your free 30-day trial", ["free_trial"], None, None),
        ("100% cotton tees", [], None, None),
        ("98% of users agree", [], None, None),
        ("", [], None, None),
    ],
)
def test_promotions(text: str, kinds: list[str], percent: float | None, amount: float | None) -> None:
    found = offline.find_promotions(text)
    assert [p["kind"] for p in found] == kinds
    assert max((p["discount_percent"] for p in found if p["discount_percent"] is not None), default=None) == percent
    assert max((p["discount_amount"] for p in found if p["discount_amount"] is not None), default=None) == amount
    assert {p["kind"] for p in found} <= set(schema.PROMOTION_KINDS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SALE -30%\nshop now", ("shop now", "shop")),
        ("Discover the new collection\nShop now", ("Shop now", "shop")),
        ("Free shipping\nLearn more", ("Learn more", "learn")),
        ("Download the app", ("Download the app", "download")),
        ("Sign up today", ("Sign up", "sign_up")),
        ("Book now and save", ("Book now", "book")),
        ("Jetzt kaufen", ("Jetzt kaufen", "shop")),
        ("Explore the range", ("Explore", "learn")),
        ("Summer collection", None),
    ],
)
def test_call_to_action(text: str, expected: tuple[str, str] | None) -> None:
    assert offline.find_call_to_action(text) == expected
    if expected:
        assert expected[1] in schema.CTA_KINDS


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("SALE -30%\nShop now", "en"),
        ("Nur heute: 20% Rabatt\nJetzt kaufen", "de"),
        ("Livraison gratuite\nAchetez maintenant", "fr"),
        ("Envío gratis\nCompra ahora", "es"),
        ("限时优惠 立即购买", "zh"),
        ("SALE", None),
        ("", None),
    ],
)
def test_language_guess(text: str, language: str | None) -> None:
    assert offline.guess_language(text) == language


def test_palette_names_are_the_schema_colours() -> None:
    assert {name for name, _ in offline._PALETTE} == set(schema.COLOR_NAMES)


def test_dominant_colours_of_a_two_colour_image() -> None:
    image = np.zeros((60, 100, 3), dtype=np.uint8)
    image[:, :70] = (200, 30, 30)
    image[:, 70:] = (255, 255, 255)
    colours = offline.dominant_colors(image)
    assert [(name, hex_) for name, hex_, _ in colours] == [("red", "#c81e1e"), ("white", "#ffffff")]
    assert [share for _, _, share in colours] == pytest.approx([0.7, 0.3])
    assert offline.dominant_colors(image) == colours  # deterministic


def test_pixel_measures() -> None:
    grey = np.full((10, 10, 3), 128, dtype=np.uint8)
    assert offline.brightness(np.zeros((4, 4, 3), dtype=np.uint8)) == 0.0
    assert offline.brightness(np.full((4, 4, 3), 255, dtype=np.uint8)) == pytest.approx(1.0)
    assert offline.colorfulness(grey) == 0.0
    stripes = np.zeros((10, 10, 3), dtype=np.uint8)
    stripes[::2] = (255, 0, 0)
    stripes[1::2] = (0, 0, 255)
    assert offline.colorfulness(stripes) > 80
    assert [geometry.orientation(*wh) for wh in ((1200, 628), (1080, 1920), (1080, 1080), (1000, 1040))] == [
        "landscape",
        "portrait",
        "square",
        "square",
    ]
    assert [geometry.orientation(*wh) for wh in ((104, 100), (100, 104), (106, 100), (100, 106))] == [
        "square",
        "square",
        "landscape",
        "portrait",
    ]


def test_scene_count_from_sampled_frames() -> None:
    red, blue = np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20, 3), np.uint8)
    red[:] = (220, 20, 20)
    blue[:] = (20, 20, 220)
    assert offline._scene_count([red, red, blue, blue, red]) == 3
    assert offline._scene_count([red]) == 1
    assert offline._scene_count([]) == 0


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((0, 0, 255), "blue"),
        ((65, 105, 225), "blue"),
        ((0, 0, 128), "navy"),
        ((220, 20, 60), "red"),
        ((255, 165, 0), "orange"),
        ((255, 215, 0), "yellow"),
        ((34, 139, 34), "green"),
        ((0, 128, 128), "teal"),
        ((128, 0, 128), "purple"),
        ((255, 105, 180), "pink"),
        ((139, 69, 19), "brown"),
        ((245, 245, 220), "beige"),
        ((128, 128, 128), "gray"),
        ((0, 0, 0), "black"),
        ((255, 255, 255), "white"),
    ],
)
def test_colour_names(rgb: tuple[int, int, int], name: str) -> None:
    assert offline.dominant_colors(np.array([[rgb]], dtype=np.uint8))[0][0] == name
