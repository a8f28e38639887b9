"""Exact Hamming-radius search over 64-bit hashes without the all-pairs scan (multi-index hashing).

:func:`find_pairs` splits the 64 bits into ``m`` chunks; two hashes within Hamming distance ``t`` agree within
``t // m`` bits on at least one chunk (pigeonhole), so each chunk is searched by enumerating the few flip masks of
that weight over a direct-address table of the chunk values. Memory grows with ``n`` plus a bounded working batch.
:func:`all_pairs_baseline` is the vectorised all-pairs scan the bench compares against.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from itertools import combinations

import numpy as np

_BRUTE_FORCE_BELOW = 2048
_MAX_CHUNK_BITS = 22  # direct-address table of 2**22 int32 = 16 MiB
_WORK_ELEMENTS = 4_000_000  # elements per working batch: bounds the memory of one step (~100 MiB)


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
