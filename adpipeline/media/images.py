"""Image decoding and facts: a guarded Pillow decode, the 64-bit dHash, geometry and the finer near-duplicate check.

The dHash is exactly ``imagehash.dhash`` of the decoded image (after EXIF orientation and conversion to RGB), so a
hash computed here can be compared with one computed by any other imagehash user. It is stored as a signed INT64 (the
warehouse has no unsigned 64-bit type) and as 16 hex digits.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import re
import struct
import warnings
import zlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from adpipeline import geometry, tables, text_reader
from adpipeline.media.dedupe.thumbnails import DETAIL as FINE_SIZE
from adpipeline.media.dedupe.thumbnails import THUMB_FORMAT
from adpipeline.settings import Settings

_log = logging.getLogger("adpipeline")

# SVG, TIFF, PSD, ICO and the rest are refused: every decoder is attack surface, and ads do not use them.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")

# Magic numbers of the allowed formats, and of image formats we recognise but refuse (named in the status reason).
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
)
_HEIF_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"heim": "HEIC", b"heis": "HEIC", b"mif1": "HEIF", b"msf1": "HEIF"}
_HEIF_BRANDS |= {b"avif": "AVIF", b"avis": "AVIF"}

# Named ad ratios (width / height). A ratio within 3 % of one of these gets its name.
AD_RATIOS: dict[str, float] = {"1:1": 1.0, "4:5": 0.8, "9:16": 9 / 16, "16:9": 16 / 9, "1.91:1": 1.91}
_RATIO_TOLERANCE = 0.03

_BORDER_MAX_SHARE = 0.05  # a frame takes at most this share of a dimension per side
_BORDER_TOLERANCE = 24  # per-channel grey levels from the frame colour (JPEG ringing, resize blur)
_BORDER_FILL = 0.9  # share of a line that must be frame-coloured


class MediaError(Exception):
    """A per-item media problem: ``status`` is the reason code written to the status row, ``reason`` the detail."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class ImageFacts:
    """What one decoded image tells us."""

    dhash: int  # signed int64 (two's complement of the 64-bit hash)
    dhash_hex: str
    width: int
    height: int
    aspect_ratio: float
    orientation: str
    aspect_label: str | None
    image_format: str
    fine_thumb: str
    is_animated: bool
    ocr_text: str | None = None  # not read at analysis: grouping reads it when a pair needs it (read_image_text)

    @property
    def dhash_unsigned(self) -> int:
        return self.dhash & 0xFFFF_FFFF_FFFF_FFFF

    def to_row(self, creative_id: str, sha256: str) -> tables.ImageHash:
        return tables.ImageHash(
            creative_id=creative_id,
            sha256=sha256,
            dhash=self.dhash,
            dhash_hex=self.dhash_hex,
            width=self.width,
            height=self.height,
            aspect_ratio=self.aspect_ratio,
            orientation=self.orientation,
            aspect_label=self.aspect_label,
            image_format=self.image_format,
            fine_thumb=self.fine_thumb,
            is_animated=self.is_animated,
            ocr_text=self.ocr_text,
            thumb_format=THUMB_FORMAT,
        )


def analyse_image(data: bytes, settings: Settings) -> ImageFacts:
    """Decode ``data`` safely and compute its facts; raise :class:`MediaError` for anything not a usable image."""
    image, image_format, is_animated = decode_image(data, settings.max_image_pixels)
    width, height = image.size
    gray = image.convert("L")
    value = dhash_int(gray)
    ratio = width / height
    return ImageFacts(
        dhash=to_signed64(value),
        dhash_hex=f"{value:016x}",
        width=width,
        height=height,
        aspect_ratio=round(ratio, 4),
        orientation=geometry.orientation(width, height),
        aspect_label=aspect_label_of(width, height),
        image_format=image_format,
        fine_thumb=fine_thumb_b64(image),
        is_animated=is_animated,
    )


def read_image_text(data: bytes, settings: Settings) -> str | None:
    """The whole image's text record (:func:`adpipeline.text_reader.read_text`, at its ``READ_MAX_SIDE``), read when a
    candidate pair needs it or by the offline extractor, and stored in ``image_hashes.ocr_text`` so no image is read
    twice. An unusable image or an OCR failure gives ``None`` (no text evidence) rather than failing a grouping run."""
    try:
        image, _, _ = decode_image(data, settings.max_image_pixels)
    except MediaError as exc:
        _log.warning("no text for the duplicate check: %s", exc.status)
        return None
    try:
        return text_reader.read_text(np.asarray(image), threads=settings.ocr_threads)
    except Exception as exc:  # noqa: BLE001 - the OCR engine's errors are not ours to classify; the image stays usable
        _log.warning("OCR failed, no text for the duplicate check: %s", type(exc).__name__)
        return None


def read_image_texts(blobs: Mapping[str, bytes], settings: Settings) -> dict[str, str | None]:
    """:func:`read_image_text` for several images, one per core at a time (threads: onnxruntime releases the GIL
    while it runs; with ``ocr_threads`` 1, two images at once take 0.42 s each against 0.63-0.74 s one after another on
    2 cores, ``bench/bench_media_stage.py``). With ``ocr_threads`` other than 1 the engine already spreads one image
    over the cores, and images are read one after another."""
    if settings.ocr_threads != 1 or len(blobs) < 2:
        return {key: read_image_text(data, settings) for key, data in blobs.items()}
    workers = min(len(blobs), len(os.sched_getaffinity(0)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocr") as pool:
        texts = pool.map(lambda data: read_image_text(data, settings), blobs.values())
        return dict(zip(blobs, texts, strict=True))


def sniff_image_format(head: bytes) -> str | None:
    """The image format the first bytes announce (allowed or not: ``TIFF``, ``SVG``, ``HEIC`` ...), else None.

    Only magic numbers are read, no decoder runs; :data:`ALLOWED_FORMATS` says which ones are decoded.
    """
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return _HEIF_BRANDS[head[8:12]]
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "SVG"
    return None


def unsupported_reason(image_format: str) -> str:
    return f"{image_format} is not supported (allowed: {', '.join(ALLOWED_FORMATS)})"


def decode_image(data: bytes, max_pixels: int) -> tuple[Image.Image, str, bool]:
    """Open with the format allow-list and pixel cap; return an oriented 8-bit RGB image, its format, is-animated."""
    if not data:
        raise MediaError("empty", "zero bytes")
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb guard warns between its limit and twice it; our cap below is the one that decides.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            image_format = str(image.format)
            width, height = image.size
            if width <= 0 or height <= 0:
                raise MediaError("corrupt", f"image has size {width}x{height}")
            if width * height > max_pixels:
                raise MediaError("too_many_pixels", _pixels_reason(f"{width}x{height}", max_pixels))
            is_animated = bool(getattr(image, "is_animated", False))
            if is_animated:
                image.seek(0)
            image.load()
            oriented: Image.Image = ImageOps.exif_transpose(image)
            return to_rgb(oriented), image_format, is_animated
    except MediaError:
        raise
    except UnidentifiedImageError as exc:
        sniffed = sniff_image_format(data[:64])
        if sniffed is None:
            raise MediaError("not_an_image", f"not a {'/'.join(ALLOWED_FORMATS)} image") from exc
        if sniffed not in ALLOWED_FORMATS:
            raise MediaError("unsupported_format", unsupported_reason(sniffed)) from exc
        raise MediaError("corrupt", f"starts like {sniffed} but its header does not parse") from exc
    except Image.DecompressionBombError as exc:
        # Pillow's own guard (twice its MAX_IMAGE_PIXELS) fired before ours; report our cap, the one a user sets.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = found.group(1) if found else "the image"
        raise MediaError("too_many_pixels", _pixels_reason(size, max_pixels)) from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as exc:
        # Pillow reports truncated and malformed files with these; anything else is a bug and should surface.
        raise MediaError("corrupt", f"{type(exc).__name__}: {exc}") from exc


def _pixels_reason(size: str, max_pixels: int) -> str:
    return f"{size} pixels is over the cap of {max_pixels:,} (ADP_MAX_IMAGE_PIXELS)"


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB whatever came in: CMYK and YCbCr converted, 16-bit scaled down, transparency flattened on white."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array * (255.0 / top), 0, 255).round().astype(np.uint8))
    elif mode == "F":
        array = np.nan_to_num(np.asarray(image, dtype=np.float64))
        image = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
    if image.mode == "P" or image.mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode != "RGB":
        return image.convert("RGB")
    return image


def dhash_int(gray: Image.Image, hash_size: int = 8) -> int:
    """Unsigned dHash, bit for bit ``imagehash.dhash``: LANCZOS to (size+1) x size, left < right, first pixel = MSB."""
    pixels = np.asarray(gray.resize((hash_size + 1, hash_size), Image.Resampling.LANCZOS), dtype=np.int16)
    bits = (pixels[:, 1:] > pixels[:, :-1]).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def frame_box(rgb: np.ndarray) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of the image inside any added frame (uniform border), else the whole image.

    A frame is a band of one colour on all four sides (every line at least 90 % within 24 grey levels of the colour
    of the outer ring). Nested frames (a black border around a white margin) are peeled in turn, at most 5 % of a
    dimension per side in all, so an original with a plain background and its bordered copy end up alike. Gradient
    backgrounds are not frames (their sides differ in colour).
    """
    height, width = rgb.shape[:2]
    cap_y, cap_x = int(height * _BORDER_MAX_SHARE), int(width * _BORDER_MAX_SHARE)
    top, bottom, left, right = 0, height, 0, width
    if min(cap_x, cap_y) < 1:
        return left, top, right, bottom
    for _ in range(3):
        ring = np.concatenate(
            [rgb[top, left:right], rgb[bottom - 1, left:right], rgb[top:bottom, left], rgb[top:bottom, right - 1]]
        )
        colour = np.median(ring, axis=0).astype(np.int16)

        def run(band: np.ndarray, axis: int, limit: int, colour: np.ndarray = colour) -> int:
            close = (np.abs(band.astype(np.int16) - colour).max(axis=2) <= _BORDER_TOLERANCE).mean(axis=axis)
            bad = np.flatnonzero(close < _BORDER_FILL)
            return min(int(bad[0]) if len(bad) else len(close), limit)

        t = run(rgb[top : top + cap_y - top, left:right], 1, cap_y - top) if top < cap_y else 0
        b = run(rgb[bottom - 1 : height - cap_y - 1 : -1, left:right], 1, bottom - (height - cap_y))
        lft = run(rgb[top:bottom, left:cap_x], 0, cap_x - left) if left < cap_x else 0
        r = run(rgb[top:bottom, right - 1 : width - cap_x - 1 : -1], 0, right - (width - cap_x))
        if min(t, b, lft, r) == 0:  # a frame goes all the way round
            break
        top, bottom, left, right = top + t, bottom - b, left + lft, right - r
    return left, top, right, bottom


def fine_thumb_b64(image: Image.Image) -> str:
    """The finer check's data: the image inside any frame (:func:`frame_box`), as a 128 x 128 luma and 64 x 64 Cb/Cr
    area-averaged thumbnail (24,576 bytes), zlib-compressed and base64-encoded (about 5 KB on average).

    dHash at 8 x 8 cannot see a changed price or headline; :mod:`adpipeline.media.dedupe` aligns two of these
    thumbnails (undoing a small crop or what is left of a border) and compares them block by block, first at 64 px
    (2 x 2 averages of these planes) and then at full size with local-contrast normalisation.
    """
    rgb = image.convert("RGB")
    box = frame_box(np.asarray(rgb))
    inner = rgb.crop(box) if box != (0, 0, rgb.width, rgb.height) else rgb
    luma = inner.convert("L").resize((FINE_SIZE, FINE_SIZE), Image.Resampling.BOX)
    chroma = inner.convert("YCbCr").resize((FINE_SIZE // 2, FINE_SIZE // 2), Image.Resampling.BOX)
    planes = [np.asarray(luma, dtype=np.uint8)] + [np.asarray(chroma, dtype=np.uint8)[..., c] for c in (1, 2)]
    raw = b"".join(plane.tobytes() for plane in planes)
    return base64.b64encode(zlib.compress(raw, 9)).decode("ascii")


def to_signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def to_unsigned64(value: int) -> int:
    return value & 0xFFFF_FFFF_FFFF_FFFF


def aspect_label_of(width: int, height: int) -> str | None:
    """The named ad ratio this size is closest to, within 3 %, else ``None``."""
    ratio = width / height
    name, target = min(AD_RATIOS.items(), key=lambda item: abs(item[1] - ratio) / item[1])
    return name if abs(target - ratio) / target <= _RATIO_TOLERANCE else None
