"""find_pairs (multi-index hashing) is exact: the same pairs as the all-pairs scan, for every plan it can pick."""

from __future__ import annotations

import numpy as np
import pytest

from adpipeline.media import hamming
from adpipeline.media.hamming import all_pairs_baseline, find_pairs


def _planted(n: int, seed: int, near: float = 0.1, exact: float = 0.02) -> np.ndarray:
    """Random hashes plus near copies (0-12 bits flipped) and exact copies of other entries."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, n, dtype=np.uint64)
    if n < 2:
        return hashes
    copies = int(n * near)
    source, target = rng.integers(0, n, copies), rng.integers(0, n, copies)
    flips = np.zeros(copies, dtype=np.uint64)
    weights = rng.integers(0, 13, copies)
    for k in range(12):
        bit = np.uint64(1) << rng.integers(0, 64, copies).astype(np.uint64)
        flips |= np.where(weights > k, bit, np.uint64(0))
    hashes[target] = hashes[source] ^ flips
    same = int(n * exact)
    hashes[rng.integers(0, n, same)] = hashes[rng.integers(0, n, same)]
    return hashes


def _check(hashes: np.ndarray, threshold: int) -> np.ndarray:
    found = find_pairs(hashes, threshold)
    expected = all_pairs_baseline(hashes, threshold)
    assert found.dtype == np.int64 and found.shape[1:] == (2,)
    assert np.array_equal(found, expected), (len(hashes), threshold, len(found), len(expected))
    return found


def _plan_key(n: int, threshold: int) -> object:
    if hamming._COST_BRUTE * n * n < hamming._COST_BRUTE_SHORTCUT:
        return "shortcut"
    return tuple(chunk[1:] for chunk in hamming._plan(n, threshold)[0])


def _switch_points(threshold: int, low: int, high: int, step: int = 250) -> list[int]:
    """The sizes ``n`` in ``[low, high]`` where the chosen plan differs from the one at ``n - 1``."""
    points = []
    grid = list(range(low, high, step)) + [high]
    for a, b in zip(grid[:-1], grid[1:], strict=True):
        if _plan_key(a, threshold) == _plan_key(b, threshold):
            continue
        while b - a > 1:  # bisect to the first size with the new plan
            mid = (a + b) // 2
            if _plan_key(mid, threshold) == _plan_key(a, threshold):
                a = mid
            else:
                b = mid
        points.append(b)
    return points


@pytest.mark.parametrize("n", [2, 3, 10, 100, 487, 488, 489, 600, 1000, 1600, 2047, 2048, 2049, 3000])
def test_matches_all_pairs_for_every_threshold(n: int) -> None:
    hashes = _planted(n, seed=n)
    for threshold in range(13):
        _check(hashes, threshold)


@pytest.mark.parametrize(("n", "thresholds"), [(5000, range(13)), (12_000, (0, 3, 8, 12)), (16_000, (8,))])
def test_matches_all_pairs_larger(n: int, thresholds: range | tuple[int, ...]) -> None:
    hashes = _planted(n, seed=n + 1)
    for threshold in thresholds:
        _check(hashes, threshold)


@pytest.mark.parametrize("threshold", [0, 3, 8, 12])
def test_matches_all_pairs_around_plan_switches(threshold: int) -> None:
    points = _switch_points(threshold, 400, 16_000)
    assert points, "the plan never changes between 400 and 16,000 hashes"
    for n in points:
        hashes = _planted(n, seed=threshold * 100_000 + n)
        _check(hashes[: n - 1], threshold)
        _check(hashes, threshold)


def test_empty_and_single() -> None:
    for n in (0, 1):
        for threshold in (0, 8, 64):
            found = find_pairs(np.zeros(n, dtype=np.uint64), threshold)
            assert found.shape == (0, 2) and found.dtype == np.int64
    assert find_pairs(np.array([], dtype=np.int64), 8).shape == (0, 2)


def test_negative_and_huge_thresholds() -> None:
    hashes = _planted(700, seed=5)
    assert find_pairs(hashes, -1).shape == (0, 2)
    for threshold in (16, 20, 40, 63, 64, 100):
        _check(hashes, threshold)


def test_equal_hashes_and_crowded_buckets() -> None:
    rng = np.random.default_rng(11)
    hashes = _planted(4000, seed=11)
    hashes[:400] = hashes[0]  # one hot value: a crowded bucket in every chunk
    hashes[400:600] = hashes[1] ^ (np.uint64(1) << rng.integers(0, 64, 200).astype(np.uint64))  # its 1-bit cloud
    hashes[600:700] = hashes[2]
    for threshold in (0, 1, 4, 8, 12):
        _check(hashes, threshold)
    same = np.full(1200, 0xDEAD_BEEF_0BAD_F00D, dtype=np.uint64)
    found = _check(same, 0)
    assert len(found) == 1200 * 1199 // 2
    _check(same, 8)


def test_signed_int64_input() -> None:
    hashes = _planted(6000, seed=3)
    assert (hashes >= np.uint64(1 << 63)).any()  # negative once viewed as int64
    signed = hashes.view(np.int64)
    for threshold in (0, 5, 8):
        assert np.array_equal(find_pairs(signed, threshold), _check(hashes, threshold))


def test_output_is_sorted_pairs_with_i_below_j() -> None:
    found = _check(_planted(8000, seed=9), 10)
    assert len(found) > 0
    assert (found[:, 0] < found[:, 1]).all()
    codes = found[:, 0] * 8000 + found[:, 1]
    assert (np.diff(codes) > 0).all()


FORCED_PLANS = {
    # (n, threshold, plan): plans the cost model may not pick, to cover every code path.
    "three wide chunks, radius 2": (5000, 8, ((0, 22, 2), (22, 21, 2), (43, 21, 2))),
    "radius 3 and uneven radii": (5000, 9, ((0, 20, 3), (20, 16, 2), (36, 14, 1), (50, 14, 0))),
    "narrow chunks, crowded buckets": (
        3000,
        11,
        ((0, 8, 1), (8, 8, 1), (16, 8, 1), (24, 8, 1), (32, 8, 0), (40, 8, 0), (48, 8, 0), (56, 8, 0)),
    ),
    "more coverage than needed": (4000, 2, ((0, 16, 1), (16, 16, 1), (32, 16, 0), (48, 16, 0))),
}


@pytest.mark.parametrize("name", sorted(FORCED_PLANS))
def test_forced_plans_match_all_pairs(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    n, threshold, plan = FORCED_PLANS[name]
    assert sum(bits for _, bits, _ in plan) == 64 and sum(r + 1 for _, _, r in plan) > threshold
    monkeypatch.setattr(hamming, "_plan", lambda n, t: (plan, 0.0))
    hashes = _planted(n, seed=len(name))
    hashes[:50] = hashes[0]
    for t in range(threshold + 1):
        _check(hashes, t)


def test_threaded_chunks_match(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hamming, "_THREADS_ABOVE_NS", -1.0)
    hashes = _planted(6000, seed=21)
    for threshold in (3, 8, 12):
        _check(hashes, threshold)


def test_small_probe_batches_match(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hamming, "_PROBE_BATCH", 7)  # many batches, and groups wider than one batch
    hashes = _planted(3000, seed=8)
    hashes[:40] = hashes[0]
    for threshold in (4, 8):
        _check(hashes, threshold)


@pytest.mark.parametrize("n", [500, 5000, 50_000, 1_000_000])
def test_plans_cover_every_pair(n: int) -> None:
    for threshold in range(17):
        plan, cost = hamming._plan(n, threshold)
        if not plan:
            continue
        lows = [lo for lo, _, _ in plan]
        widths = [bits for _, bits, _ in plan]
        assert lows == np.cumsum([0, *widths[:-1]]).tolist() and sum(widths) == 64
        assert all(radius < bits <= hamming._MAX_CHUNK_BITS for _, bits, radius in plan)
        assert sum(radius + 1 for _, _, radius in plan) >= threshold + 1  # pigeonhole: some chunk is within radius
        assert cost > 0


@pytest.mark.parametrize(
    ("n_queries", "n_index", "threshold"),
    [(50, 300, 10), (3000, 20_000, 10), (2000, 30_000, 0), (2000, 30_000, 4), (1500, 25_000, 12)],
)
def test_find_pairs_between_equals_the_full_scan(n_queries: int, n_index: int, threshold: int) -> None:
    """Pending hashes against the index: the same pairs as comparing every query with every entry (the small case
    takes the direct scan, the others the chunked probe)."""
    index = _planted(n_index, n_index + threshold)
    rng = np.random.default_rng(threshold)
    queries = rng.integers(0, 2**64, n_queries, dtype=np.uint64)
    near = rng.integers(0, n_index, n_queries // 3)
    flips = np.zeros(len(near), dtype=np.uint64)
    for _ in range(threshold + 2):
        flips |= np.uint64(1) << rng.integers(0, 64, len(near)).astype(np.uint64)
    queries[: len(near)] = index[near] ^ flips
    found = hamming.find_pairs_between(queries, index, threshold)
    expected = np.argwhere(hamming.hamming(queries[:, None], index[None, :]) <= threshold)
    assert found.dtype == np.int64 and np.array_equal(found, expected)
