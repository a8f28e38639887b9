"""Near-duplicate groups: multi-index hashing over 64-bit dHashes finds candidates, a finer check confirms them.

Grouping is a pure function of the *set* of images (input order never matters): images are ordered by
``(first_seen, creative_id)``, candidate pairs come from :func:`find_pairs` and are confirmed by the finer check; in
that order each creative joins the earliest canonical it is confirmed against (star clustering, so no chains), or
becomes a canonical itself. Equal sha256 always share a group. ``group_id`` is
``"g_" + canonical creative_id``, so a group keeps its id while it grows. The media task calls
:func:`group_duplicates` with every hash known so far; a backfill of three single days therefore ends with the same
groups as one run over the three days.

Scale: candidates come from :func:`adpipeline.media.hamming.find_pairs` (multi-index hashing, no all-pairs scan).

The finer check has two stages (media README, "Near-duplicates"): :func:`fine_difference` on the 64-px thumbnail
(a fast reject, or the whole check for thumbnails stored before the 128-px detail existed), then
:func:`detail_difference` on the aligned 128-px luma and 64-px chroma, normalised by local contrast.
"""

from __future__ import annotations

import base64
import datetime as dt
import zlib
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from adpipeline import tables
from adpipeline.media.hamming import all_pairs_baseline, find_pairs, hamming

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

DEFAULT_FINE_DIFF = 0.55  # detail_difference limit (contrast-normalised); measured on the labelled set (media README)
COARSE_REJECT = 16.0  # fine_difference above this (grey levels) rejects a pair before the detail stage
LEGACY_FINE_DIFF = 10.0  # fine_difference limit when a thumbnail has no detail part (stored before the 128-px format)


class HashedImage(NamedTuple):
    """One image as the grouping sees it. ``dhash`` may be the signed INT64 from the table or the unsigned value."""

    creative_id: str
    sha256: str
    dhash: int
    first_seen: dt.date
    fine_thumb: str | None = None  # ImageHash.fine_thumb; without it a candidate pair is confirmed by dHash alone


class Thumb(NamedTuple):
    """A decoded ``fine_thumb``: ``coarse`` (luma, Cb, Cr at 64 x 64, for :func:`fine_difference`) and, for the
    current format, ``detail`` (luma at 128 x 128 and Cb/Cr upsampled from 64, blurred) with ``spread`` (each plane's
    local standard deviation, 5 x 5) for :func:`detail_difference`; both ``None`` for the older 64-px format."""

    coarse: np.ndarray
    detail: np.ndarray | None = None
    spread: np.ndarray | None = None


# --- the finer check ------------------------------------------------------------------------------
_FINE = 64  # luma side of a decoded thumbnail (chroma is stored at half and upsampled)
_CROPS = np.arange(0.0, 0.0801, 0.005)  # crop share per side searched when aligning (2-5 % crops, frame leftovers)
_BLOCK, _STRIDE = 4, 2  # blocks of the localized difference statistic
_DETAIL = 128  # luma side of the detail planes (chroma stored at 64 and upsampled)
_DETAIL_SIGMA, _DETAIL_CHROMA_SIGMA = 0.7, 1.0  # blur of the detail planes (resize and JPEG noise)
_SPREAD_WINDOW = 5  # local standard deviation window (detail pixels)
_DETAIL_FLOOR = np.array([4.0, 12.0, 12.0])[:, None, None]  # levels added to the local spread: luma, Cb, Cr
_DETAIL_BLOCK, _DETAIL_STRIDE = 8, 4


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
_BIT_WEIGHTS = np.uint64(1) << np.arange(63, -1, -1, dtype=np.uint64)


def decode_thumb(fine_thumb: str) -> np.ndarray | None:
    """The coarse planes (luma, Cb, Cr; 64 x 64 float, lightly blurred) of a stored thumbnail; ``None`` for the oldest
    32 x 32 grey format."""
    thumb = load_thumb(fine_thumb)
    return None if thumb is None else thumb.coarse


def load_thumb(fine_thumb: str) -> Thumb | None:
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
        return Thumb(_coarse(luma, chroma))
    if raw.size != _DETAIL * _DETAIL + 2 * _FINE * _FINE:
        raise ValueError(f"fine_thumb holds {raw.size} bytes, expected {_DETAIL * _DETAIL + 2 * _FINE * _FINE}")
    luma = raw[: _DETAIL * _DETAIL].reshape(_DETAIL, _DETAIL).astype(np.float64)
    chroma = raw[_DETAIL * _DETAIL :].reshape(2, _FINE, _FINE).astype(np.float64)
    coarse = _coarse(_halve(luma), _halve(chroma))
    from scipy.ndimage import gaussian_filter, uniform_filter

    detail = np.stack(
        [gaussian_filter(luma, _DETAIL_SIGMA)]
        + [gaussian_filter(plane.repeat(2, 0).repeat(2, 1), _DETAIL_CHROMA_SIGMA) for plane in chroma]
    )
    mean = uniform_filter(detail, (1, _SPREAD_WINDOW, _SPREAD_WINDOW))
    square = uniform_filter(detail * detail, (1, _SPREAD_WINDOW, _SPREAD_WINDOW))
    spread = np.sqrt(np.maximum(square - mean * mean, 0.0))
    return Thumb(coarse, detail, spread)


def _halve(planes: np.ndarray) -> np.ndarray:
    """2 x 2 area average over the last two axes."""
    *lead, h, w = planes.shape
    return planes.reshape(*lead, h // 2, 2, w // 2, 2).mean(axis=(-3, -1))


def _coarse(luma: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    chroma = chroma.repeat(2, axis=1).repeat(2, axis=2)
    return _blur(np.concatenate([luma[None], chroma]))


def _blur(planes: np.ndarray) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return np.stack([gaussian_filter(planes[0], 0.7), gaussian_filter(planes[1], 1.4), gaussian_filter(planes[2], 1.4)])


def thumb_hash(thumb: np.ndarray) -> int:
    """A 64-bit dHash of a decoded thumbnail's luma: like the image dHash, but of the image inside its frame."""
    cells = _HASH_ROWS @ thumb[0] @ _HASH_COLS.T
    bits = (cells[:, 1:] > cells[:, :-1]).ravel()
    return int(np.bitwise_or.reduce(np.where(bits, _BIT_WEIGHTS, np.uint64(0))))


def _profile_errors(source: np.ndarray, target: np.ndarray) -> tuple[int, int, float]:
    # every resampling matrix has two taps per row: gather them instead of 289 matrix products
    px, py = source[0, _BAND].mean(0), source[0, :, _BAND].mean(1)
    errors_x = np.abs(px[_TAP0] * _TAP_W0 + px[_TAP1] * _TAP_W1 - target[0, _BAND].mean(0)).mean(1)
    errors_y = np.abs(py[_TAP0] * _TAP_W0 + py[_TAP1] * _TAP_W1 - target[0, :, _BAND].mean(1)).mean(1)
    kx, ky = int(errors_x.argmin()), int(errors_y.argmin())
    return kx, ky, float(errors_x[kx] + errors_y[ky])


def _align(a: np.ndarray, b: np.ndarray) -> tuple[bool, int, int]:
    """Which coarse thumbnail to warp onto the other (``True``: ``a`` onto ``b``) and the column/row crop indices."""
    fx, fy, forward_error = _profile_errors(a, b)
    bx, by, backward_error = _profile_errors(b, a)
    if forward_error <= backward_error:
        return True, fx, fy
    return False, bx, by


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


def fine_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Localized difference of two decoded coarse thumbnails after alignment: the largest mean over 4 x 4 blocks
    (stride 2) of the per-pixel largest luma/chroma difference, leaving out the one corner (a quarter of each side)
    that differs most.

    Alignment crops and rescales one thumbnail per axis (searched on luma row/column profiles taken over the middle
    half, so a corner badge does not pull it) to match the other, both ways round: that undoes a small crop (one is
    a crop of the other) or what frame removal left of a border. A badge sits in one corner; a changed price,
    headline, offer (digit) or product colour shows up as a block elsewhere.
    """
    forward, kx, ky = _align(a, b)
    source, target = (a, b) if forward else (b, a)
    warped = _MATRICES[ky] @ source @ _MATRICES[kx].T
    return _worst_block(np.abs(warped - target).max(axis=0), _BLOCK, _STRIDE)


def _warp_detail(planes: np.ndarray, kx: int, ky: int) -> np.ndarray:
    """:func:`_resample_matrix` crop/rescale at the detail size, as two-tap gathers (rows, then columns)."""
    rows = planes[:, _DTAP0[ky], :] * _DTAP_W0[ky][:, None] + planes[:, _DTAP1[ky], :] * _DTAP_W1[ky][:, None]
    return rows[:, :, _DTAP0[kx]] * _DTAP_W0[kx] + rows[:, :, _DTAP1[kx]] * _DTAP_W1[kx]


def detail_difference(a: Thumb, b: Thumb) -> float:
    """Contrast-normalised localized difference of two current-format thumbnails (both must have ``detail``).

    The coarse alignment (:func:`fine_difference`) is applied to the 128-px planes; per pixel and plane the absolute
    difference is divided by the larger local standard deviation of the two images plus a floor (4 luma levels, 12
    chroma levels), the largest plane is kept, and the worst 8 x 8 block mean (stride 4, one corner left out) is the
    score. A changed glyph differs by about its own contrast where the spread is about half that (a ratio near 2 over
    the glyph, whatever its contrast: red on dark blue counts like white on black); resize, JPEG and sub-pixel
    misalignment differ by a small share of the spread along edges only.
    """
    if a.detail is None or b.detail is None or a.spread is None or b.spread is None:
        raise ValueError("detail_difference needs two current-format thumbnails")
    forward, kx, ky = _align(a.coarse, b.coarse)
    source, target = (a, b) if forward else (b, a)
    assert source.detail is not None and source.spread is not None  # narrowed above
    warped = _warp_detail(source.detail, kx, ky)
    spread = np.maximum(_warp_detail(source.spread, kx, ky), target.spread) + _DETAIL_FLOOR
    ratio = (np.abs(warped - target.detail) / spread).max(axis=0)
    return _worst_block(ratio, _DETAIL_BLOCK, _DETAIL_STRIDE)


def pair_difference(a: Thumb, b: Thumb) -> tuple[float, float | None]:
    """Both stages for one pair: ``(fine_difference, detail_difference or None)``; the detail stage is skipped (None)
    when either thumbnail lacks it or the coarse stage already rejects (above ``COARSE_REJECT``)."""
    coarse = fine_difference(a.coarse, b.coarse)
    if a.detail is None or b.detail is None or coarse > COARSE_REJECT:
        return coarse, None
    return coarse, detail_difference(a, b)


# --- grouping -------------------------------------------------------------------------------------
def group_duplicates(
    images: Sequence[HashedImage], threshold: int, *, fine_threshold: float | None = DEFAULT_FINE_DIFF
) -> list[tables.DuplicateGroup]:
    """One :class:`~adpipeline.tables.DuplicateGroup` row per distinct creative (singletons are groups of one).

    ``threshold`` is the dHash Hamming distance that makes a candidate pair; ``fine_threshold`` the limit of
    :func:`detail_difference` (``None`` turns the finer check off). A pair must also pass :func:`fine_difference`
    <= ``COARSE_REJECT``; where either thumbnail is the older 64-px format, :func:`fine_difference` <=
    ``LEGACY_FINE_DIFF`` alone decides, and without a thumbnail (or with the oldest format) the dHash candidate
    stands. Rows come sorted by ``(group_id, creative_id)``.
    """
    by_id: dict[str, HashedImage] = {}
    for image in images:
        known = by_id.get(image.creative_id)
        if known is None or _tiebreak(image) < _tiebreak(known):
            by_id[image.creative_id] = image
    items = sorted(by_id.values(), key=lambda im: (im.first_seen, im.creative_id))
    n = len(items)
    if n == 0:
        return []
    hashes = np.fromiter((im.dhash & 0xFFFF_FFFF_FFFF_FFFF for im in items), dtype=np.uint64, count=n)
    edges: list[np.ndarray] = []

    # Exact copies: same sha256. Also collapse equal (dhash, thumbnail) pairs: the finer check would confirm them.
    for key_of in (lambda im: im.sha256, lambda im: (im.dhash, im.fine_thumb) if im.fine_thumb else None):
        first_index: dict[object, int] = {}
        for index, image in enumerate(items):
            key = key_of(image)
            if key is None:
                continue
            seen = first_index.setdefault(key, index)
            if seen != index:
                edges.append(np.array([[seen, index]]))
    representative = _representatives(n, edges)
    reps = np.unique(representative)

    # Candidates: the image dHash, and the same hash of the thumbnail (taken inside any frame, so bordered copies
    # are found too). Both within ``threshold`` bits.
    thumbs: dict[int, Thumb | None] = {}
    if fine_threshold is not None:
        thumbs = {int(i): load_thumb(items[i].fine_thumb) if items[i].fine_thumb else None for i in reps}
    found = [reps[find_pairs(hashes[reps], threshold)]]
    coarse = {i: thumb.coarse for i, thumb in thumbs.items() if thumb is not None}
    with_thumb = np.array([i for i in reps.tolist() if i in coarse], dtype=np.int64)
    if len(with_thumb) > 1:
        inner = np.fromiter((thumb_hash(coarse[i]) for i in with_thumb.tolist()), np.uint64, len(with_thumb))
        found.append(with_thumb[find_pairs(inner, threshold)])
    codes = np.unique(np.concatenate([pairs[:, 0] * n + pairs[:, 1] for pairs in found]))
    candidates = np.stack([codes // n, codes % n], axis=1)
    leader = np.arange(n)
    if len(candidates):
        first, second = candidates[:, 0], candidates[:, 1]
        confirmed = _confirm(thumbs, first, second, fine_threshold)
        first, second = first[confirmed], second[confirmed]
        # Star clustering in (first_seen, creative_id) order: a creative joins the earliest canonical it is
        # confirmed against, and never a chain (A~B, B~C does not put C with A). Still a function of the set alone.
        order = np.lexsort((first, second))
        later, earlier = second[order].tolist(), first[order].tolist()
        for k, i in enumerate(later):
            j = earlier[k]
            if leader[i] == i and leader[j] == j and j < i:
                leader[i] = j
    # exact copies follow their earliest copy's canonical
    canon_of = leader[representative]
    labels = canon_of
    size = np.bincount(labels, minlength=n)
    distance = hamming(hashes, hashes[canon_of])
    rows = [
        tables.DuplicateGroup(
            creative_id=image.creative_id,
            group_id=f"g_{items[canon_of[index]].creative_id}",
            canonical_creative_id=items[canon_of[index]].creative_id,
            hamming_to_canonical=int(distance[index]),
            is_canonical=bool(canon_of[index] == index),
            group_size=int(size[labels[index]]),
        )
        for index, image in enumerate(items)
    ]
    rows.sort(key=lambda row: (row.group_id, row.creative_id))
    return rows


def _tiebreak(image: HashedImage) -> tuple[dt.date, str, int, str]:
    return (image.first_seen, image.sha256, image.dhash, image.fine_thumb or "")


def _confirm(
    thumbs: dict[int, Thumb | None], first: np.ndarray, second: np.ndarray, fine_threshold: float | None
) -> np.ndarray:
    if fine_threshold is None:
        return np.ones(len(first), dtype=bool)
    confirmed = np.zeros(len(first), dtype=bool)
    for k, (i, j) in enumerate(zip(first.tolist(), second.tolist(), strict=True)):
        a, b = thumbs.get(i), thumbs.get(j)
        if a is None or b is None:
            confirmed[k] = True  # no thumbnail, or the oldest 32 x 32 format: the dHash candidate stands
            continue
        coarse, detail = pair_difference(a, b)
        if a.detail is None or b.detail is None:
            confirmed[k] = coarse <= LEGACY_FINE_DIFF  # a 64-px thumbnail (before the detail stage): coarse alone
        else:
            confirmed[k] = detail is not None and detail <= fine_threshold
    return confirmed


def _representatives(n: int, edges: list[np.ndarray]) -> np.ndarray:
    labels = _components(n, edges)
    first = np.full(n, n, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(n))
    return first[labels]


def _components(n: int, edges: list[np.ndarray]) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    pairs = np.concatenate(edges) if edges else np.empty((0, 2), dtype=np.int64)
    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels
