"""Exact Hamming-radius search over 64-bit hashes without the all-pairs scan (multi-index hashing).

:func:`find_pairs` splits the 64 bits into ``m`` chunks with radii ``r_c`` such that ``sum(r_c + 1) > t``: two hashes
within Hamming distance ``t`` then differ in at most ``r_c`` bits on at least one chunk (pigeonhole). Each chunk is
searched by probing the chunk values at most ``r_c`` bits away in a direct-address table, and a pair is kept only in
the first chunk that finds it, so no global de-duplication is needed. The chunk plan (count, widths, radii) is the
cheapest one under a small cost model of table, probe and candidate work. Memory grows with ``n`` plus a bounded
working batch. :func:`all_pairs_baseline` is the vectorised all-pairs scan the bench compares against.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from itertools import combinations

import numpy as np

_MAX_CHUNK_BITS = 22  # direct-address table of 2**22 entries
_WORK_ELEMENTS = 4_000_000  # elements per working batch of the all-pairs scan (~100 MiB)
_PROBE_BATCH = 1 << 17  # (item, flip mask) probes per step: the working arrays stay in cache

# Cost model, in nanoseconds on one core (fitted to timings of single chunks, numpy 2.x): per table entry, per item
# (sort, gathers), per probe, per probe that lands on an occupied bucket, per candidate pair from a probe or from one
# bucket, per flip-mask group (Python overhead), extra per probe and occupied probe once the table outgrows the cache,
# and per pair of the all-pairs scan plus its fixed overhead. Only the ranking of plans matters.
_COST_CHUNK = 100_000.0
_COST_TABLE = 4.4
_COST_ITEM = 24.0
_COST_PROBE = 2.3
_COST_HIT = 16.0
_COST_CANDIDATE = 7.2
_COST_SAME_BUCKET = 10.0
_COST_GROUP = 29_000.0
_COST_PROBE_UNCACHED = 0.75
_COST_HIT_UNCACHED = 10.0
_CACHED_TABLE_BITS = 18
_COST_BRUTE = 4.2
_COST_BRUTE_FIXED = 50_000.0
_COST_BRUTE_SHORTCUT = 1e6  # scan all pairs without planning when that costs less than this
_MAX_RADIUS_SPREAD = 2  # plans whose chunk radii differ by at most this much are searched
_THREADS_ABOVE_NS = 500e6  # below this the chunks run one after another: many small numpy calls hold the GIL

Chunk = tuple[int, int, int]  # (lowest bit, width in bits, radius)


# --- candidate search -----------------------------------------------------------------------------
def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise Hamming distance of two uint64 arrays."""
    return np.bitwise_count(np.bitwise_xor(a, b))


def find_pairs(hashes: np.ndarray, threshold: int) -> np.ndarray:
    """All index pairs ``(i, j)``, ``i < j``, whose hashes are within ``threshold`` bits; shape (k, 2), sorted.

    Exact: the same pairs as the all-pairs scan. Accepts uint64 or signed int64 hashes (same bits). Equal hashes are
    pairs too, so callers with many copies of one hash should collapse them first (as :func:`group_duplicates` does).
    """
    values = np.ascontiguousarray(np.asarray(hashes).astype(np.uint64, copy=False))
    n = len(values)
    threshold = int(threshold)
    if n < 2 or threshold < 0:
        return np.empty((0, 2), dtype=np.int64)
    if _COST_BRUTE * n * n < _COST_BRUTE_SHORTCUT:  # tiny input: not worth planning
        return _brute_force_pairs(values, threshold)
    plan, cost = _plan(n, threshold)
    if not plan:
        return _brute_force_pairs(values, threshold)
    if cost > _THREADS_ABOVE_NS and (os.cpu_count() or 1) > 1:
        # numpy releases the GIL in these loops, so the chunks run side by side on the cores there are.
        with ThreadPoolExecutor(max_workers=min(len(plan), os.cpu_count() or 1)) as pool:
            found = list(pool.map(lambda c: _chunk_pairs(values, plan, c, threshold), range(len(plan))))
    else:
        found = [_chunk_pairs(values, plan, c, threshold) for c in range(len(plan))]
    pairs = np.concatenate(found)
    codes = np.sort(pairs[:, 0] * n + pairs[:, 1])  # each pair comes from exactly one chunk: no unique needed
    return np.stack([codes // n, codes % n], axis=1)


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


# --- the chunk plan -------------------------------------------------------------------------------
def _ball(bits: int, radius: int) -> int:
    """Chunk values within ``radius`` bits of one value (itself included)."""
    return sum(math.comb(bits, k) for k in range(min(radius, bits) + 1))


@lru_cache(maxsize=4096)
def _chunk_cost(n: int, bits: int, radius: int) -> float:
    """Estimated nanoseconds to search one chunk: table, items, probes, occupied probes and candidate pairs."""
    size = 2.0**bits
    load = n / size
    probes = n * (_ball(bits, radius) - 1) / 2  # each unordered pair of chunk values is probed from one side
    hits = probes * -math.expm1(-load)
    uncached = bits > _CACHED_TABLE_BITS
    return (
        _COST_CHUNK
        + _COST_TABLE * size
        + _COST_ITEM * n
        + (_COST_PROBE + _COST_PROBE_UNCACHED * uncached) * probes
        + (_COST_HIT + _COST_HIT_UNCACHED * uncached) * hits
        + _COST_CANDIDATE * probes * load
        + _COST_SAME_BUCKET * n * n / (2 * size)
        + _COST_GROUP * (bits if radius else 0)
    )


def _radius_plans(m: int, spare: int) -> list[tuple[int, ...]]:
    """Non-increasing radii of ``m`` chunks summing to ``spare``, spread at most ``_MAX_RADIUS_SPREAD``."""
    plans: list[tuple[int, ...]] = []

    def extend(prefix: tuple[int, ...], left: int) -> None:
        if len(prefix) == m:
            if left == 0:
                plans.append(prefix)
            return
        top = prefix[-1] if prefix else left
        floor = max(0, prefix[0] - _MAX_RADIUS_SPREAD) if prefix else 0
        for r in range(min(top, left), floor - 1, -1):
            if left - r <= r * (m - len(prefix) - 1):  # the rest, each at most r, can still add up
                extend((*prefix, r), left - r)

    extend((), spare)
    return plans


def _widths(n: int, radii: tuple[int, ...]) -> tuple[list[int], float] | None:
    """Chunk widths (summing to 64) for ``radii``, greedily adding each bit where it lowers the cost most."""
    widths = [r + 1 for r in radii]
    if sum(widths) > 64 or len(radii) * _MAX_CHUNK_BITS < 64:
        return None
    costs = [_chunk_cost(n, w, r) for w, r in zip(widths, radii, strict=True)]
    for _ in range(64 - sum(widths)):
        best_gain, best_c = math.inf, -1
        for c, (w, r) in enumerate(zip(widths, radii, strict=True)):
            if w < _MAX_CHUNK_BITS:
                gain = _chunk_cost(n, w + 1, r) - costs[c]
                if gain < best_gain:
                    best_gain, best_c = gain, c
        widths[best_c] += 1
        costs[best_c] += best_gain
    return widths, sum(costs)


@lru_cache(maxsize=256)
def _plan(n: int, threshold: int) -> tuple[tuple[Chunk, ...], float]:
    """The cheapest chunk plan for ``n`` hashes at ``threshold`` and its estimated cost; no chunks: scan all pairs.

    ``m`` chunks with radii ``r_c`` cover every pair within ``threshold`` when ``sum(r_c + 1) > threshold`` (some
    chunk differs in at most ``r_c`` bits). Wider chunks mean fewer candidates but bigger tables and more flip masks.
    """
    best: tuple[float, tuple[Chunk, ...]] = (_COST_BRUTE * n * n + _COST_BRUTE_FIXED, ())
    for m in range(3, max(6, min(64, threshold + 1)) + 1):  # 3 chunks at least (tables of 22 bits at most)
        for radii in _radius_plans(m, max(0, threshold + 1 - m)):
            found = _widths(n, radii)
            if found is not None and found[1] < best[0]:
                widths = found[0]
                lows = np.cumsum([0, *widths[:-1]]).tolist()
                best = (found[1], tuple(zip(lows, widths, radii, strict=True)))
    return best[1], best[0]


@lru_cache(maxsize=64)
def _flip_masks(bits: int, radius: int) -> tuple[tuple[int, np.ndarray], ...]:
    """The flip masks of 1..radius bits, grouped by their highest bit: ``(high, masks)``."""
    groups: dict[int, list[int]] = {}
    for k in range(1, radius + 1):
        for combo in combinations(range(bits), k):
            groups.setdefault(max(combo), []).append(sum(1 << b for b in combo))
    return tuple((high, np.asarray(masks, dtype=np.intp)) for high, masks in sorted(groups.items()))


# --- one chunk ------------------------------------------------------------------------------------
def _chunk_pairs(values: np.ndarray, plan: tuple[Chunk, ...], c: int, threshold: int) -> np.ndarray:
    """Pairs within ``threshold`` whose chunk ``c`` differs in at most its radius and no earlier chunk does."""
    lo, bits, radius = plan[c]
    n = len(values)
    if n >= 1 << 32:
        raise ValueError("find_pairs packs item indices into 32 bits: at most 2**32 - 1 hashes")
    # Sort by chunk value with one uint64 sort of (value << 32 | index): far faster than a stable argsort.
    keyed = ((values >> np.uint64(lo)) & np.uint64((1 << bits) - 1)) << np.uint64(32)
    keyed |= np.arange(n, dtype=np.uint64)
    keyed.sort()
    order = (keyed & np.uint64(0xFFFF_FFFF)).astype(np.intp)
    sorted_keys = (keyed >> np.uint64(32)).astype(np.intp)
    del keyed
    sorted_hashes = values[order]
    counts = np.bincount(sorted_keys, minlength=1 << bits)
    occupied = counts > 0
    starts = np.zeros((1 << bits) + 1, dtype=np.intp)  # items with chunk value v sit at starts[v]:starts[v + 1]
    np.cumsum(counts, out=starts[1:])
    del counts
    first: list[np.ndarray] = []  # positions in the sorted order
    second: list[np.ndarray] = []

    # Flip mask 0: pairs inside one bucket, as (p, p + step) for the runs of equal keys.
    step = 1
    active = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
    while len(active):
        other = active + step
        close = hamming(sorted_hashes[active], sorted_hashes[other]) <= threshold
        if close.any():
            first.append(active[close])
            second.append(other[close])
        step += 1
        active = active[active < n - step]
        active = active[sorted_keys[active + step] == sorted_keys[active]]

    # A value v and its partner v ^ mask form each unordered pair once when v has a 0 at the mask's highest bit, so
    # only those items probe: half the work, and no pair twice. All masks of a group probe in one broadcast step.
    for high, masks in _flip_masks(bits, radius) if radius else ():
        probing = np.flatnonzero((sorted_keys & (1 << high)) == 0)
        width = len(masks)
        rows = max(1, _PROBE_BATCH // width)
        for begin_row in range(0, len(probing), rows):
            probe = probing[begin_row : begin_row + rows]
            partner = (sorted_keys[probe][:, None] ^ masks).ravel()
            hit = np.flatnonzero(occupied[partner])
            if not len(hit):
                continue
            partner = partner[hit]
            probe = probe[hit // width]
            member = starts[partner]
            _expand_hits(probe, member, starts[partner + 1] - member, sorted_hashes, threshold, first, second)

    if not first:
        return np.empty((0, 2), dtype=np.int64)
    a = order[np.concatenate(first)]
    b = order[np.concatenate(second)]
    if c:  # canonical chunk: drop the pairs an earlier chunk already reports (within its radius there)
        diff = values[a] ^ values[b]
        keep = np.ones(len(diff), dtype=bool)
        for lo_c, bits_c, radius_c in plan[:c]:
            part = (diff >> np.uint64(lo_c)) & np.uint64((1 << bits_c) - 1)
            keep &= np.bitwise_count(part) > radius_c
        a, b = a[keep], b[keep]
    return np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1).astype(np.int64, copy=False)


def _expand_hits(
    probe: np.ndarray,
    member: np.ndarray,
    count: np.ndarray,
    sorted_hashes: np.ndarray,
    threshold: int,
    first: list[np.ndarray],
    second: list[np.ndarray],
) -> None:
    """Check each probe against every member of its partner bucket (``count`` members from ``member``).

    One step per bucket slot: the k-th member of every bucket with more than k members. Buckets mostly hold one or
    two items, so this beats laying all candidates out flat (repeat / cumsum / searchsorted), and each step stays
    within the probe batch however crowded a bucket is.
    """
    probe_hashes = sorted_hashes[probe]
    while True:
        close = np.flatnonzero(hamming(probe_hashes, sorted_hashes[member]) <= threshold)
        if len(close):
            first.append(probe[close])
            second.append(member[close])
        count -= 1
        more = np.flatnonzero(count)
        if not len(more):
            return
        if len(more) < len(count):
            probe, member, count, probe_hashes = probe[more], member[more], count[more], probe_hashes[more]
        member = member + 1


# --- probing one set against another --------------------------------------------------------------
_BETWEEN_ELEMENTS = 1 << 21  # expected (query, index entry) candidates per step of find_pairs_between
_BETWEEN_COST_PROBE = 60.0  # ns per probe (a random lookup in the chunk's table)
_BETWEEN_COST_CANDIDATE = 12.0  # ns per index entry a probe lands on (gathered and checked on 64 bits)


def find_pairs_between(queries: np.ndarray, index: np.ndarray, threshold: int) -> np.ndarray:
    """All pairs ``(q, i)`` with ``hamming(queries[q], index[i]) <= threshold``; shape (k, 2), sorted, exact.

    For a few new hashes against many earlier ones (the daily run: 10,000 against 1,000,000): the index is cut into
    chunks with radii as in :func:`find_pairs` (pigeonhole), each chunk's values are sorted once into a direct-address
    table, and every query looks up all chunk values within the radius of its own; each entry found is checked on all
    64 bits and kept only in the first chunk that finds it. Work grows with the queries and the index, not their
    product.
    """
    queries = np.ascontiguousarray(np.asarray(queries).astype(np.uint64, copy=False))
    index = np.ascontiguousarray(np.asarray(index).astype(np.uint64, copy=False))
    threshold = int(threshold)
    if not len(queries) or not len(index) or threshold < 0:
        return np.empty((0, 2), dtype=np.int64)
    if len(queries) * len(index) <= _WORK_ELEMENTS:
        distance = hamming(queries[:, None], index[None, :])
        return np.argwhere(distance <= threshold).astype(np.int64)
    plan = _between_plan(len(index), threshold)
    found: list[np.ndarray] = []
    for c, (lo, bits, radius) in enumerate(plan):
        mask = np.uint64((1 << bits) - 1)
        keyed = ((index >> np.uint64(lo)) & mask) << np.uint64(32)
        keyed |= np.arange(len(index), dtype=np.uint64)
        keyed.sort()
        order = (keyed & np.uint64(0xFFFF_FFFF)).astype(np.intp)
        starts = np.zeros((1 << bits) + 1, dtype=np.intp)
        np.cumsum(np.bincount((keyed >> np.uint64(32)).astype(np.intp), minlength=1 << bits), out=starts[1:])
        del keyed
        sorted_hashes = index[order]
        flips = np.concatenate([[0], *[masks for _, masks in _flip_masks(bits, radius)]]).astype(np.intp)
        query_keys = ((queries >> np.uint64(lo)) & mask).astype(np.intp)
        per_query = len(flips) * (1.0 + len(index) / 2.0**bits)
        rows = max(1, int(_BETWEEN_ELEMENTS // per_query))
        for start in range(0, len(queries), rows):
            probe = (query_keys[start : start + rows, None] ^ flips[None, :]).ravel()
            left = starts[probe]
            count = starts[probe + 1] - left
            hit = np.flatnonzero(count)
            if not len(hit):
                continue
            which = start + hit // len(flips)
            left, count = left[hit], count[hit]
            position = np.repeat(left - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
            query = np.repeat(which, count)
            diff = queries[query] ^ sorted_hashes[position]
            keep = np.bitwise_count(diff) <= threshold
            for lo_c, bits_c, radius_c in plan[:c]:  # found by an earlier chunk already
                keep &= np.bitwise_count((diff >> np.uint64(lo_c)) & np.uint64((1 << bits_c) - 1)) > radius_c
            if keep.any():
                found.append(np.stack([query[keep], order[position[keep]]], axis=1))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.concatenate(found).astype(np.int64)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


@lru_cache(maxsize=64)
def _between_plan(n: int, threshold: int) -> tuple[Chunk, ...]:
    """Chunks for :func:`find_pairs_between`: ``m`` even chunks (3-8, at most ``_MAX_CHUNK_BITS`` wide) with the
    spare radius spread evenly; per query, the cost is its probes plus the index entries they land on."""
    best: tuple[float, tuple[Chunk, ...]] = (math.inf, ())
    for m in range(3, 9):
        spare = max(0, threshold + 1 - m)
        radii = [spare // m + (1 if k < spare % m else 0) for k in range(m)]
        widths = [64 // m + (1 if k < 64 % m else 0) for k in range(m)]
        if max(widths) > _MAX_CHUNK_BITS:
            continue
        cost = sum(
            _ball(w, r) * (_BETWEEN_COST_PROBE + _BETWEEN_COST_CANDIDATE * n / 2.0**w)
            for w, r in zip(widths, radii, strict=True)
        )
        if cost < best[0]:
            lows = np.cumsum([0, *widths[:-1]]).tolist()
            best = (cost, tuple(zip(lows, widths, radii, strict=True)))
    return best[1]
