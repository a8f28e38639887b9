"""Image decoding and facts: a guarded Pillow decode, the 64-bit dHash, geometry and the finer near-duplicate check.

The dHash is exactly ``imagehash.dhash`` of the decoded image (after EXIF orientation and conversion to RGB), so a
hash computed here can be compared with one computed by any other imagehash user. It is stored as a signed INT64 (the
warehouse has no unsigned 64-bit type) and as 16 hex digits.
"""

from __future__ import annotations

import base64
import io
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from adpipeline import tables
from adpipeline.settings import Settings

# SVG, TIFF, PSD, ICO and the rest are refused: every decoder is attack surface, and ads do not use them.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")

# Named ad ratios (width / height). A ratio within 3 % of one of these gets its name.
AD_RATIOS: dict[str, float] = {"1:1": 1.0, "4:5": 0.8, "9:16": 9 / 16, "16:9": 16 / 9, "1.91:1": 1.91}
_RATIO_TOLERANCE = 0.03
_SQUARE_TOLERANCE = 0.02

FINE_SIZE = 32


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
        orientation=orientation_of(width, height),
        aspect_label=aspect_label_of(width, height),
        image_format=image_format,
        fine_thumb=fine_thumb_b64(gray),
        is_animated=is_animated,
    )


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
                raise MediaError("too_large", f"{width}x{height} pixels is over the cap of {max_pixels}")
            is_animated = bool(getattr(image, "is_animated", False))
            if is_animated:
                image.seek(0)
            image.load()
            oriented: Image.Image = ImageOps.exif_transpose(image)
            return to_rgb(oriented), image_format, is_animated
    except MediaError:
        raise
    except UnidentifiedImageError as exc:
        raise MediaError("not_an_image", f"not a {'/'.join(ALLOWED_FORMATS)} image") from exc
    except Image.DecompressionBombError as exc:
        raise MediaError("too_large", str(exc)) from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as exc:
        # Pillow reports truncated and malformed files with these; anything else is a bug and should surface.
        raise MediaError("corrupt", f"{type(exc).__name__}: {exc}") from exc


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


def fine_thumb_b64(gray: Image.Image) -> str:
    """The finer check's data: a 32 x 32 area-averaged grey thumbnail, base64 of its 1,024 bytes.

    dHash at 8 x 8 cannot see a changed price or headline; :func:`adpipeline.media.dedupe.confirm_pair` aligns two
    of these thumbnails (undoing a small crop or border) and compares them cell by cell.
    """
    small = gray.resize((FINE_SIZE, FINE_SIZE), Image.Resampling.BOX)
    return base64.b64encode(np.asarray(small, dtype=np.uint8).tobytes()).decode("ascii")


def to_signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def to_unsigned64(value: int) -> int:
    return value & 0xFFFF_FFFF_FFFF_FFFF


def orientation_of(width: int, height: int) -> str:
    ratio = width / height
    if abs(ratio - 1.0) <= _SQUARE_TOLERANCE:
        return "square"
    return "landscape" if ratio > 1.0 else "portrait"


def aspect_label_of(width: int, height: int) -> str | None:
    """The named ad ratio this size is closest to, within 3 %, else ``None``."""
    ratio = width / height
    name, target = min(AD_RATIOS.items(), key=lambda item: abs(item[1] - ratio) / item[1])
    return name if abs(target - ratio) / target <= _RATIO_TOLERANCE else None
