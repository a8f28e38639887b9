"""The offline feature extractor: the embedded default, no key and no network.

It answers only what it can measure: OCR text (rapidocr, whose ONNX models ship in its wheel), promotions and calls
to action found in that text by rules, a language guess, dominant colours, brightness, colourfulness and layout
facts; for videos also a scene count from sampled frames and on-screen text over time. Everything else (product,
brands, style, people, ...) stays null. Faces are counted only when a ``face_counter`` is passed in.

Per-item failures come back as rows with ``status`` ``corrupt`` (undecodable media) or ``failed`` (and a reason).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from adpipeline import geometry, tables, text_reader
from adpipeline.features import schema
from adpipeline.settings import Settings, get_settings

OFFLINE_VERSION = (
    "offline-v3"  # v2: face_count from the face engine; v3: images read once, at text_reader.READ_MAX_SIDE
)
"""Bump when a rule or threshold here changes: it is part of ``model`` and so of the features cache key."""

FaceCounter = Callable[[np.ndarray], int]
"""Counts faces in an RGB ``uint8`` array (H, W, 3); passed in so this module does not depend on the face backend."""


# --- rules on text: promotions, call to action, language ------------------------------------------------------
_CURRENCY = r"[$€£¥]"
_AMOUNT = r"\d{1,6}(?:[.,]\d{1,2})?"


def _number(text: str) -> float:
    return float(text.replace(",", "."))


_PERCENT = re.compile(r"(?<![\d.,])(\d{1,2}(?:[.,]\d)?)\s?%", re.IGNORECASE)
_PERCENT_AFTER = re.compile(
    r"^\s*(?:off|discount|rabatt|reduziert|de\s+(?:descuento|r[ée]duction|remise|desconto)|descuento|desconto|"
    r"sconto|korting|remise)",
    re.IGNORECASE,
)
_PERCENT_BEFORE = re.compile(
    r"(?:[-−–]\s?|save\s+|up\s*to\s+|extra\s+|get\s+|sale\s*|bis\s*zu\s+|jusqu.?[àa]\s+|hasta\s+(?:un\s+)?|"
    r"fino\s*al\s+|at[ée]\s+|tot\s+|minus\s+)$",
    re.IGNORECASE,
)
_SALE_WORDS = re.compile(
    r"\b(?:sale|deal|deals|discount|off|rabatt|soldes|rebajas|saldi|promo|promoci[oó]n|angebot|korting|outlet|"
    r"clearance)\b",
    re.IGNORECASE,
)
_PROMOTION_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "amount_off",
        re.compile(
            rf"(?:save|get)\s*(?P<cur>{_CURRENCY})\s?(?P<amount>{_AMOUNT})(?:\s*off)?|"
            rf"(?P<cur2>{_CURRENCY})\s?(?P<amount2>{_AMOUNT})\s*off\b|"
            rf"(?P<amount3>{_AMOUNT})\s?(?:€|eur\b|£|\$)\s*(?:off\b|rabatt\b|de\s+descuento)",
            re.IGNORECASE,
        ),
    ),
    ("price", re.compile(rf"{_CURRENCY}\s?{_AMOUNT}(?!\s?%)|\b{_AMOUNT}\s?(?:€|£|eur\b|usd\b|gbp\b)", re.IGNORECASE)),
    (
        "free_shipping",
        re.compile(
            r"free\s*(?:shipping|delivery|returns)|livraison\s*(?:offerte|gratuite)|env[ií]o\s*gratis|"
            r"(?:kostenloser|gratis)\s*versand|versandkostenfrei|spedizione\s*gratuita|frete\s*gr[aá]tis|"
            r"gratis\s*verzending",
            re.IGNORECASE,
        ),
    ),
    (
        "bogo",
        re.compile(
            r"\bbogo\b|buy\s*(?:one|1)\s*,?\s*get\s*(?:one|1)|\b[23]\s*(?:for|x|für|pour|por)\s*[12]\b|"
            r"\b2\s*\+\s*1\b",
            re.IGNORECASE,
        ),
    ),
    (
        "limited_time",
        re.compile(
            r"limited[\s-]*time|today\s*only|this\s*week(?:end)?\s*only|ends\s*(?:today|tonight|soon|sunday|monday|"
            r"midnight)|last\s*chance|\d+\s*(?:hours?|days?)\s*(?:only|left)|flash\s*sale|while\s*(?:stocks?|supplies)"
            r"\s*last|nur\s*heute|nur\s*f[üu]r\s*kurze\s*zeit|solo\s*hoy|aujourd.?hui\s*seulement|offre\s*limit[ée]e|"
            r"oferta\s*limitada|don.?t\s*miss\s*out",
            re.IGNORECASE,
        ),
    ),
    (
        "sale",
        re.compile(
            r"\b(?:sale|clearance|black\s*friday|cyber\s*monday|soldes|rebajas|saldi|schlussverkauf|outlet)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "coupon_code",
        re.compile(r"\b(?:promo|coupon|discount|voucher|gutschein)?\s*code\s*:?\s*[A-Z0-9]{3,15}\b", re.IGNORECASE),
    ),
    (
        "free_trial",
        re.compile(
            r"free\s*(?:\d+[\s-]*(?:day|month|week)s?\s*)?trial|try\s*(?:it\s*)?(?:for\s*)?free|"
            r"kostenlos\s*testen|prueba\s*gratis|essai\s*gratuit",
            re.IGNORECASE,
        ),
    ),
    (
        "free_gift",
        re.compile(
            r"free\s*gift|gift\s*with\s*purchase|gratis\s*geschenk|regalo\s*gratis|cadeau\s*offert", re.IGNORECASE
        ),
    ),
)


def find_promotions(text: str) -> list[dict[str, Any]]:
    """Promotions in ``text`` as ``{kind, discount_percent, discount_amount, text}`` items, in reading order.

    A percentage counts as a discount only in a discount context ('-30%', '30% off', 'up to 30%', or a sale word
    anywhere in the text), so '100% cotton' is not a promotion.
    """
    flat = " ".join(text.split())
    found: list[tuple[int, dict[str, Any]]] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    sale_context = bool(_SALE_WORDS.search(flat))
    for match in _PERCENT.finditer(flat):
        before, after = flat[max(0, match.start() - 12) : match.start()], flat[match.end() :]
        prefix = _PERCENT_BEFORE.search(before)
        suffix = _PERCENT_AFTER.match(after)
        if not (prefix or suffix or sale_context):
            continue
        start = prefix.start() + max(0, match.start() - 12) if prefix else match.start()
        end = match.end() + (suffix.end() if suffix else 0)
        taken.append((start, end))
        value = _number(match.group(1))
        found.append(
            (
                start,
                {
                    "kind": "percent_off",
                    "discount_percent": value,
                    "discount_amount": None,
                    "text": flat[start:end].strip(),
                },
            )
        )
    for kind, pattern in _PROMOTION_RULES:
        for match in pattern.finditer(flat):
            if not free(match.start(), match.end()):
                continue
            taken.append((match.start(), match.end()))
            amount = None
            if kind == "amount_off":
                amount = _number(next(g for g in match.group("amount", "amount2", "amount3") if g))
            found.append(
                (
                    match.start(),
                    {"kind": kind, "discount_percent": None, "discount_amount": amount, "text": match.group(0).strip()},
                )
            )
    found.sort(key=lambda item: item[0])
    return [item for _, item in found]


# Strong phrases are button-like; weak verbs also occur in headlines ("Discover the new ..."), so a strong match
# wins. Among matches of one strength the last in reading order wins: buttons sit at the bottom or end.
_CTA_RULES: tuple[tuple[str, bool, str], ...] = (
    (
        "shop",
        True,
        r"shop\s*(?:now|today|online|the\s*\w+)|buy\s*(?:now|today|online)|order\s*(?:now|today|online)|"
        r"add\s*to\s*(?:cart|bag|basket)|get\s*yours|jetzt\s*(?:kaufen|shoppen|bestellen)|"
        r"compra\s*(?:ya|ahora)|comprar\s*ahora|achetez|acheter\s*maintenant|acquista\s*ora|"
        r"compre\s*(?:j[aá]|agora)|koop\s*nu|bestel\s*nu",
    ),
    (
        "learn",
        True,
        r"learn\s*more|find\s*out\s*more|read\s*more|see\s*more|discover\s*more|more\s*info|"
        r"mehr\s*erfahren|m[aá]s\s*informaci[oó]n|en\s*savoir\s*plus|scopri\s*di\s*pi[uù]|saiba\s*mais|"
        r"meer\s*info",
    ),
    (
        "sign_up",
        True,
        r"sign\s*up|register\s*(?:now|today|here)?|subscribe|join\s*(?:now|today|free|us)|"
        r"get\s*started|create\s*(?:an\s*)?account|jetzt\s*anmelden|reg[ií]strate|inscrivez",
    ),
    (
        "download",
        True,
        r"download\s*(?:now|the\s*app|free|today|it)?|install\s*(?:now|the\s*app|free)?|get\s*(?:it\s*on|the\s*app)|app\s*store|"
        r"google\s*play",
    ),
    (
        "book",
        True,
        r"book\s*(?:now|today|online|a\s*\w+)|reserve\s*(?:now|today|your)|schedule\s*(?:now|a\s*\w+)|"
        r"jetzt\s*buchen|reserva\s*(?:ya|ahora)",
    ),
    (
        "contact",
        True,
        r"call\s*(?:now|today|us)|contact\s*us|get\s*(?:a\s*)?(?:free\s*)?quote|request\s*a\s*\w+|"
        r"message\s*us",
    ),
    ("watch", True, r"watch\s*(?:now|more|the\s*\w+|today)|stream\s*now"),
    ("play", True, r"play\s*(?:now|free|for\s*free|today)"),
    ("apply", True, r"apply\s*(?:now|today|online)"),
    (
        "get_offer",
        True,
        r"get\s*(?:the\s*)?(?:offer|deal)|claim\s*(?:now|your\s*\w+|offer)|redeem\s*now|"
        r"use\s*code",
    ),
    ("donate", True, r"donate\s*(?:now|today)?"),
    ("visit", True, r"visit\s*(?:us|our\s*\w+|now|today)|find\s*a\s*store|store\s*locator"),
    ("shop", False, r"\bshop\b|\bbuy\b|\border\b|kaufen|comprar"),
    ("learn", False, r"\bdiscover\b|\bexplore\b|entdecken|descubre|d[ée]couvrez|scopri"),
    ("sign_up", False, r"\bjoin\b|\bregister\b"),
    ("visit", False, r"\bvisit\b"),
    ("play", False, r"\bplay\b"),
)
_CTA_PATTERNS = tuple((kind, strong, re.compile(rf"(?<!\w){rx}", re.IGNORECASE)) for kind, strong, rx in _CTA_RULES)


def find_call_to_action(text: str) -> tuple[str, str] | None:
    """The call to action in ``text`` as ``(text as written, kind)``, or None."""
    flat = " ".join(text.split())
    best: tuple[bool, int, str, str] | None = None
    for kind, strong, pattern in _CTA_PATTERNS:
        for match in pattern.finditer(flat):
            candidate = (strong, match.start(), match.group(0).strip(), kind)
            if best is None or candidate[:2] > best[:2]:
                best = candidate
    return (best[2], best[3]) if best else None


_LANGUAGE_WORDS: dict[str, frozenset[str]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": "the and for you your with now new shop buy get free off sale more learn today only all our order "
        "sign up download save shipping best offer limited time here of to in on is at this from just "
        "discover deal deals when what",
        "de": "der die das und mit für fur jetzt nur heute kaufen neu neue rabatt versand kostenlos kostenloser "
        "mehr erfahren bis zu angebot sie ihr ihre entdecken bestellen auf im ein eine von ist",
        "fr": "le la les et pour avec vous votre vos nos des du une un achetez acheter livraison gratuite offre "
        "plus savoir découvrez decouvrez maintenant sur soldes jusqu aujourd hui est",
        "es": "el la los las y para con tu tus su ahora compra comprar envío envio gratis oferta más mas "
        "descubre hoy solo hasta descuento rebajas del por una un es",
        "it": "il lo gli e per con tuo tua ora acquista spedizione gratuita offerta scopri di più piu oggi solo "
        "fino al sconto saldi della nuovo nuova è",
        "pt": "o os e para com seu sua agora compre frete grátis oferta saiba mais hoje só até ate desconto do "
        "da em um uma novo nova",
        "nl": "de het een en voor met jouw je nu koop bestel gratis verzending aanbieding meer ontdek vandaag "
        "alleen tot korting van op",
    }.items()
}


def guess_language(text: str) -> str | None:
    """ISO 639-1 guess from script and common (ad) words; None when the text is too short to tell."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return None
    kana = sum("\u3040" <= c <= "\u30ff" for c in letters)
    hangul = sum("\uac00" <= c <= "\ud7af" for c in letters)
    han = sum("\u4e00" <= c <= "\u9fff" for c in letters)
    if (kana + hangul + han) * 2 > len(letters):
        return "ja" if kana else "ko" if hangul > han else "zh"
    words = re.findall(r"[^\W\d_]+", text.lower())
    scores = sorted(((sum(w in vocab for w in words), lang) for lang, vocab in _LANGUAGE_WORDS.items()), reverse=True)
    (top, lang), (second, _) = scores[0], scores[1]
    return lang if top >= 2 and top > second else None


# --- pixels: colours, brightness, colourfulness --------------------------------------------------------------
_PALETTE: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("black", (0, 0, 0)),
    ("black", (28, 28, 28)),
    ("gray", (85, 85, 85)),
    ("gray", (128, 128, 128)),
    ("gray", (175, 175, 175)),
    ("white", (255, 255, 255)),
    ("white", (232, 232, 232)),
    ("red", (220, 20, 30)),
    ("red", (180, 0, 0)),
    ("red", (128, 0, 0)),
    ("red", (255, 70, 70)),
    ("orange", (255, 140, 0)),
    ("orange", (240, 100, 20)),
    ("yellow", (255, 220, 0)),
    ("yellow", (255, 255, 90)),
    ("green", (0, 160, 0)),
    ("green", (60, 180, 75)),
    ("green", (0, 100, 0)),
    ("green", (150, 220, 100)),
    ("teal", (0, 128, 128)),
    ("teal", (0, 180, 170)),
    ("blue", (0, 0, 255)),
    ("blue", (0, 60, 200)),
    ("blue", (30, 90, 230)),
    ("blue", (0, 120, 255)),
    ("blue", (100, 170, 240)),
    ("navy", (0, 0, 128)),
    ("navy", (20, 30, 80)),
    ("purple", (128, 0, 128)),
    ("purple", (75, 0, 130)),
    ("purple", (120, 60, 200)),
    ("purple", (180, 130, 220)),
    ("pink", (255, 105, 180)),
    ("pink", (255, 0, 255)),
    ("pink", (255, 182, 200)),
    ("pink", (230, 0, 120)),
    ("brown", (140, 80, 30)),
    ("brown", (100, 60, 30)),
    ("brown", (180, 120, 70)),
    ("beige", (235, 215, 180)),
    ("beige", (210, 190, 150)),
)


def _lab(rgb: np.ndarray) -> np.ndarray:
    import cv2

    flat = np.asarray(rgb, dtype=np.float32).reshape(-1, 1, 3) / 255.0
    return cv2.cvtColor(flat, cv2.COLOR_RGB2LAB).reshape(-1, 3)


_PALETTE_LAB: np.ndarray | None = None


def _palette_lab() -> np.ndarray:
    global _PALETTE_LAB
    if _PALETTE_LAB is None:
        _PALETTE_LAB = _lab(np.array([rgb for _, rgb in _PALETTE], dtype=np.uint8))
    return _PALETTE_LAB


def dominant_colors(
    pixels: np.ndarray, *, k: int = 6, min_share: float = 0.05, top: int = 5, max_pixels: int = 16384
) -> list[tuple[str, str, float]]:
    """``(name, hex, share)`` of the dominant colours of RGB ``pixels`` (any shape ending in 3), most common first.

    Deterministic k-means in CIELAB (seeded from the most populated coarse colour bins); clusters are named by
    the nearest palette colour, same-named clusters merged, and the hex is the mean colour of their pixels.
    """
    rgb = np.asarray(pixels, dtype=np.uint8).reshape(-1, 3)
    if len(rgb) == 0:
        return []
    if len(rgb) > max_pixels:  # a fixed seed keeps the sample, and so the answer, deterministic
        rgb = rgb[np.sort(np.random.default_rng(0).choice(len(rgb), max_pixels, replace=False))]
    lab = _lab(rgb)
    bins = np.floor(lab / np.array([10.0, 16.0, 16.0])).astype(np.int64) + np.array([0, 16, 16])
    keys = (bins[:, 0] * 64 + bins[:, 1]) * 64 + bins[:, 2]
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    centres: list[np.ndarray] = []
    for index in np.argsort(-counts, kind="stable")[:256]:
        centre = lab[inverse == index].mean(axis=0)
        if all(np.linalg.norm(centre - c) > 12 for c in centres):
            centres.append(centre)
        if len(centres) == k:
            break
    centre_arr = np.array(centres)
    for _ in range(8):
        labels = np.argmin(((lab[:, None, :] - centre_arr[None]) ** 2).sum(axis=2), axis=1)
        for j in range(len(centre_arr)):
            members = lab[labels == j]
            if len(members):
                centre_arr[j] = members.mean(axis=0)
    labels = np.argmin(((lab[:, None, :] - centre_arr[None]) ** 2).sum(axis=2), axis=1)
    palette = _palette_lab()
    names = [_PALETTE[int(np.argmin(((palette - c) ** 2).sum(axis=1)))][0] for c in centre_arr]
    merged: dict[str, np.ndarray] = {}
    for j, name in enumerate(names):
        mask = labels == j
        merged[name] = mask if name not in merged else merged[name] | mask
    out = []
    for name, mask in merged.items():
        share = float(mask.mean())
        mean = rgb[mask].mean(axis=0) if mask.any() else np.zeros(3)
        out.append((name, "#{:02x}{:02x}{:02x}".format(*(int(round(v)) for v in mean)), round(share, 4)))
    out.sort(key=lambda item: -item[2])
    return [item for i, item in enumerate(out) if i == 0 or item[2] >= min_share][:top]


def brightness(rgb: np.ndarray) -> float:
    """Mean Rec. 601 luma, 0-1."""
    pixels = np.asarray(rgb, dtype=np.float32).reshape(-1, 3)
    return round(float((pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).mean() / 255.0), 4)


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness M3 on 0-255 RGB."""
    pixels = np.asarray(rgb, dtype=np.float32).reshape(-1, 3)
    rg = pixels[:, 0] - pixels[:, 1]
    yb = 0.5 * (pixels[:, 0] + pixels[:, 1]) - pixels[:, 2]
    value = math.hypot(float(rg.std()), float(yb.std())) + 0.3 * math.hypot(float(rg.mean()), float(yb.mean()))
    return round(value, 2)


def _thumbnail(rgb: np.ndarray, side: int = 96) -> np.ndarray:
    import cv2

    height, width = rgb.shape[:2]
    scale = min(1.0, side / max(height, width))
    if scale == 1.0:
        return rgb
    return cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)


def _color_values(pixels: np.ndarray) -> dict[str, Any]:
    colors = dominant_colors(pixels)
    return {
        "dominant_colors": [name for name, _, _ in colors],
        "dominant_colors_hex": [hex_ for _, hex_, _ in colors],
        "brightness": brightness(pixels),
        "colorfulness": colorfulness(pixels),
    }


def _text_values(text: str | None, confidence: float | None) -> dict[str, Any]:
    """Text-derived features; ``text`` None means OCR did not run, so they stay unknown."""
    if text is None:
        return {}
    cta = find_call_to_action(text)
    return {
        "has_text": bool(text),
        "text": text or None,
        "language": guess_language(text),
        "promotions": find_promotions(text),
        "call_to_action": cta[0] if cta else None,
        "cta_kind": cta[1] if cta else None,
        "ocr_confidence": confidence,
    }


# --- video sampling -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SampledFrame:
    """A sampled frame: a thumbnail for colours and cuts, and the OCR-sized image only where OCR will run."""

    time_s: float
    small: np.ndarray
    full: np.ndarray | None = None


def _spread(count: int, wanted: int) -> list[int]:
    """``wanted`` indices spread over ``range(count)``, first and last included."""
    if count <= 0 or wanted <= 0:
        return []
    return sorted({round(i * (count - 1) / max(wanted - 1, 1)) for i in range(wanted)})


def _scene_count(frames: Sequence[np.ndarray], threshold: float = 0.45) -> int:
    """1 + the number of consecutive sampled frames whose HSV histograms differ (Bhattacharyya distance)."""
    import cv2

    if not frames:
        return 0
    hists = []
    for rgb in frames:
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, [16, 4, 4], [0, 180, 0, 256, 0, 256])
        hists.append(cv2.normalize(hist, hist).flatten())
    cuts = sum(
        cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA) > threshold for a, b in zip(hists, hists[1:], strict=False)
    )
    return 1 + int(cuts)


# --- the extractor ---------------------------------------------------------------------------------------------
def _rapidocr_version() -> str:
    try:
        return version("rapidocr-onnxruntime")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


class MediaError(Exception):
    """The media cannot be used: ``status`` is ``corrupt`` (undecodable) or ``failed`` (rejected, missing)."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class OfflineExtractor:
    """Offline features for images and videos. Rows say ``provider="offline"``; unknown fields stay null.

    ``face_counter`` (optional) counts faces in an RGB array; without it ``face_count`` stays null.
    """

    name = schema.OFFLINE
    prompt_version = schema.PROMPT_VERSION

    def __init__(self, settings: Settings | None = None, *, face_counter: FaceCounter | None = None) -> None:
        self.settings = settings or get_settings()
        self.face_counter = face_counter
        self.texts_read: dict[str, str] = {}  # creative id -> text record this extractor read (images)
        ocr = f"rapidocr-{_rapidocr_version()}" if self.settings.ocr_enabled else "no-ocr"
        self.model = f"{OFFLINE_VERSION}+{ocr}"

    # --- images -------------------------------------------------------------------------------------------
    def extract_image(self, data: bytes, creative_id: str, *, ocr_text: str | None = None) -> tables.ImageFeatureRow:
        """Features of one image from its bytes; a ``corrupt``/``failed`` status row instead of raising.

        ``ocr_text``: the image's stored text record (``image_hashes.ocr_text``, read by grouping), used instead of
        reading again; without it the image is read at ``text_reader.READ_MAX_SIDE`` (the one resolution of a stored
        whole-image read) and the record is kept in :attr:`texts_read` for the caller to store."""
        try:
            rgb = self._decode_image(data)
        except MediaError as exc:
            return schema.status_row("image", status=exc.status, reason=exc.reason, **self._meta(creative_id))
        height, width = rgb.shape[:2]
        values: dict[str, Any] = {"orientation": geometry.orientation(width, height), **_color_values(_thumbnail(rgb))}
        if self.settings.ocr_enabled:
            if ocr_text is not None:
                ocr = text_reader.ocr_result(ocr_text, width, height)
            else:
                try:
                    ocr = text_reader.run_ocr(
                        rgb, max_side=text_reader.READ_MAX_SIDE, threads=self.settings.ocr_threads
                    )
                except (RuntimeError, ValueError, MemoryError) as exc:  # onnxruntime errors subclass RuntimeError
                    reason = f"ocr: {type(exc).__name__}: {exc}"
                    return schema.status_row("image", status="failed", reason=reason, **self._meta(creative_id))
                ocr_text = self.texts_read[creative_id] = text_reader.ocr_record(ocr)
                # features from the stored form, whoever read it first: the same row either way (boxes are rounded)
                ocr = text_reader.ocr_result(ocr_text, width, height)
            values.update(_text_values(ocr.text, ocr.confidence))
            values["text_area_share"] = ocr.area_share
            values["text_position"] = ocr.position
        if self.face_counter is not None:
            values["face_count"] = int(self.face_counter(rgb))
        return schema.to_row("image", values, **self._meta(creative_id))

    def _decode_image(self, data: bytes) -> np.ndarray:
        from PIL import Image, ImageOps, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as opened:
                if opened.width * opened.height > self.settings.max_image_pixels:
                    size = f"{opened.width}x{opened.height}"
                    raise MediaError("failed", f"image has {size} pixels, over max_image_pixels")
                opened.load()
                image: Image.Image = ImageOps.exif_transpose(opened) or opened
                if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                    # Transparent areas read as white, as an ad is usually shown on a white page.
                    rgba = image.convert("RGBA")
                    image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
                return np.asarray(image.convert("RGB"))
        except UnidentifiedImageError as exc:
            raise MediaError("corrupt", "not a recognised image format") from exc
        except Image.DecompressionBombError as exc:
            raise MediaError("failed", f"DecompressionBombError: {exc}") from exc
        except (OSError, ValueError, SyntaxError) as exc:  # truncated or malformed data
            raise MediaError("corrupt", f"{type(exc).__name__}: {exc}") from exc

    # --- videos -------------------------------------------------------------------------------------------
    def extract_video(self, path: str, creative_id: str, *, has_audio: bool | None = None) -> tables.VideoFeatureRow:
        """Features of one video file from a few sampled frames (seeks; never decodes the whole file)."""
        try:
            frames = self._sample_video(path)
        except MediaError as exc:
            return schema.status_row("video", status=exc.status, reason=exc.reason, **self._meta(creative_id))
        small = [f.small for f in frames]
        height, width = small[0].shape[:2]
        values: dict[str, Any] = {
            "orientation": geometry.orientation(width, height),
            "scene_count": _scene_count(small),
            "has_audio": has_audio,
            **_color_values(np.concatenate([s.reshape(-1, 3) for s in small])),
        }
        if self.settings.ocr_enabled and self.settings.offline_video_ocr_frames > 0:
            try:
                values.update(self._video_text(frames))
            except (RuntimeError, ValueError, MemoryError) as exc:
                reason = f"ocr: {type(exc).__name__}: {exc}"
                return schema.status_row("video", status="failed", reason=reason, **self._meta(creative_id))
        return schema.to_row("video", values, **self._meta(creative_id))

    def _video_text(self, frames: Sequence[SampledFrame]) -> dict[str, Any]:
        timeline: list[dict[str, Any]] = []
        scores: list[float] = []
        seen_lines: dict[str, None] = {}
        for frame in frames:
            if frame.full is None:
                continue
            ocr = text_reader.run_ocr(
                frame.full, max_side=self.settings.ocr_max_side_px, threads=self.settings.ocr_threads
            )
            scores.extend(ln.score for ln in ocr.lines)
            text = ocr.text
            if text and (not timeline or timeline[-1]["text"] != text):
                timeline.append({"time_s": round(frame.time_s, 2), "text": text})
            seen_lines.update(dict.fromkeys(text.splitlines()))
        combined = "\n".join(seen_lines)
        confidence = round(float(np.mean(scores)), 4) if scores else None
        return {**_text_values(combined, confidence), "on_screen_text": timeline}

    def _sample_video(self, path: str) -> list[SampledFrame]:
        import av

        try:
            container = av.open(path)
        except FileNotFoundError as exc:
            raise MediaError("failed", f"missing file: {path}") from exc
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise MediaError("corrupt", f"{type(exc).__name__}: {exc}") from exc
        with container:
            if not container.streams.video:
                raise MediaError("corrupt", "no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / av.time_base
            try:
                frames = self._decode_samples(container, stream, duration)
            except (av.error.FFmpegError, ValueError) as exc:
                raise MediaError("corrupt", f"{type(exc).__name__}: {exc}") from exc
        if not frames:
            raise MediaError("corrupt", "no decodable frames")
        return frames

    def _decode_samples(self, container: Any, stream: Any, duration: float | None) -> list[SampledFrame]:
        """Frames nearest to evenly spaced targets, seeking to each target's keyframe when it is far ahead."""
        max_frames = self.settings.offline_video_max_frames
        fps = self.settings.offline_video_sample_fps
        if duration and duration > 0:
            n = max(1, min(max_frames, math.floor(duration * fps)))
            targets = [(i + 0.5) * duration / n for i in range(n)]
        else:  # unknown duration: walk from the start at the sample rate
            targets = [(i + 0.5) / fps for i in range(max_frames)]
        width, height = stream.codec_context.width or 0, stream.codec_context.height or 0

        def size(max_side: int) -> dict[str, int]:
            scale = min(1.0, max_side / max(width, height, 1))
            return {"width": max(2, round(width * scale)), "height": max(2, round(height * scale))} if scale < 1 else {}

        small_size, full_size = size(96), size(self.settings.ocr_max_side_px)
        # OCR frames spread over the video, the last included (end cards carry the offer and the call to action).
        ocr_at = set(_spread(len(targets), self.settings.offline_video_ocr_frames if self.settings.ocr_enabled else 0))
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0

        frames: list[SampledFrame] = []
        decoder = None
        previous: float | None = None
        seek_helps = duration is not None
        for target in targets:  # frames are converted to RGB only when picked, at the sizes they are used at
            reseek = decoder is None or (seek_helps and previous is not None and target - previous > 2.0)
            if reseek:
                if target > 1.0:
                    container.seek(int((start + target) / stream.time_base), stream=stream)
                decoder = container.decode(stream)
            assert decoder is not None
            picked = None
            for position, frame in enumerate(decoder):
                time_s = (float(frame.pts * stream.time_base) if frame.pts is not None else 0.0) - start
                if reseek and position == 0 and previous is not None and time_s <= previous:
                    seek_helps = False  # the keyframe lies behind what we had (long GOP): just decode forward
                if time_s >= target - 0.5 / fps:
                    full = frame.to_ndarray(format="rgb24", **full_size) if len(frames) in ocr_at else None
                    picked = SampledFrame(time_s, frame.to_ndarray(format="rgb24", **small_size), full)
                    break
            if picked is None:
                break  # end of stream
            frames.append(picked)
            previous = picked.time_s
        return frames

    def _meta(self, creative_id: str) -> dict[str, str]:
        return {"creative_id": creative_id, "provider": self.name, "model": self.model}
