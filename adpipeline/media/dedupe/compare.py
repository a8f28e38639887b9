"""Registration and comparison of two thumbnails (the pixel stages of the finer check).

:func:`align` registers one thumbnail on the other (a crop/rescale per axis, then a photometric fit per plane);
the **coarse** stage (:func:`coarse_difference`, grey levels on the 64-px planes) rejects clearly different pairs
cheaply; the **detail** stage (:func:`detail_difference`, units of local contrast on the 128-px planes) decides the
rest. :func:`pair_difference` runs both with one alignment, as the grouping does.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from adpipeline.media.dedupe.model import COARSE_REJECT
from adpipeline.media.dedupe.thumbnails import COARSE, DETAIL, Thumb

_CROPS = np.arange(0.0, 0.0801, 0.005)  # crop share per side searched when aligning (2-5 % crops, frame leftovers)
_BLOCK, _STRIDE = 4, 2  # blocks of the localized difference statistic

_DETAIL_FLOOR = np.array([4.0, 8.0, 8.0])[:, None, None]  # levels added to the local spread: luma, Cb, Cr
_DETAIL_BLOCK, _DETAIL_STRIDE = 8, 4
_GAIN_RANGE = (1 / 1.5, 1.5)  # per-plane gain the photometric fit may use
_FLAT_VARIANCE = 4.0  # grey levels squared: a plane flatter than this gets gain 1
_NEUTRAL = 128.0  # Cb / Cr of grey: chroma gains scale about it
_CLIP_HIGH, _CLIP_LOW = 250.0, 5.0  # luma levels taken as saturated (white / black) by a brightness or contrast change


def _resample_matrix(left: float, right: float, n: int = COARSE) -> np.ndarray:
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


def _taps(left: float, right: float, n: int = COARSE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two taps and the first tap's weight of each row of :func:`_resample_matrix`."""
    x = np.clip((left + (np.arange(n) + 0.5) / n * (1.0 - left - right)) * n - 0.5, 0, n - 1)
    i0 = np.floor(x).astype(int)
    return i0, np.minimum(i0 + 1, n - 1), 1.0 - (x - i0)


_TAPS = [_taps(lo, hi) for lo in _CROPS for hi in _CROPS]
_TAP0, _TAP1, _TAP_W0 = (np.stack([taps[k] for taps in _TAPS]) for k in range(3))
_TAP_W1 = 1.0 - _TAP_W0
_BAND = slice(COARSE // 4, COARSE - COARSE // 4)  # profiles are taken over the middle half: corners hold badges
_DTAPS = [_taps(lo, hi, DETAIL) for lo in _CROPS for hi in _CROPS]
_DTAP0, _DTAP1, _DTAP_W0 = (np.stack([taps[k] for taps in _DTAPS]) for k in range(3))
_DTAP_W1 = 1.0 - _DTAP_W0


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


class Alignment(NamedTuple):
    """How to map one thumbnail onto the other: ``forward`` (``a`` onto ``b``, else ``b`` onto ``a``), the column/row
    crop indices, and per plane the gain and offset that undo a brightness / contrast change."""

    forward: bool
    kx: int
    ky: int
    gain: np.ndarray
    offset: np.ndarray


def align(a: np.ndarray, b: np.ndarray) -> Alignment:
    """Align two coarse thumbnails: the crop/rescale (searched both ways round on luma profiles, the lower error
    wins), then a per-plane gain and offset fitted on the warped planes (:func:`_photometric`)."""
    fx, fy, forward_error = _profile_errors(a, b)
    bx, by, backward_error = _profile_errors(b, a)
    forward = forward_error <= backward_error
    kx, ky = (fx, fy) if forward else (bx, by)
    source, target = (a, b) if forward else (b, a)
    gain, offset = _photometric(_MATRICES[ky] @ source @ _MATRICES[kx].T, target)
    return Alignment(forward, kx, ky, gain, offset)


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


def coarse_score(a: np.ndarray, b: np.ndarray, alignment: Alignment) -> float:
    source, target = (a, b) if alignment.forward else (b, a)
    warped = _MATRICES[alignment.ky] @ source @ _MATRICES[alignment.kx].T
    matched = warped * alignment.gain[:, None, None] + alignment.offset[:, None, None]
    return _worst_block(_residual(warped, matched, target).max(axis=0), _BLOCK, _STRIDE)


def coarse_difference(a: np.ndarray, b: np.ndarray) -> float:
    """The coarse stage: localized difference of two thumbnails' coarse planes (64 px) after alignment: the largest
    mean over 4 x 4 blocks (stride 2) of the per-pixel largest luma/chroma difference, leaving out the one corner (a
    quarter of each side) that differs most.

    Alignment crops and rescales one thumbnail per axis (searched on luma row/column profiles taken over the middle
    half, so a corner badge does not pull it) to match the other, both ways round: that undoes a small crop (one is
    a crop of the other) or what frame removal left of a border; a per-plane gain and offset then undo a global
    brightness or contrast change. A badge sits in one corner; a changed price, headline, offer (digit) or product
    colour shows up as a block elsewhere.
    """
    return coarse_score(a, b, align(a, b))


def _warp_detail(planes: np.ndarray, kx: int, ky: int) -> np.ndarray:
    """:func:`_resample_matrix` crop/rescale at the detail size, as two-tap gathers (rows, then columns)."""
    rows = planes[:, _DTAP0[ky], :] * _DTAP_W0[ky][:, None] + planes[:, _DTAP1[ky], :] * _DTAP_W1[ky][:, None]
    return rows[:, :, _DTAP0[kx]] * _DTAP_W0[kx] + rows[:, :, _DTAP1[kx]] * _DTAP_W1[kx]


def detail_score(a: Thumb, b: Thumb, alignment: Alignment) -> float:
    source, target = (a, b) if alignment.forward else (b, a)
    if source.detail is None or source.spread is None or target.detail is None or target.spread is None:
        raise ValueError("detail_difference needs two thumbnails decoded with their detail planes")
    gain = alignment.gain[:, None, None]
    plain = _warp_detail(source.detail, alignment.kx, alignment.ky)
    warped = plain * gain + alignment.offset[:, None, None]
    spread = np.maximum(_warp_detail(source.spread, alignment.kx, alignment.ky) * gain, target.spread)
    ratio = (_residual(plain, warped, target.detail) / (spread + _DETAIL_FLOOR)).max(axis=0)
    return _worst_block(ratio, _DETAIL_BLOCK, _DETAIL_STRIDE)


def detail_difference(a: Thumb, b: Thumb) -> float:
    """The detail stage: contrast-normalised localized difference of two thumbnails decoded with ``detail``.

    The coarse alignment (:func:`coarse_difference`: crop/rescale, then gain and offset per plane) is applied to the
    128-px planes; per pixel and plane the absolute difference is divided by the larger local standard deviation of
    the two images plus a floor (4 luma levels, 8 chroma levels), the largest plane is kept, and the worst 8 x 8
    block mean (stride 4, one corner left out) is the score. A changed glyph differs by about its own contrast where
    the spread is about half that (a ratio near 2 over the glyph, whatever its contrast: red on dark blue counts like
    white on black); resize, JPEG and sub-pixel misalignment differ by a small share of the spread along edges only.
    """
    return detail_score(a, b, align(a.coarse, b.coarse))


def pair_difference(a: Thumb, b: Thumb, *, coarse_reject: float = COARSE_REJECT) -> tuple[float, float | None]:
    """Both stages for one pair: ``(coarse_difference, detail_difference or None)``; the detail stage is skipped
    (None) when either thumbnail was decoded without it or the coarse stage already rejects (above ``coarse_reject``).
    Symmetric: the pair is taken in a fixed order of its contents, so ``(a, b)`` and ``(b, a)`` score the same."""
    if content_key(b) < content_key(a):
        a, b = b, a
    alignment = align(a.coarse, b.coarse)
    coarse = coarse_score(a.coarse, b.coarse, alignment)
    if a.detail is None or b.detail is None or coarse > coarse_reject:
        return coarse, None
    return coarse, detail_score(a, b, alignment)


def content_key(thumb: Thumb) -> bytes:
    return thumb.coarse.tobytes()
