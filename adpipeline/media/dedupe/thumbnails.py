"""The stored thumbnail (``image_hashes.fine_thumb``): its one format, decoding, and what is read straight from it.

Format ``THUMB_FORMAT`` (3): the image inside any frame as 128 x 128 luma + 64 x 64 Cb + 64 x 64 Cr, uint8, area
averaged (:func:`adpipeline.media.images.fine_thumb_b64` writes it), 24,576 bytes zlib-compressed and base64-encoded.
Rows written in the two earlier formats (1: 32 x 32 grey, not compressed; 2: 64 x 64 luma + 32 x 32 Cb/Cr) are
re-analysed from their blobs by ``adpipeline migrate-thumbs`` (:mod:`adpipeline.stages.media_thumbs`); decoding one
is an error that names that command.
"""

from __future__ import annotations

import base64
import zlib
from functools import lru_cache
from typing import NamedTuple

import numpy as np

THUMB_FORMAT = 3  # image_hashes.thumb_format of rows in the format below (1 and 2: the earlier formats)
COARSE = 64  # side of the coarse planes (luma 2 x 2-averaged from the stored 128, chroma as stored)
DETAIL = 128  # luma side of the stored thumbnail and of the detail planes (chroma stored at 64 and upsampled)
THUMB_BYTES = DETAIL * DETAIL + 2 * COARSE * COARSE  # 24,576 raw bytes
_DETAIL_SIGMA, _DETAIL_CHROMA_SIGMA = 0.7, 1.0  # blur of the detail planes (resize and JPEG noise)
_SPREAD_WINDOW = 5  # local standard deviation window (detail pixels)


class Thumb(NamedTuple):
    """A decoded ``fine_thumb``: ``coarse`` (luma, Cb, Cr at 64 x 64, for the coarse stage,
    :func:`~adpipeline.media.dedupe.compare.coarse_difference`) and, when asked for, ``detail`` (luma at 128 x 128 and
    Cb/Cr upsampled from 64, blurred) with ``spread`` (each plane's local standard deviation, 5 x 5) for the detail
    stage (:func:`~adpipeline.media.dedupe.compare.detail_difference`)."""

    coarse: np.ndarray
    detail: np.ndarray | None = None
    spread: np.ndarray | None = None


class OldThumbFormat(ValueError):
    """A ``fine_thumb`` in an earlier stored format (or not a thumbnail at all)."""


def thumb_format(fine_thumb: str | None) -> int | None:
    """The stored format of a ``fine_thumb`` read from its bytes: ``THUMB_FORMAT``, 2 (64-px luma), 1 (32 x 32 grey),
    or ``None`` without a thumbnail. Raises :class:`OldThumbFormat` for bytes that are none of these."""
    if not fine_thumb:
        return None
    data = base64.b64decode(fine_thumb)
    if len(data) == 32 * 32:
        return 1
    try:
        size = len(zlib.decompress(data))
    except zlib.error as exc:
        raise OldThumbFormat(f"fine_thumb is no stored thumbnail ({len(data)} bytes): {exc}") from exc
    if size == THUMB_BYTES:
        return THUMB_FORMAT
    if size == COARSE * COARSE + 2 * (COARSE // 2) ** 2:
        return 2
    raise OldThumbFormat(f"fine_thumb holds {size} bytes, expected {THUMB_BYTES}")


def _raw(fine_thumb: str) -> np.ndarray:
    """The stored bytes of a current-format thumbnail; :class:`OldThumbFormat` for any other."""
    data = base64.b64decode(fine_thumb)
    raw = np.frombuffer(zlib.decompress(data), dtype=np.uint8) if len(data) != 32 * 32 else np.empty(0, np.uint8)
    if raw.size != THUMB_BYTES:
        raise OldThumbFormat(
            f"fine_thumb holds {raw.size or len(data)} bytes, expected {THUMB_BYTES} (format {THUMB_FORMAT}): "
            "rows written in an earlier format are re-analysed by `adpipeline migrate-thumbs`"
        )
    return raw


def load_thumb(fine_thumb: str, *, detail: bool = True) -> Thumb:
    """Decode a stored ``fine_thumb``: the coarse planes, and the detail planes with their spread when ``detail``."""
    raw = _raw(fine_thumb)
    luma = raw[: DETAIL * DETAIL].reshape(DETAIL, DETAIL).astype(np.float64)
    chroma = raw[DETAIL * DETAIL :].reshape(2, COARSE, COARSE).astype(np.float64)
    coarse = _coarse(_halve(luma), _halve(chroma))
    if not detail:
        return Thumb(coarse)
    from scipy.ndimage import gaussian_filter, uniform_filter

    planes = np.concatenate(
        [
            gaussian_filter(luma, _DETAIL_SIGMA)[None],
            gaussian_filter(chroma.repeat(2, 1).repeat(2, 2), (0, _DETAIL_CHROMA_SIGMA, _DETAIL_CHROMA_SIGMA)),
        ]
    ).astype(np.float32)  # float32 halves the memory of a decoded thumbnail (they are kept in a cache)
    mean = uniform_filter(planes, (1, _SPREAD_WINDOW, _SPREAD_WINDOW))
    square = uniform_filter(planes * planes, (1, _SPREAD_WINDOW, _SPREAD_WINDOW))
    spread = np.sqrt(np.maximum(square - mean * mean, 0.0))
    return Thumb(coarse, planes, spread)


@lru_cache(maxsize=16)
def _filter_matrix(kind: str, size: float, n: int) -> np.ndarray:
    """The ``n x n`` matrix of scipy's 1-D Gaussian (sigma ``size``) or uniform (window ``size``) filter in its
    default 'reflect' mode: filtering a plane is then two small matrix products, far cheaper than scipy's calls on
    64- and 128-px planes."""
    from scipy.ndimage import gaussian_filter1d, uniform_filter1d

    eye = np.eye(n)
    if kind == "gauss":
        return gaussian_filter1d(eye, size, axis=0)
    return uniform_filter1d(eye, int(size), axis=0)


def _smooth(planes: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Separable filter over the last two axes with a :func:`_filter_matrix`."""
    return matrix @ planes @ matrix.T


def _halve(planes: np.ndarray) -> np.ndarray:
    """2 x 2 area average over the last two axes."""
    *lead, h, w = planes.shape
    return planes.reshape(*lead, h // 2, 2, w // 2, 2).mean(axis=(-3, -1))


def _coarse(luma: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    chroma = chroma.repeat(2, axis=1).repeat(2, axis=2)
    return _blur(np.concatenate([luma[None], chroma]))


def _blur(planes: np.ndarray) -> np.ndarray:
    return np.stack(
        [
            _smooth(planes[0], _filter_matrix("gauss", 0.7, COARSE)),
            _smooth(planes[1], _filter_matrix("gauss", 1.4, COARSE)),
            _smooth(planes[2], _filter_matrix("gauss", 1.4, COARSE)),
        ]
    )


# dHash of a thumbnail (candidate search on the image inside its frame): area-average to 8 rows x 9 columns
def _box_matrix(out: int, n: int) -> np.ndarray:
    """Area-averaging matrix from ``n`` samples to ``out`` (fractional overlaps weighted)."""
    edges = np.linspace(0, n, out + 1)
    matrix = np.zeros((out, n))
    for k in range(out):
        lo, hi = edges[k], edges[k + 1]
        for i in range(int(np.floor(lo)), int(np.ceil(hi))):
            matrix[k, i] = min(hi, i + 1) - max(lo, i)
    return matrix / matrix.sum(1, keepdims=True)


_HASH_ROWS = _box_matrix(8, DETAIL)
_HASH_COLS = _box_matrix(9, DETAIL)
_BIT_WEIGHTS = np.uint64(1) << np.arange(63, -1, -1, dtype=np.uint64)
_LAYOUT = 16  # side of the layout grid of the pre-filter
LAYOUT_MIN_CORRELATION = 0.3  # below this the pair is unrelated (copies: >= 0.41 on the tuning sets; media README)


def layout_vector(fine_thumb: str | None) -> np.ndarray | None:
    """The pre-filter's view of a thumbnail: its luma as a 16 x 16 grid of block means, centred and scaled to unit
    length (so a dot product is a correlation, blind to brightness and contrast). ``None`` without a thumbnail or for
    a flat image."""
    luma = _stored_luma(fine_thumb)
    if luma is None:
        return None
    side = len(luma)
    grid = luma.astype(np.float32).reshape(_LAYOUT, side // _LAYOUT, _LAYOUT, side // _LAYOUT).mean(axis=(1, 3)).ravel()
    grid -= grid.mean()
    norm = float(np.linalg.norm(grid))
    return grid / norm if norm > 1e-3 else None


def inner_hash(fine_thumb: str | None) -> int | None:
    """The grouping's second hash, unsigned: a dHash of the stored thumbnail's luma (the image inside any frame), area
    averaged to 9 x 8 straight from the stored bytes; ``None`` without a thumbnail."""
    luma = _stored_luma(fine_thumb)
    if luma is None:
        return None
    return _dhash_bits(_HASH_ROWS @ luma.astype(np.float64) @ _HASH_COLS.T)


def _stored_luma(fine_thumb: str | None) -> np.ndarray | None:
    """The 128 x 128 luma plane of a stored thumbnail straight from its bytes (uint8); ``None`` without one."""
    if not fine_thumb:
        return None
    return _raw(fine_thumb)[: DETAIL * DETAIL].reshape(DETAIL, DETAIL)


def _dhash_bits(cells: np.ndarray) -> int:
    bits = (cells[:, 1:] > cells[:, :-1]).ravel()
    return int(np.bitwise_or.reduce(np.where(bits, _BIT_WEIGHTS, np.uint64(0))))
