"""Near-duplicate groups: multi-index hashing over 64-bit dHashes finds candidates, a finer check confirms them.

Grouping is a pure function of the *set* of images (their contents): candidate pairs are within ``threshold`` bits on
the image dHash or on the thumbnail dHash (:mod:`adpipeline.media.hamming`, no all-pairs scan), or say the same
tallest text line and are within ``text_candidate_bits`` (a crop in a frame moves a copy's hashes); the finer check
confirms a candidate when the images' text does not tell them apart (:mod:`adpipeline.media.text`: a line in the same
place that says something else is another price, headline, offer or call to action) and their aligned thumbnails
differ no more than a copy does (:func:`fine_difference` on the 64-px planes as a fast reject, then
:func:`detail_difference` on the 128-px planes, normalised by local contrast). Components of confirmed pairs are
split into groups by average linkage; the canonical of a group is its largest image, then the smallest sha256
(:func:`rank_key`), so URL strings and arrival order never move a group. :func:`regroup` adds pending images to an
index of earlier ones (incremental); :func:`group_duplicates` groups a whole set at once. Media README,
"Near-duplicates".
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from adpipeline import tables
from adpipeline.media.hamming import all_pairs_baseline, find_pairs, find_pairs_between, hamming
from adpipeline.media.text import text_key, texts_differ

__all__ = [
    "HashedImage",
    "Thumb",
    "all_pairs_baseline",
    "detail_difference",
    "find_pairs",
    "fine_difference",
    "group_duplicates",
    "hamming",
    "load_thumb",
]

# Defaults chosen on the tuning part of the varied labelled set (bench/dedupe_quality.py; media README): with the text
# check keeping text siblings apart, the pixel stages only need to catch product colour, layout and unrelated images.
DEFAULT_THRESHOLD = 12  # dHash bits (image or thumbnail hash) that make a candidate pair
DEFAULT_FINE_DIFF = 2.0  # detail_difference limit (units of local contrast)
DEFAULT_LINK_SHARE = 0.35  # share of confirmed cross pairs that merges two groups of one component
DEFAULT_TEXT_CANDIDATE_BITS = 20  # dHash bits within which images with the same text key are candidates too
DEFAULT_TEXT_KEY_MAX_IMAGES = 1000  # images saying one text key above which it makes no candidates
COARSE_REJECT = 48.0  # fine_difference above this (grey levels) rejects a pair before the detail stage
LEGACY_FINE_DIFF = 10.0  # fine_difference limit when a thumbnail has no detail part (stored before the 128-px format)


class HashedImage(NamedTuple):
    """One image as the grouping sees it. ``dhash`` may be the signed INT64 from the table or the unsigned value."""

    creative_id: str
    sha256: str
    dhash: int
    first_seen: dt.date | None = None  # not used by the grouping (content decides); kept for callers
    fine_thumb: str | None = None  # ImageHash.fine_thumb; without it a candidate pair is confirmed by dHash alone
    width: int = 0  # pixels; the largest image of a group is its canonical (rank_key)
    height: int = 0
    ocr_text: str | None = None  # ImageHash.ocr_text; without it the text check has no evidence for the pair


class Thumb(NamedTuple):
    """A decoded ``fine_thumb``: ``coarse`` (luma, Cb, Cr at 64 x 64, for :func:`fine_difference`) and, for the
    current format, ``detail`` (luma at 128 x 128 and Cb/Cr upsampled from 64, blurred) with ``spread`` (each plane's
    local standard deviation, 5 x 5) for :func:`detail_difference`; both ``None`` for the older 64-px format."""

    coarse: np.ndarray
    detail: np.ndarray | None = None
    spread: np.ndarray | None = None
    legacy: bool = False  # the 64-px format: there are no detail planes to compute


# --- the finer check ------------------------------------------------------------------------------
_FINE = 64  # luma side of a decoded thumbnail (chroma is stored at half and upsampled)
_CROPS = np.arange(0.0, 0.0801, 0.005)  # crop share per side searched when aligning (2-5 % crops, frame leftovers)
_BLOCK, _STRIDE = 4, 2  # blocks of the localized difference statistic
_DETAIL = 128  # luma side of the detail planes (chroma stored at 64 and upsampled)
_DETAIL_SIGMA, _DETAIL_CHROMA_SIGMA = 0.7, 1.0  # blur of the detail planes (resize and JPEG noise)
_SPREAD_WINDOW = 5  # local standard deviation window (detail pixels)
_DETAIL_FLOOR = np.array([4.0, 8.0, 8.0])[:, None, None]  # levels added to the local spread: luma, Cb, Cr
_DETAIL_BLOCK, _DETAIL_STRIDE = 8, 4
_GAIN_RANGE = (1 / 1.5, 1.5)  # per-plane gain the photometric fit may use
_FLAT_VARIANCE = 4.0  # grey levels squared: a plane flatter than this gets gain 1
_NEUTRAL = 128.0  # Cb / Cr of grey: chroma gains scale about it
_CLIP_HIGH, _CLIP_LOW = 250.0, 5.0  # luma levels taken as saturated (white / black) by a brightness or contrast change


def _resample_matrix(left: float, right: float, n: int = _FINE) -> np.ndarray:
    """Linear-interpolation matrix that crops ``left``/``right`` shares off a length-``n`` signal and rescales it."""
    u = (np.arange(n) + 0.5) / n
    x = np.clip((left + u * (1.0 - left - right)) * n - 0.5, 0, n - 1)
    i0 = np.floor(x).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    w = x - i0
    matrix = np.zeros((n, n))
    np.add.at(matrix, (np.arange(n), i0), 1 - w)
    np.add.at(matrix, (np.arange(n), i1), w)
    return matrix


_MATRICES = np.stack([_resample_matrix(left, right) for left in _CROPS for right in _CROPS])


def _taps(left: float, right: float, n: int = _FINE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two taps and the first tap's weight of each row of :func:`_resample_matrix`."""
    x = np.clip((left + (np.arange(n) + 0.5) / n * (1.0 - left - right)) * n - 0.5, 0, n - 1)
    i0 = np.floor(x).astype(int)
    return i0, np.minimum(i0 + 1, n - 1), 1.0 - (x - i0)


_TAPS = [_taps(lo, hi) for lo in _CROPS for hi in _CROPS]
_TAP0, _TAP1, _TAP_W0 = (np.stack([taps[k] for taps in _TAPS]) for k in range(3))
_TAP_W1 = 1.0 - _TAP_W0
_BAND = slice(_FINE // 4, _FINE - _FINE // 4)  # profiles are taken over the middle half: corners hold badges
_DTAPS = [_taps(lo, hi, _DETAIL) for lo in _CROPS for hi in _CROPS]
_DTAP0, _DTAP1, _DTAP_W0 = (np.stack([taps[k] for taps in _DTAPS]) for k in range(3))
_DTAP_W1 = 1.0 - _DTAP_W0


# dHash of a thumbnail (candidate search on the image inside its frame): area-average to 8 rows x 9 columns
def _box_matrix(out: int, n: int = _FINE) -> np.ndarray:
    """Area-averaging matrix from ``n`` samples to ``out`` (fractional overlaps weighted)."""
    edges = np.linspace(0, n, out + 1)
    matrix = np.zeros((out, n))
    for k in range(out):
        lo, hi = edges[k], edges[k + 1]
        for i in range(int(np.floor(lo)), int(np.ceil(hi))):
            matrix[k, i] = min(hi, i + 1) - max(lo, i)
    return matrix / matrix.sum(1, keepdims=True)


_HASH_ROWS = _box_matrix(8)
_HASH_COLS = _box_matrix(9)
_HASH_ROWS_DETAIL = _box_matrix(8, _DETAIL)
_HASH_COLS_DETAIL = _box_matrix(9, _DETAIL)
_BIT_WEIGHTS = np.uint64(1) << np.arange(63, -1, -1, dtype=np.uint64)


def decode_thumb(fine_thumb: str) -> np.ndarray | None:
    """The coarse planes (luma, Cb, Cr; 64 x 64 float, lightly blurred) of a stored thumbnail; ``None`` for the oldest
    32 x 32 grey format."""
    thumb = load_thumb(fine_thumb, detail=False)
    return None if thumb is None else thumb.coarse


def load_thumb(fine_thumb: str, *, detail: bool = True) -> Thumb | None:
    """Decode any stored ``fine_thumb`` format.

    * 128 x 128 luma + 64 x 64 Cb/Cr (current, 24,576 bytes zlib'd): coarse and detail planes;
    * 64 x 64 luma + 32 x 32 Cb/Cr (6,144 bytes zlib'd, before the detail stage): coarse planes only, so such a pair is
      confirmed by :func:`fine_difference` alone (``LEGACY_FINE_DIFF``);
    * 32 x 32 grey, not compressed (before issue 3): ``None``, the dHash candidate stands alone.
    """
    data = base64.b64decode(fine_thumb)
    if len(data) == 32 * 32:
        return None
    raw = np.frombuffer(zlib.decompress(data), dtype=np.uint8)
    half = _FINE // 2
    if raw.size == _FINE * _FINE + 2 * half * half:
        luma = raw[: _FINE * _FINE].reshape(_FINE, _FINE).astype(np.float64)
        chroma = raw[_FINE * _FINE :].reshape(2, half, half).astype(np.float64)
        return Thumb(_coarse(luma, chroma), legacy=True)
    if raw.size != _DETAIL * _DETAIL + 2 * _FINE * _FINE:
        raise ValueError(f"fine_thumb holds {raw.size} bytes, expected {_DETAIL * _DETAIL + 2 * _FINE * _FINE}")
    luma = raw[: _DETAIL * _DETAIL].reshape(_DETAIL, _DETAIL).astype(np.float64)
    chroma = raw[_DETAIL * _DETAIL :].reshape(2, _FINE, _FINE).astype(np.float64)
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
            _smooth(planes[0], _filter_matrix("gauss", 0.7, _FINE)),
            _smooth(planes[1], _filter_matrix("gauss", 1.4, _FINE)),
            _smooth(planes[2], _filter_matrix("gauss", 1.4, _FINE)),
        ]
    )


def thumb_hash(thumb: np.ndarray) -> int:
    """A 64-bit dHash of a decoded coarse thumbnail's luma: like the image dHash, but of the image inside its frame."""
    return _dhash_bits(_HASH_ROWS @ thumb[0] @ _HASH_COLS.T)


_LAYOUT = 16  # side of the layout grid of the pre-filter
LAYOUT_MIN_CORRELATION = 0.3  # below this the pair is unrelated (copies: >= 0.41 on the tuning sets; media README)


def layout_vector(fine_thumb: str | None) -> np.ndarray | None:
    """The pre-filter's view of a thumbnail: its luma as a 16 x 16 grid of block means, centred and scaled to unit
    length (so a dot product is a correlation, blind to brightness and contrast). ``None`` without a thumbnail, for
    the oldest format, or for a flat image."""
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
    averaged to 9 x 8 straight from the stored bytes; ``None`` without a thumbnail or for the oldest 32 x 32 format."""
    luma = _stored_luma(fine_thumb)
    if luma is None:
        return None
    rows, cols = (_HASH_ROWS, _HASH_COLS) if len(luma) == _FINE else (_HASH_ROWS_DETAIL, _HASH_COLS_DETAIL)
    return _dhash_bits(rows @ luma.astype(np.float64) @ cols.T)


def _stored_luma(fine_thumb: str | None) -> np.ndarray | None:
    """The luma plane of a stored thumbnail straight from its bytes (uint8, 128 x 128, or 64 x 64 for the older
    format); ``None`` without a thumbnail or for the oldest 32 x 32 grey format."""
    if not fine_thumb:
        return None
    data = base64.b64decode(fine_thumb)
    if len(data) == 32 * 32:
        return None
    raw = np.frombuffer(zlib.decompress(data), dtype=np.uint8)
    side = _DETAIL if raw.size == _DETAIL * _DETAIL + 2 * _FINE * _FINE else _FINE
    return raw[: side * side].reshape(side, side)


def _dhash_bits(cells: np.ndarray) -> int:
    bits = (cells[:, 1:] > cells[:, :-1]).ravel()
    return int(np.bitwise_or.reduce(np.where(bits, _BIT_WEIGHTS, np.uint64(0))))


def _profile_errors(source: np.ndarray, target: np.ndarray) -> tuple[int, int, float]:
    # every resampling matrix has two taps per row: gather them instead of 289 matrix products. Profiles are compared
    # after removing their mean and scale, so a brightness or contrast change does not read as a crop.
    px, py = source[0, _BAND].mean(0), source[0, :, _BAND].mean(1)
    tx, ty = target[0, _BAND].mean(0), target[0, :, _BAND].mean(1)
    errors_x = _normalised_error(px[_TAP0] * _TAP_W0 + px[_TAP1] * _TAP_W1, tx)
    errors_y = _normalised_error(py[_TAP0] * _TAP_W0 + py[_TAP1] * _TAP_W1, ty)
    kx, ky = int(errors_x.argmin()), int(errors_y.argmin())
    return kx, ky, float(errors_x[kx] + errors_y[ky])


def _normalised_error(candidates: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Mean absolute difference of each candidate profile (rows) and ``target`` after matching mean and spread, in
    the target's grey levels."""
    scale = max(float(target.std()), 1.0)
    z_target = (target - target.mean()) / scale
    spread = np.maximum(candidates.std(axis=1, keepdims=True), 1.0)
    z = (candidates - candidates.mean(axis=1, keepdims=True)) / spread
    return np.abs(z - z_target).mean(axis=1) * scale


class _Alignment(NamedTuple):
    """How to map one thumbnail onto the other: ``forward`` (``a`` onto ``b``, else ``b`` onto ``a``), the column/row
    crop indices, and per plane the gain and offset that undo a brightness / contrast change."""

    forward: bool
    kx: int
    ky: int
    gain: np.ndarray
    offset: np.ndarray


def _align(a: np.ndarray, b: np.ndarray) -> _Alignment:
    """Align two coarse thumbnails: the crop/rescale (searched both ways round on luma profiles, the lower error
    wins), then a per-plane gain and offset fitted on the warped planes (:func:`_photometric`)."""
    fx, fy, forward_error = _profile_errors(a, b)
    bx, by, backward_error = _profile_errors(b, a)
    forward = forward_error <= backward_error
    kx, ky = (fx, fy) if forward else (bx, by)
    source, target = (a, b) if forward else (b, a)
    gain, offset = _photometric(_MATRICES[ky] @ source @ _MATRICES[kx].T, target)
    return _Alignment(forward, kx, ky, gain, offset)


def _photometric(warped: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per plane ``gain``, ``offset`` with ``target ~ gain * warped + offset``: least squares, then again without the
    quarter of pixels that differ most (a changed price or product colour must not pull the fit). Gain is held within
    ``_GAIN_RANGE`` (a brightness and a contrast change of 20 % each compose to about 0.64-1.44)."""
    source = warped.reshape(len(warped), -1)
    goal = target.reshape(len(target), -1)
    unclipped = np.broadcast_to(~(_clipped(source[0]) | _clipped(goal[0])), source.shape)
    if unclipped.sum() < source.size // 8:
        unclipped = np.ones(source.shape, dtype=bool)  # a mostly white or black image: fit on everything
    gain, offset = _affine(source, goal, unclipped)
    residual = np.abs(source * gain[:, None] + offset[:, None] - goal)
    keep = (residual <= np.quantile(residual, 0.75, axis=1, keepdims=True)) & unclipped
    return _affine(source, goal, keep)


def _clipped(luma: np.ndarray) -> np.ndarray:
    """Pixels at the ends of the luma range, where a brightness or contrast change saturated (white stays white)."""
    return (luma >= _CLIP_HIGH) | (luma <= _CLIP_LOW)


def _residual(source: np.ndarray, matched: np.ndarray, target: np.ndarray) -> np.ndarray:
    """|matched - target| per plane, under the model ``target = clip(gain * source + offset)``: where the target's
    luma is saturated it bounds the truth only on one side, and a saturated source hides how far beyond it was, so a
    difference in the direction clipping explains is none (a brightened banner's white stays 255)."""
    diff = matched - target
    residual = np.abs(diff)
    hidden = (
        ((target[0] >= _CLIP_HIGH) & (diff[0] > 0))
        | ((target[0] <= _CLIP_LOW) & (diff[0] < 0))
        | ((source[0] >= _CLIP_HIGH) & (diff[0] < 0))
        | ((source[0] <= _CLIP_LOW) & (diff[0] > 0))
    )
    residual[0][hidden] = 0.0
    return residual


def _affine(source: np.ndarray, goal: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares gain and offset per plane over the ``keep`` pixels. Luma: any gain and offset (a brightness
    change scales it, a contrast change scales it about the mean). Chroma: a gain about neutral grey (128) and no
    offset, because both changes scale colour differences about grey (PIL, and a camera's exposure alike); a free
    offset could map one product colour onto another (teal onto green) where a banner has only a few colours."""
    weight = keep.astype(np.float64)
    count = np.maximum(weight.sum(axis=1), 1.0)
    source_mean = (source * weight).sum(axis=1) / count
    goal_mean = (goal * weight).sum(axis=1) / count
    centre = np.concatenate([source_mean[:1], np.full(len(source) - 1, _NEUTRAL)])
    goal_centre = np.concatenate([goal_mean[:1], np.full(len(source) - 1, _NEUTRAL)])
    centred = (source - centre[:, None]) * weight
    variance = (centred * centred).sum(axis=1) / count
    covariance = (centred * (goal - goal_centre[:, None])).sum(axis=1) / count
    # a flat plane (a grey image's chroma) carries no gain: keep 1
    gain = np.where(variance > _FLAT_VARIANCE, covariance / np.maximum(variance, 1e-9), 1.0)
    gain = np.clip(gain, *_GAIN_RANGE)
    return gain, goal_centre - gain * centre


def _worst_block(diff: np.ndarray, block: int, stride: int) -> float:
    """Largest mean of ``diff`` over ``block``-square blocks (``stride`` apart), leaving out the one corner (a quarter
    of each side) whose worst block is worst: a badge sits in one corner."""
    size = diff.shape[0]
    summed = np.zeros((size + 1, size + 1))
    np.cumsum(np.cumsum(diff, 0), 1, out=summed[1:, 1:])
    lo = np.arange((size - block) // stride + 1) * stride
    hi = lo + block
    blocks = summed[np.ix_(hi, hi)] - summed[np.ix_(lo, hi)] - summed[np.ix_(hi, lo)] + summed[np.ix_(lo, lo)]
    n, q = len(lo), len(lo) // 4
    corners = [(ys, xs) for ys in (slice(0, q), slice(n - q, n)) for xs in (slice(0, q), slice(n - q, n))]
    worst = max(corners, key=lambda corner: float(blocks[corner].max()))
    blocks[worst] = 0.0
    return float(blocks.max()) / (block * block)


def _coarse_score(a: np.ndarray, b: np.ndarray, alignment: _Alignment) -> float:
    source, target = (a, b) if alignment.forward else (b, a)
    warped = _MATRICES[alignment.ky] @ source @ _MATRICES[alignment.kx].T
    matched = warped * alignment.gain[:, None, None] + alignment.offset[:, None, None]
    return _worst_block(_residual(warped, matched, target).max(axis=0), _BLOCK, _STRIDE)


def fine_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Localized difference of two decoded coarse thumbnails after alignment: the largest mean over 4 x 4 blocks
    (stride 2) of the per-pixel largest luma/chroma difference, leaving out the one corner (a quarter of each side)
    that differs most.

    Alignment crops and rescales one thumbnail per axis (searched on luma row/column profiles taken over the middle
    half, so a corner badge does not pull it) to match the other, both ways round: that undoes a small crop (one is
    a crop of the other) or what frame removal left of a border; a per-plane gain and offset then undo a global
    brightness or contrast change. A badge sits in one corner; a changed price, headline, offer (digit) or product
    colour shows up as a block elsewhere.
    """
    return _coarse_score(a, b, _align(a, b))


def _warp_detail(planes: np.ndarray, kx: int, ky: int) -> np.ndarray:
    """:func:`_resample_matrix` crop/rescale at the detail size, as two-tap gathers (rows, then columns)."""
    rows = planes[:, _DTAP0[ky], :] * _DTAP_W0[ky][:, None] + planes[:, _DTAP1[ky], :] * _DTAP_W1[ky][:, None]
    return rows[:, :, _DTAP0[kx]] * _DTAP_W0[kx] + rows[:, :, _DTAP1[kx]] * _DTAP_W1[kx]


def _detail_score(a: Thumb, b: Thumb, alignment: _Alignment) -> float:
    source, target = (a, b) if alignment.forward else (b, a)
    if source.detail is None or source.spread is None or target.detail is None or target.spread is None:
        raise ValueError("detail_difference needs two current-format thumbnails")
    gain = alignment.gain[:, None, None]
    plain = _warp_detail(source.detail, alignment.kx, alignment.ky)
    warped = plain * gain + alignment.offset[:, None, None]
    spread = np.maximum(_warp_detail(source.spread, alignment.kx, alignment.ky) * gain, target.spread)
    ratio = (_residual(plain, warped, target.detail) / (spread + _DETAIL_FLOOR)).max(axis=0)
    return _worst_block(ratio, _DETAIL_BLOCK, _DETAIL_STRIDE)


def detail_difference(a: Thumb, b: Thumb) -> float:
    """Contrast-normalised localized difference of two current-format thumbnails (both must have ``detail``).

    The coarse alignment (:func:`fine_difference`: crop/rescale, then gain and offset per plane) is applied to the
    128-px planes; per pixel and plane the absolute difference is divided by the larger local standard deviation of
    the two images plus a floor (4 luma levels, 8 chroma levels), the largest plane is kept, and the worst 8 x 8
    block mean (stride 4, one corner left out) is the score. A changed glyph differs by about its own contrast where
    the spread is about half that (a ratio near 2 over the glyph, whatever its contrast: red on dark blue counts like
    white on black); resize, JPEG and sub-pixel misalignment differ by a small share of the spread along edges only.
    """
    return _detail_score(a, b, _align(a.coarse, b.coarse))


def pair_difference(a: Thumb, b: Thumb, *, coarse_reject: float = COARSE_REJECT) -> tuple[float, float | None]:
    """Both stages for one pair: ``(fine_difference, detail_difference or None)``; the detail stage is skipped (None)
    when either thumbnail lacks it or the coarse stage already rejects (above ``COARSE_REJECT``). Symmetric: the
    pair is taken in a fixed order of its contents, so ``(a, b)`` and ``(b, a)`` score the same."""
    if _content_key(b) < _content_key(a):
        a, b = b, a
    alignment = _align(a.coarse, b.coarse)
    coarse = _coarse_score(a.coarse, b.coarse, alignment)
    if a.detail is None or b.detail is None or coarse > coarse_reject:
        return coarse, None
    return coarse, _detail_score(a, b, alignment)


def _content_key(thumb: Thumb) -> bytes:
    return thumb.coarse.tobytes()


# --- grouping -------------------------------------------------------------------------------------
class Clustering(NamedTuple):
    """What shapes groups (from settings, in one place). ``threshold``: dHash Hamming distance (bits) that makes a
    candidate pair; ``fine_threshold``: :func:`detail_difference` limit (units of local contrast), ``None`` turns the
    finer check off (dHash alone); ``coarse_reject``: :func:`fine_difference` limit (grey levels) a pair must pass
    before the detail stage; ``link_share``: the share (0-1) of confirmed pairs between two groups of one component
    that merges them; ``all_pairs_within``: components up to this many images have every pair within twice the
    threshold checked (a copy of a copy may be far from the other copies in dHash), larger ones only their
    candidate pairs; ``text_candidate_bits``: images with the same text key (their tallest line) are candidates
    within this many bits on either dHash (a crop plus a frame moves a copy's hashes further than ``threshold``);
    ``threshold`` or less turns that route off; ``text_key_max_images``: a key more images than this say (grouped
    and pending together) is too common to make candidates (a brand name or a call to action as the tallest line)."""

    threshold: int = DEFAULT_THRESHOLD
    fine_threshold: float | None = DEFAULT_FINE_DIFF
    coarse_reject: float = COARSE_REJECT
    link_share: float | None = DEFAULT_LINK_SHARE  # None: star clustering (the bench compares the two)
    all_pairs_within: int = 64  # components up to this size check every pair of members, not only dHash candidates
    text_check: bool = True  # keep apart pairs whose text differs (media.text.texts_differ); needs fine_threshold
    text_candidate_bits: int = DEFAULT_TEXT_CANDIDATE_BITS  # same text key (media.text.text_key) and this close
    text_key_max_images: int = DEFAULT_TEXT_KEY_MAX_IMAGES  # a key said by more images is too common to count

    @property
    def text_route(self) -> bool:
        """Whether images sharing a text key are candidates beyond ``threshold`` (needs the text check)."""
        return self.text_check and self.fine_threshold is not None and self.text_candidate_bits > self.threshold


class Stored(NamedTuple):
    """What the finer check reads for one candidate image: its thumbnail and its text (either may be missing)."""

    fine_thumb: str | None
    ocr_text: str | None = None


class Known(NamedTuple):
    """The index of earlier grouped images, one entry each (``duplicate_groups`` joined to ``image_hashes``). ``inner``
    is the thumbnail dHash (:func:`thumb_hash`), valid where ``has_inner``."""

    creative_ids: np.ndarray  # object (str)
    dhash: np.ndarray  # uint64
    inner: np.ndarray  # uint64
    has_inner: np.ndarray  # bool
    component_ids: np.ndarray  # object (str)
    text_keys: np.ndarray | None = None  # int64 (media.text.text_key), valid where has_text_key; None: no text keys
    has_text_key: np.ndarray | None = None  # bool

    @classmethod
    def empty(cls) -> Known:
        return cls(
            np.empty(0, object), np.empty(0, np.uint64), np.empty(0, np.uint64), np.empty(0, bool), np.empty(0, object)
        )


class Member(NamedTuple):
    """An earlier image of a component a pending image joins: its facts (no thumbnail needed) and its current row."""

    image: HashedImage
    row: tables.DuplicateGroup


# creative ids -> Stored (or the fine_thumb alone, for callers without text)
ThumbLoader = Callable[[Sequence[str]], "dict[str, Stored] | dict[str, str | None]"]
MemberLoader = Callable[[Sequence[str]], list[Member]]  # component ids -> all their members
# creative ids -> their text record (media.text.read_text), read now (OCR) and stored by the caller; None: unreadable
TextReader = Callable[[Sequence[str]], "dict[str, str | None]"]


def rank_key(image: HashedImage) -> tuple[int, str, str]:
    """The canonical order: the largest image (pixels) first, then the sha256, then (only between byte-identical
    copies) the creative id. Content decides, so URL strings and input order never move a group or its canonical."""
    return (-(image.width * image.height), image.sha256, image.creative_id)


def group_duplicates(
    images: Sequence[HashedImage],
    threshold: int = DEFAULT_THRESHOLD,
    *,
    fine_threshold: float | None = DEFAULT_FINE_DIFF,
    coarse_reject: float = COARSE_REJECT,
    link_share: float | None = DEFAULT_LINK_SHARE,
    text_check: bool = True,
    text_candidate_bits: int = DEFAULT_TEXT_CANDIDATE_BITS,
    read_texts: TextReader | None = None,
) -> list[tables.DuplicateGroup]:
    """One :class:`~adpipeline.tables.DuplicateGroup` row per distinct creative (singletons are groups of one) for a
    whole set at once: :func:`regroup` with nothing known before. Rows come sorted by ``(group_id, creative_id)``.
    ``read_texts`` reads the text of images without a stored ``ocr_text`` when a pair needs it (:func:`regroup`)."""
    thumbs = {image.creative_id: Stored(image.fine_thumb, image.ocr_text) for image in images}
    rows = regroup(
        images,
        Known.empty(),
        Clustering(
            threshold,
            fine_threshold,
            coarse_reject,
            link_share,
            text_check=text_check,
            text_candidate_bits=text_candidate_bits,
        ),
        load_thumbs=lambda ids: {i: thumbs[i] for i in ids},
        read_texts=read_texts,
    )
    return sorted(rows, key=lambda row: (row.group_id, row.creative_id))


def regroup(
    pending: Sequence[HashedImage],
    known: Known,
    clustering: Clustering,
    *,
    load_thumbs: ThumbLoader,
    load_members: MemberLoader | None = None,
    cache_size: int = 256,
    read_texts: TextReader | None = None,
) -> list[tables.DuplicateGroup]:
    """Group ``pending`` images into the ``known`` index; return the rows that are new or changed (pending images
    and the earlier members of the components they join whose row moves). Every other row stands as it is.

    Groups are a function of the set of images (their contents), whatever order or run they come in:
    1. Candidates: pairs within ``threshold`` bits on the image dHash or on the thumbnail dHash (taken inside any
       frame), and pairs whose tallest text line reads the same (:func:`~adpipeline.media.text.text_key`) within
       ``text_candidate_bits`` on either hash. Pending images probe each other and the index
       (:func:`find_pairs_between`, :func:`_text_pairs`); nothing earlier is compared with anything earlier again.
    2. The finer check confirms a candidate (thumbnails loaded and decoded for candidates alone, ``cache_size``
       decoded at a time); exact copies (same bytes, so the same thumbnail) always confirm. Text is read only for a
       pair the pixel stages confirm (a copy, or a sibling too close for pixels), and only for images without a
       stored ``ocr_text``: ``read_texts`` reads (OCR) and stores it, once per image; images in no such pair are
       never read. Without ``read_texts``, an image without stored text gives no text evidence.
    3. Components of confirmed pairs only ever merge as images arrive, so each row keeps its ``component_id`` and a
       pending image joins the components of the earlier images it is confirmed against.
    4. Inside every touched component, average linkage over its confirmed pairs (:func:`_cluster_rows`); the
       canonical of each group is its best-ranked image (:func:`rank_key`).
    Daily runs therefore end with the same rows as one run over all days, as long as the settings stay the same.
    """
    with _one_blas_thread():
        return _regroup(pending, known, clustering, load_thumbs, load_members, cache_size, read_texts)


def _one_blas_thread() -> contextlib.AbstractContextManager[object]:
    """BLAS threads on 64- and 128-px matrices cost far more than they bring (measured 20x slower on a busy 2-core
    worker): one thread while grouping, where threadpoolctl is installed."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _regroup(
    pending: Sequence[HashedImage],
    known: Known,
    clustering: Clustering,
    load_thumbs: ThumbLoader,
    load_members: MemberLoader | None,
    cache_size: int,
    read_texts: TextReader | None = None,
) -> list[tables.DuplicateGroup]:
    pending = _distinct(pending)
    if not pending:
        return []
    thumbs = _ThumbCache(load_thumbs, clustering, cache_size, read_texts)
    thumbs.add({image.creative_id: Stored(image.fine_thumb, image.ocr_text) for image in pending})
    n = len(pending)
    dhash = np.fromiter((image.dhash & _MASK64 for image in pending), np.uint64, n)
    inner, has_inner = thumbs.inner_hashes([image.creative_id for image in pending])

    # Byte-identical pending images probe once (their first), and join each other.
    first_of: dict[str, int] = {}
    unit = np.fromiter((first_of.setdefault(image.sha256, k) for k, image in enumerate(pending)), np.int64, n)
    firsts = np.unique(unit)
    use_inner = clustering.fine_threshold is not None  # dHash alone: the image hash only
    firsts_inner = firsts[has_inner[firsts] & use_inner]
    keys = np.zeros(n, np.int64)
    has_key = np.zeros(n, bool)
    if clustering.text_route:
        for k, image in enumerate(pending):
            value = text_key(image.ocr_text)
            if value is not None:
                keys[k], has_key[k] = value, True
    known_keys = known.text_keys if known.text_keys is not None else np.zeros(len(known.dhash), np.int64)
    known_has_key = known.has_text_key if known.has_text_key is not None else np.zeros(len(known.dhash), bool)
    probe_key = has_key.copy()  # keys stored with the rows; probe_key: those that make candidates
    if has_key.any():  # keys too common to count (said by more than text_key_max_images images) make no candidates
        said = np.concatenate([keys[has_key], known_keys[known_has_key & np.isin(known_keys, keys[has_key])]])
        values, counts = np.unique(said, return_counts=True)
        common = values[counts > clustering.text_key_max_images]
        probe_key &= ~np.isin(keys, common)
        known_has_key = known_has_key & ~np.isin(known_keys, common)
    pending_hashes = _Hashes(dhash, inner, has_inner & use_inner, keys, probe_key)
    known_hashes = _Hashes(known.dhash, known.inner, known.has_inner & use_inner, known_keys, known_has_key)
    new_pairs = _unique_rows(
        [
            firsts[find_pairs(dhash[firsts], clustering.threshold)],
            firsts_inner[find_pairs(inner[firsts_inner], clustering.threshold)],
            _text_pairs(pending_hashes, firsts, pending_hashes, firsts, clustering),
        ]
    )
    on_dhash = find_pairs_between(dhash[firsts], known.dhash, clustering.threshold)
    known_inner = np.flatnonzero(known.has_inner & use_inner)
    on_inner = find_pairs_between(inner[firsts_inner], known.inner[known_inner], clustering.threshold)
    old_pairs = _unique_rows(
        [
            np.stack([firsts[on_dhash[:, 0]], on_dhash[:, 1]], axis=1),
            np.stack([firsts_inner[on_inner[:, 0]], known_inner[on_inner[:, 1]]], axis=1),
            _text_pairs(pending_hashes, firsts, known_hashes, np.arange(len(known.dhash)), clustering),
        ]
    )
    thumbs.load(known.creative_ids[np.unique(old_pairs[:, 1])].tolist())

    parent: dict[str, str] = {f"p:{k}": f"p:{k}" for k in firsts.tolist()}  # pending units and earlier components

    def find(node: str) -> str:
        root = node
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    def union(x: str, y: str) -> None:
        rx, ry = find(x), find(y)
        if rx != ry:
            parent[max(rx, ry)] = min(rx, ry)

    ids = [image.creative_id for image in pending]
    # The text the confirmations will need, read in one batch (the reader spreads it over the cores).
    thumbs.prefetch_texts(
        [(ids[i], ids[j]) for i, j in new_pairs.tolist()]
        + [(ids[i], str(known.creative_ids[k])) for i, k in old_pairs.tolist()]
    )
    for i, j in new_pairs.tolist():
        if find(f"p:{i}") != find(f"p:{j}") and thumbs.confirm(ids[i], ids[j]):
            union(f"p:{i}", f"p:{j}")
    touched: set[str] = set()  # earlier components a pending image is confirmed against (only these regroup)
    for i, k in old_pairs.tolist():
        component = str(known.component_ids[k])
        if find(f"p:{i}") != find(component) and thumbs.confirm(ids[i], str(known.creative_ids[k])):
            union(f"p:{i}", component)
            touched.add(component)

    # Every touched component: its pending images and all its earlier members, clustered again.
    clusters: dict[str, list[HashedImage]] = {}
    for k, image in enumerate(pending):
        clusters.setdefault(find(f"p:{unit[k]}"), []).append(image)
    earlier = sorted(touched)  # a candidate component that no pending image joined keeps its rows as they are
    old_rows: dict[str, tables.DuplicateGroup] = {}
    inner_of = {ids[k]: int(inner[k]) for k in range(n) if has_inner[k]}
    key_of = {ids[k]: int(keys[k]) for k in range(n) if has_key[k]}
    if earlier:
        if load_members is None:
            raise ValueError("regroup needs load_members when pending images join earlier components")
        for member in load_members(earlier):
            if member.image.creative_id in inner_of or member.row.component_id is None:
                continue  # pending again (re-analysed): its new facts count
            old_rows[member.image.creative_id] = member.row
            if member.row.inner_dhash is not None:
                inner_of[member.image.creative_id] = member.row.inner_dhash & _MASK64
            if member.row.text_key is not None and clustering.text_route:
                key_of[member.image.creative_id] = member.row.text_key
            clusters.setdefault(find(member.row.component_id), []).append(member.image)
    rows: list[tables.DuplicateGroup] = []
    for members in clusters.values():
        for row in _cluster_rows(members, clustering, thumbs, inner_of, key_of):
            if old_rows.get(row.creative_id) != row:
                rows.append(row)
    return rows


_MASK64 = 0xFFFF_FFFF_FFFF_FFFF


def _distinct(images: Sequence[HashedImage]) -> list[HashedImage]:
    """One image per creative id (the smallest content key wins), in rank order."""
    by_id: dict[str, HashedImage] = {}
    for image in images:
        known = by_id.get(image.creative_id)
        if known is None or _tiebreak(image) < _tiebreak(known):
            by_id[image.creative_id] = image
    return sorted(by_id.values(), key=rank_key)


def _tiebreak(image: HashedImage) -> tuple[str, int, str, int, int]:
    return (image.sha256, image.dhash, image.fine_thumb or "", image.width, image.height)


def _unique_rows(parts: list[np.ndarray]) -> np.ndarray:
    pairs = np.concatenate([p.reshape(-1, 2) for p in parts]).astype(np.int64)
    return np.unique(pairs, axis=0) if len(pairs) else pairs


def _cluster_rows(
    members: list[HashedImage],
    clustering: Clustering,
    thumbs: _ThumbCache,
    inner_of: dict[str, int],
    key_of: dict[str, int],
) -> list[tables.DuplicateGroup]:
    """The groups of one component of confirmed pairs, as rows: average linkage over its confirmed pairs (exact copies
    start together; two groups merge while the share of their cross pairs that are confirmed is at least
    ``link_share``, highest share first), or star clustering for a component over ``_MAX_LINKAGE`` images. The
    canonical of a group is its best-ranked image (:func:`rank_key`)."""
    members = sorted(members, key=rank_key)
    n = len(members)
    ids = [image.creative_id for image in members]
    leader = np.arange(n)
    if n > 1:
        dhash = np.fromiter((image.dhash & _MASK64 for image in members), np.uint64, n)
        use_inner = clustering.fine_threshold is not None
        in_component = _Hashes(
            dhash,
            np.fromiter((inner_of.get(i, 0) for i in ids), np.uint64, n),
            np.array([use_inner and i in inner_of for i in ids], bool),
            np.fromiter((key_of.get(i, 0) for i in ids), np.int64, n),
            np.array([i in key_of for i in ids], bool),
        )
        with_inner = np.flatnonzero(in_component.has_inner)
        # In a small component the finer check decides every pair within twice the threshold (a copy of a copy may
        # be far from the other copies in dHash; pairs further apart than that are unrelated images).
        wide = min(2 * clustering.threshold, 64) if n <= clustering.all_pairs_within else clustering.threshold
        everyone = np.arange(n)
        pairs = _unique_rows(
            [
                find_pairs(dhash, wide),
                with_inner[find_pairs(in_component.inner[with_inner], wide)],
                _text_pairs(in_component, everyone, in_component, everyone, clustering),
            ]
        ).tolist()
        first_with: dict[str, int] = {}
        exact = [(first_with.setdefault(image.sha256, k), k) for k, image in enumerate(members)]
        exact = [(i, j) for i, j in exact if i != j]
        if clustering.link_share is not None and n <= _MAX_LINKAGE:
            leader = _average_linkage(n, pairs, exact, lambda i, j: thumbs.confirm(ids[i], ids[j]), clustering)
        else:
            leader = _star(n, pairs, exact, lambda i, j: thumbs.confirm(ids[i], ids[j]))
    size = np.bincount(leader, minlength=n)
    component_id = f"k_{ids[0]}"
    dhash_all = np.fromiter((image.dhash & _MASK64 for image in members), np.uint64, n)
    distance = hamming(dhash_all, dhash_all[leader])
    return [
        tables.DuplicateGroup(
            creative_id=image.creative_id,
            group_id=f"g_{ids[leader[k]]}",
            canonical_creative_id=ids[leader[k]],
            hamming_to_canonical=int(distance[k]),
            is_canonical=bool(leader[k] == k),
            group_size=int(size[leader[k]]),
            component_id=component_id,
            sha256=image.sha256,
            inner_dhash=_signed(inner_of[image.creative_id]) if image.creative_id in inner_of else None,
            text_key=key_of.get(image.creative_id),
        )
        for k, image in enumerate(members)
    ]


class _Hashes(NamedTuple):
    """What candidate search reads of a list of images: both dHashes and the text key, with their masks."""

    dhash: np.ndarray  # uint64
    inner: np.ndarray  # uint64, valid where has_inner
    has_inner: np.ndarray  # bool
    keys: np.ndarray  # int64 text keys, valid where has_key
    has_key: np.ndarray  # bool


_TEXT_PAIR_CHUNK = 2_000_000  # same-key pairs held at once (a headline shared by many images is read in slices)


def _text_pairs(
    queries: _Hashes, query_rows: np.ndarray, index: _Hashes, index_rows: np.ndarray, clustering: Clustering
) -> np.ndarray:
    """Pairs ``(q, i)`` of ``query_rows`` x ``index_rows`` with the same text key and within
    ``clustering.text_candidate_bits`` on the image dHash or on the thumbnail dHash (where both have one). When both
    sides are the same list (pending images among themselves, one component), only ``q < i``. Exact: every such pair,
    found by sorting the index's keys and walking each query's run of equal keys, a slice of queries at a time."""
    if not clustering.text_route:
        return np.empty((0, 2), np.int64)
    same = queries is index
    q_rows = query_rows[queries.has_key[query_rows]]
    i_rows = index_rows[index.has_key[index_rows]]
    if not len(q_rows) or not len(i_rows):
        return np.empty((0, 2), np.int64)
    order = np.argsort(index.keys[i_rows], kind="stable")
    sorted_rows, sorted_keys = i_rows[order], index.keys[i_rows][order]
    q_keys = queries.keys[q_rows]
    lo = np.searchsorted(sorted_keys, q_keys, "left")
    counts = np.searchsorted(sorted_keys, q_keys, "right") - lo
    bits = clustering.text_candidate_bits
    found = []
    start = 0
    while start < len(q_rows):  # slices of queries holding at most _TEXT_PAIR_CHUNK candidate pairs
        total = np.cumsum(counts[start:])
        stop = start + max(1, int(np.searchsorted(total, _TEXT_PAIR_CHUNK, "right")))
        c = counts[start:stop]
        q = np.repeat(q_rows[start:stop], c)
        offset = np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c)
        i = sorted_rows[np.repeat(lo[start:stop], c) + offset]
        near = hamming(queries.dhash[q], index.dhash[i]) <= bits
        both_inner = queries.has_inner[q] & index.has_inner[i]
        near |= both_inner & (hamming(queries.inner[q], index.inner[i]) <= bits)
        if same:
            near &= q < i
        found.append(np.stack([q[near], i[near]], axis=1))
        start = stop
    return np.concatenate(found).astype(np.int64)


_MAX_LINKAGE = 1500  # images in one component clustered by average linkage (above: star clustering)


def _average_linkage(
    n: int,
    pairs: list[list[int]],
    exact: list[tuple[int, int]],
    confirm: Callable[[int, int], bool],
    clustering: Clustering,
) -> np.ndarray:
    """Each image's group leader (its best-ranked member; images are in rank order) by average linkage."""
    linked = np.zeros((n, n))
    for i, j in pairs:
        if confirm(i, j):
            linked[i, j] = linked[j, i] = 1.0
    label = np.arange(n)
    for i, j in exact:  # byte-identical images are one
        label[label == label[j]] = label[i]
    _, label = np.unique(label, return_inverse=True)
    k = int(label.max()) + 1
    membership = np.zeros((k, n))
    membership[label, np.arange(n)] = 1.0
    links = membership @ linked @ membership.T
    sizes = membership.sum(axis=1)
    alive = np.ones(k, bool)
    while True:
        share = links / np.outer(sizes, sizes)
        share[~alive] = -1.0
        share[:, ~alive] = -1.0
        np.fill_diagonal(share, -1.0)
        a, b = divmod(int(share.argmax()), k)  # the first (lowest-ranked leaders) of the highest shares
        if share[a, b] < clustering.link_share:
            break
        a, b = min(a, b), max(a, b)
        links[a] += links[b]
        links[:, a] += links[:, b]
        links[a, a] = 0.0
        sizes[a] += sizes[b]
        alive[b] = False
        label[label == b] = a
    leader = np.full(k, n)
    np.minimum.at(leader, label, np.arange(n))
    return leader[label]


def _star(
    n: int, pairs: list[list[int]], exact: list[tuple[int, int]], confirm: Callable[[int, int], bool]
) -> np.ndarray:
    """Star clustering in rank order: each image joins the best-ranked canonical it is confirmed against."""
    leader = np.arange(n)
    neighbours: dict[int, set[int]] = {}
    for i, j in [*pairs, *exact]:  # i < j: i ranks first
        neighbours.setdefault(j, set()).add(i)
    same = set(exact)
    for j in range(1, n):
        for i in sorted(neighbours.get(j, ())):
            if leader[i] == i and ((i, j) in same or confirm(i, j)):
                leader[j] = i
                break
    return leader


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


class _ThumbCache:
    """Stored thumbnails by creative id, decoded on demand (coarse planes first, the detail planes only for a pair
    that passes the coarse stage) and kept for the ``size`` most recently used; confirmations are remembered."""

    def __init__(
        self, loader: ThumbLoader, clustering: Clustering, size: int, read_texts: TextReader | None = None
    ) -> None:
        self._loader = loader
        self._read_texts = read_texts
        self._texts: dict[str, str | None] = {}  # what was read during this pass (never read twice)
        self.text_reads = 0  # images whose text was read (OCR) during this pass (for the bench and the tests)
        self._pixel_confirmed: dict[tuple[str, str], bool] = {}  # pixel decisions (prefetch, then confirm)
        self._clustering = clustering
        self._size = max(2, size)
        self._raw: dict[str, Stored] = {}
        self._decoded: OrderedDict[str, Thumb | None] = OrderedDict()
        self._confirmed: dict[tuple[str, str], bool] = {}
        self._layouts: OrderedDict[str, np.ndarray | None] = OrderedDict()  # 1 KiB each, 16 x the thumbnails
        self.decoded = 0  # thumbnails decoded (for the bench)

    def add(self, raw: dict[str, Stored]) -> None:
        self._raw.update(raw)

    def load(self, ids: Sequence[str]) -> None:
        missing = [i for i in ids if i not in self._raw]
        if missing:
            loaded = self._loader(missing)
            self._raw.update({i: v if isinstance(v, Stored) else Stored(v) for i, v in loaded.items()})

    def inner_hashes(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """:func:`inner_hash` of each (and whether there is one)."""
        inner = np.zeros(len(ids), np.uint64)
        present = np.zeros(len(ids), bool)
        for k, cid in enumerate(ids):
            value = inner_hash(self._raw.get(cid, _NOTHING).fine_thumb)
            if value is not None:
                inner[k], present[k] = value, True
        return inner, present

    def thumb(self, cid: str, *, detail: bool) -> Thumb | None:
        """The decoded thumbnail; the detail planes (the costly part) only when asked for."""
        cached = self._decoded.get(cid, _MISSING)
        if cached is not _MISSING and (cached is None or cached.detail is not None or cached.legacy or not detail):
            self._decoded.move_to_end(cid)
            return cached
        self.load([cid])
        raw = self._raw.get(cid, _NOTHING).fine_thumb
        thumb = load_thumb(raw, detail=detail) if raw else None
        self.decoded += 1
        self._decoded[cid] = thumb
        self._decoded.move_to_end(cid)
        if len(self._decoded) > self._size:
            self._decoded.popitem(last=False)
        return thumb

    def _layout(self, cid: str) -> np.ndarray | None:
        cached = self._layouts.get(cid, _MISSING_LAYOUT)
        if cached is _MISSING_LAYOUT:
            self.load([cid])
            cached = self._layouts[cid] = layout_vector(self._raw.get(cid, _NOTHING).fine_thumb)
            if len(self._layouts) > 16 * self._size:
                self._layouts.popitem(last=False)
        else:
            self._layouts.move_to_end(cid)
        return cached

    def confirm(self, a: str, b: str) -> bool:
        """Whether the finer check confirms the candidate pair (always, with the check off or without thumbnails):
        the coarse stage on the coarse planes, then the detail stage (legacy 64-px thumbnails: coarse alone)."""
        fine = self._clustering.fine_threshold
        if fine is None:
            return True
        key = (a, b) if a < b else (b, a)
        known = self._confirmed.get(key)
        if known is None:
            known = self._confirmed[key] = self._check(*key, fine)
        return known

    def text(self, cid: str) -> str | None:
        """The image's text record: stored, else read now through the reader (once per image: what it read is
        kept here, and the reader stores it), else ``None`` (no reader, or it could not read: no text evidence)."""
        self.load([cid])
        stored = self._raw.get(cid, _NOTHING).ocr_text
        if stored is not None or self._read_texts is None:
            return stored
        if cid not in self._texts:
            self._texts[cid] = self._read_texts([cid]).get(cid)
            self.text_reads += 1
        return self._texts[cid]

    def prefetch_texts(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Read, in one call to the reader, the text of every image without stored text in a candidate pair the pixel
        stages confirm (the pairs :meth:`confirm` will ask about): the reader can spread one batch over the cores,
        where one image at a time leaves a core idle. Reads nothing the lazy path would not read."""
        fine = self._clustering.fine_threshold
        if self._read_texts is None or not self._clustering.text_check or fine is None:
            return
        wanted: dict[str, None] = {}
        for a, b in pairs:
            key = (a, b) if a < b else (b, a)
            if key in self._confirmed or not self._pixels(key, fine):
                continue
            for cid in key:
                self.load([cid])
                if self._raw.get(cid, _NOTHING).ocr_text is None and cid not in self._texts:
                    wanted[cid] = None
        if wanted:
            found = self._read_texts(list(wanted))
            for cid in wanted:
                self._texts[cid] = found.get(cid)
            self.text_reads += len(wanted)

    def _pixels(self, key: tuple[str, str], fine: float) -> bool:
        known = self._pixel_confirmed.get(key)
        if known is None:
            known = self._pixel_confirmed[key] = self._pixels_confirm(*key, fine)
        return known

    @property
    def texts_read(self) -> dict[str, str | None]:
        """Texts read during this pass, by creative id."""
        return dict(self._texts)

    def _check(self, a: str, b: str, fine: float) -> bool:
        """Pixels first: a pair the pixel stages reject is decided without any text. A pair they confirm is a copy or
        a template sibling whose change is too small for pixels (a price, a headline): only then is the text of both
        images read (:meth:`text`, lazily) and compared."""
        if not self._pixels((a, b), fine):
            return False
        if self._clustering.text_check and texts_differ(self.text(a), self.text(b)):
            return False  # a line in the same place says something else: another price, headline, offer, CTA
        return True

    def _pixels_confirm(self, a: str, b: str, fine: float) -> bool:
        layout_a, layout_b = self._layout(a), self._layout(b)
        if layout_a is not None and layout_b is not None and float(layout_a @ layout_b) < LAYOUT_MIN_CORRELATION:
            return False  # unrelated images that met by dHash: rejected before any decode or alignment
        first, second = self.thumb(a, detail=False), self.thumb(b, detail=False)
        if first is None or second is None:
            return True  # no thumbnail, or the oldest 32 x 32 format: the dHash candidate stands
        if _content_key(second) < _content_key(first):  # a fixed order by content: the check is symmetric
            (a, first), (b, second) = (b, second), (a, first)
        alignment = _align(first.coarse, second.coarse)
        coarse = _coarse_score(first.coarse, second.coarse, alignment)
        if first.legacy or second.legacy:
            return coarse <= LEGACY_FINE_DIFF  # a 64-px thumbnail (before the detail stage): coarse alone
        if coarse > self._clustering.coarse_reject:
            return False
        first, second = self.thumb(a, detail=True), self.thumb(b, detail=True)
        assert first is not None and second is not None
        return _detail_score(first, second, alignment) <= fine


_MISSING = Thumb(np.empty(0))
_MISSING_LAYOUT = np.empty(0)
_NOTHING = Stored(None)
