"""Near-duplicate groups: multi-index hashing over 64-bit dHashes finds candidates, a finer check confirms them.

Grouping is a pure function of the *set* of images (input order never matters): images are ordered by
``(first_seen, creative_id)``, candidate pairs come from :func:`find_pairs` and are confirmed by the finer check; in
that order each creative joins the earliest canonical it is confirmed against (star clustering, so no chains), or
becomes a canonical itself. Equal sha256 always share a group. ``group_id`` is
``"g_" + canonical creative_id``, so a group keeps its id while it grows. The media task calls
:func:`group_duplicates` with every hash known so far; a backfill of three single days therefore ends with the same
groups as one run over the three days.

Scale: :func:`find_pairs` splits the 64 bits into ``m`` chunks; two hashes within Hamming distance ``t`` agree within
``t // m`` bits on at least one chunk (pigeonhole), so each chunk is searched by enumerating the few flip masks of
that weight over a direct-address table of the chunk values. No all-pairs scan; memory grows with ``n`` plus a
bounded working batch.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from itertools import combinations
from typing import NamedTuple

import numpy as np

from adpipeline import tables

DEFAULT_FINE_DIFF = 10.0  # grey levels; measured on the labelled set (media README)
_BRUTE_FORCE_BELOW = 2048
_MAX_CHUNK_BITS = 22  # direct-address table of 2**22 int32 = 16 MiB
_WORK_ELEMENTS = 4_000_000  # elements per working batch: bounds the memory of one step (~100 MiB)


class HashedImage(NamedTuple):
    """One image as the grouping sees it. ``dhash`` may be the signed INT64 from the table or the unsigned value."""

    creative_id: str
    sha256: str
    dhash: int
    first_seen: dt.date
    fine_thumb: str | None = None  # ImageHash.fine_thumb; without it a candidate pair is confirmed by dHash alone


# --- candidate search -----------------------------------------------------------------------------
def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise Hamming distance of two uint64 arrays."""
    return np.bitwise_count(np.bitwise_xor(a, b))


def find_pairs(hashes: np.ndarray, threshold: int) -> np.ndarray:
    """All index pairs ``(i, j)``, ``i < j``, whose hashes are within ``threshold`` bits; shape (k, 2), sorted.

    Exact: the same pairs as the all-pairs scan. Equal hashes are pairs too, so callers with many copies of one hash
    should collapse them first (as :func:`group_duplicates` does).
    """
    values = np.ascontiguousarray(np.asarray(hashes).astype(np.uint64, copy=False))
    n = len(values)
    if n < 2:
        return np.empty((0, 2), dtype=np.int64)
    if n < _BRUTE_FORCE_BELOW:
        return _brute_force_pairs(values, threshold)
    chunks, radius = _plan(n, threshold)
    found: list[np.ndarray] = []
    # numpy releases the GIL in these loops, so the chunks run side by side on the cores there are.
    with ThreadPoolExecutor(max_workers=min(len(chunks), os.cpu_count() or 1)) as pool:
        for pairs in pool.map(lambda chunk: _chunk_pairs(values, chunk[0], chunk[1], radius, threshold), chunks):
            found.extend(pairs)
    found = [np.sort(pairs, axis=1) for pairs in found]
    return _unique_pairs(found, n)


def all_pairs_baseline(hashes: np.ndarray, threshold: int) -> np.ndarray:
    """The naive scan (every pair), kept for the bench's comparison and the tests' oracle."""
    return _brute_force_pairs(np.asarray(hashes).astype(np.uint64, copy=False), threshold)


def _brute_force_pairs(values: np.ndarray, threshold: int) -> np.ndarray:
    n = len(values)
    found: list[np.ndarray] = []
    rows = max(1, _WORK_ELEMENTS // max(1, n))
    for start in range(0, n, rows):
        block = values[start : start + rows]
        distance = hamming(block[:, None], values[None, :])
        i, j = np.nonzero(distance <= threshold)
        i = i + start
        keep = i < j
        found.append(np.stack([i[keep], j[keep]], axis=1))
    return _unique_pairs(found, n)


def _unique_pairs(found: list[np.ndarray], n: int) -> np.ndarray:
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.concatenate(found).astype(np.int64)
    codes = np.unique(pairs[:, 0] * n + pairs[:, 1])
    return np.stack([codes // n, codes % n], axis=1)


def _plan(n: int, threshold: int) -> tuple[list[tuple[int, int]], int]:
    """Pick the chunk count whose estimated work (probes x (table + expected candidates)) is lowest."""
    best: tuple[float, int] | None = None
    for m in range(3, 65):
        bits = math.ceil(64 / m)
        if bits > _MAX_CHUNK_BITS:
            continue
        radius = threshold // m
        probes = m * sum(math.comb(bits, k) for k in range(radius + 1))
        cost = probes * (min(n, 2**bits) + n * n / 2**bits)
        if best is None or cost < best[0]:
            best = (cost, m)
        if radius == 0:
            break
    assert best is not None
    m = best[1]
    edges = np.linspace(0, 64, m + 1).round().astype(int)
    return [(int(lo), int(hi - lo)) for lo, hi in zip(edges[:-1], edges[1:], strict=True)], threshold // m


@lru_cache(maxsize=64)
def _flip_masks(bits: int, radius: int) -> np.ndarray:
    masks = [sum(1 << b for b in combo) for k in range(1, radius + 1) for combo in combinations(range(bits), k)]
    return np.asarray(masks, dtype=np.int64)


def _chunk_pairs(values: np.ndarray, lo: int, bits: int, radius: int, threshold: int) -> list[np.ndarray]:
    """Pairs within ``threshold`` among those whose chunk ``[lo, lo + bits)`` differs in at most ``radius`` bits."""
    keys = ((values >> np.uint64(lo)) & np.uint64((1 << bits) - 1)).astype(np.int32)
    order = np.argsort(keys, kind="stable")
    sorted_keys, sorted_hashes = keys[order], values[order]
    counts = np.bincount(sorted_keys, minlength=1 << bits)
    starts = np.zeros((1 << bits) + 1, dtype=np.int32)  # items with chunk value v sit at starts[v]:starts[v + 1]
    np.cumsum(counts, out=starts[1:])
    found: list[np.ndarray] = []
    crowded = np.flatnonzero(counts > 1)  # mask 0: pairs inside one bucket
    for first, second in _expand(order, starts, counts, crowded, crowded, same_bucket=True):
        close = hamming(values[first], values[second]) <= threshold
        found.append(np.stack([first[close], second[close]], axis=1))
    if radius == 0:
        return found
    # A value v and its partner v ^ mask form each unordered pair once when v has a 0 at the mask's highest bit, so
    # only those items are probed: half the work, and no duplicate pairs to filter.
    by_high_bit: dict[int, list[int]] = {}
    for mask in _flip_masks(bits, radius).tolist():
        by_high_bit.setdefault(mask.bit_length() - 1, []).append(mask)
    for high, masks in sorted(by_high_bit.items()):
        probe_at = np.flatnonzero(((sorted_keys >> high) & 1) == 0)
        probe_keys = sorted_keys[probe_at]
        probe_hashes = sorted_hashes[probe_at]
        partner = np.empty_like(probe_keys)
        begin = np.empty(len(probe_keys), dtype=np.int32)
        end = np.empty(len(probe_keys), dtype=np.int32)
        for mask in masks:
            np.bitwise_xor(probe_keys, mask, out=partner)
            np.take(starts, partner, out=begin)
            partner += 1
            np.take(starts, partner, out=end)
            end -= begin
            active = np.flatnonzero(end)
            slot = 0
            while len(active):  # the k-th member of each partner bucket; most buckets hold one
                at = begin[active] + slot
                near = np.flatnonzero(hamming(probe_hashes[active], sorted_hashes[at]) <= threshold)
                if len(near):
                    found.append(np.stack([order[probe_at[active[near]]], order[at[near]]], axis=1))
                slot += 1
                active = active[end[active] > slot]
    return found


def _expand(
    order: np.ndarray, start: np.ndarray, count: np.ndarray, a: np.ndarray, b: np.ndarray, *, same_bucket: bool
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Cross product of the members of bucket ``a[k]`` and bucket ``b[k]``, in batches of bounded size."""
    if len(a) == 0:
        return
    ca, cb = count[a], count[b]
    sizes = ca * cb
    ends = np.cumsum(sizes)
    k0 = 0
    while k0 < len(a):
        # take buckets until the batch holds about _WORK_ELEMENTS candidates (at least one bucket pair)
        limit = (ends[k0 - 1] if k0 else 0) + _WORK_ELEMENTS
        k1 = max(k0 + 1, int(np.searchsorted(ends, limit, side="right")))
        sub_sizes = sizes[k0:k1]
        rep = np.repeat(np.arange(k0, k1), sub_sizes)
        offset = np.arange(len(rep)) - np.repeat(np.cumsum(sub_sizes) - sub_sizes, sub_sizes)
        width = cb[rep]
        first = order[start[a[rep]] + offset // width]
        second = order[start[b[rep]] + offset % width]
        if same_bucket:
            keep = offset // width < offset % width
            first, second = first[keep], second[keep]
        low, high = np.minimum(first, second), np.maximum(first, second)
        yield low, high
        k0 = k1


# --- the finer check ------------------------------------------------------------------------------
_FINE = 32
_CROPS = np.arange(0.0, 0.081, 0.01)  # crop share per side searched when aligning (covers 2-5 % crops, borders)


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
_CORNER = _FINE // 4
_INTERIOR = np.ones((_FINE, _FINE), dtype=bool)
for _ys in (slice(0, _CORNER), slice(_FINE - _CORNER, _FINE)):
    for _xs in (slice(0, _CORNER), slice(_FINE - _CORNER, _FINE)):
        _INTERIOR[_ys, _xs] = False


def decode_thumb(fine_thumb: str) -> np.ndarray:
    data = np.frombuffer(base64.b64decode(fine_thumb), dtype=np.uint8)
    if data.size != _FINE * _FINE:
        raise ValueError(f"fine_thumb holds {data.size} bytes, expected {_FINE * _FINE}")
    return _blur(data.reshape(_FINE, _FINE).astype(np.float64))


def _blur(image: np.ndarray) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(image, 0.8)


def _align(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """Crop-and-rescale ``source`` per axis (searched on the row and column mean profiles) to best match ``target``."""
    errors_x = np.abs(_MATRICES @ source.mean(0) - target.mean(0)).mean(1)
    errors_y = np.abs(_MATRICES @ source.mean(1) - target.mean(1)).mean(1)
    kx, ky = int(errors_x.argmin()), int(errors_y.argmin())
    return _MATRICES[ky] @ source @ _MATRICES[kx].T, float(errors_x[kx] + errors_y[ky])


def fine_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Largest grey-level difference between two decoded thumbnails after alignment, outside the four corners.

    Aligning both ways undoes a small crop (one is a crop of the other) or an added border (the other way round).
    Corners are left out because that is where badges go; a changed price, headline, offer or colour shows up
    inside.
    """
    forward, forward_error = _align(a, b)
    backward, backward_error = _align(b, a)
    diff = np.abs(forward - b) if forward_error <= backward_error else np.abs(backward - a)
    return float(diff[_INTERIOR].max())


# --- grouping -------------------------------------------------------------------------------------
def group_duplicates(
    images: Sequence[HashedImage], threshold: int, *, fine_threshold: float | None = DEFAULT_FINE_DIFF
) -> list[tables.DuplicateGroup]:
    """One :class:`~adpipeline.tables.DuplicateGroup` row per distinct creative (singletons are groups of one).

    ``threshold`` is the dHash Hamming distance that makes a candidate pair; ``fine_threshold`` the finer check's
    limit (``None`` turns the finer check off). Rows come sorted by ``(group_id, creative_id)``.
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

    candidates = find_pairs(hashes[reps], threshold)
    leader = np.arange(n)
    if len(candidates):
        first, second = reps[candidates[:, 0]], reps[candidates[:, 1]]
        confirmed = _confirm(items, first, second, fine_threshold)
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
    items: list[HashedImage], first: np.ndarray, second: np.ndarray, fine_threshold: float | None
) -> np.ndarray:
    if fine_threshold is None:
        return np.ones(len(first), dtype=bool)
    thumbs: dict[int, np.ndarray | None] = {}

    def thumb(index: int) -> np.ndarray | None:
        if index not in thumbs:
            raw = items[index].fine_thumb
            thumbs[index] = decode_thumb(raw) if raw else None
        return thumbs[index]

    confirmed = np.zeros(len(first), dtype=bool)
    for k, (i, j) in enumerate(zip(first.tolist(), second.tolist(), strict=True)):
        a, b = thumb(i), thumb(j)
        # Without a thumbnail (rows written before the finer check existed) the dHash candidate stands.
        confirmed[k] = a is None or b is None or fine_difference(a, b) <= fine_threshold
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
