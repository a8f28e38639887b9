"""Near-duplicate bench: multi-index hashing vs the all-pairs scan, and precision/recall on a labelled set.

python bench/bench_dedupe.py                 # 1,000,000 hashes at threshold 8, baseline at 50,000
python bench/bench_dedupe.py --quality       # the labelled banner set: precision / recall per threshold
python bench/bench_dedupe.py --n 200000      # a smaller run
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from adpipeline.media import dedupe  # noqa: E402


def planted(n: int, seed: int = 0, share: float = 0.05) -> np.ndarray:
    """Random 64-bit hashes plus ``share`` planted near copies (0-8 bits flipped) of other entries."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, n, dtype=np.uint64)
    copies = int(n * share)
    source, target = rng.integers(0, n, copies), rng.integers(0, n, copies)
    flips = np.zeros(copies, dtype=np.uint64)
    for _ in range(8):
        on = rng.random(copies) < 0.5
        flips |= np.where(on, np.uint64(1) << rng.integers(0, 64, copies).astype(np.uint64), np.uint64(0))
    hashes[target] = hashes[source] ^ flips
    return hashes


def _timed(fn: Callable[[], np.ndarray], repeats: int) -> tuple[np.ndarray, float, float]:
    """Run ``fn`` ``repeats`` times: its (last) result, the best and the median wall time."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return result, min(times), float(np.median(times))


def speed(n: int, baseline_n: int, threshold: int, repeats: int = 3) -> None:
    hashes = planted(n)
    started = time.perf_counter()
    pairs = dedupe.find_pairs(hashes, threshold)
    took = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"multi-index  n={n:>9,}  t={threshold}  pairs={len(pairs):,}  {took:6.2f} s  peak RSS {peak:,.0f} MiB")

    # Both sides timed the same way: best (and median) of ``repeats`` runs on the same input, on a shared machine.
    small = hashes[:baseline_n]
    fast, fast_s, fast_med = _timed(lambda: dedupe.find_pairs(small, threshold), repeats)
    slow, slow_s, slow_med = _timed(lambda: dedupe.all_pairs_baseline(small, threshold), repeats)
    assert np.array_equal(fast, slow), "multi-index and all-pairs disagree"
    print(
        f"at n={baseline_n:,} (best of {repeats}): multi-index {fast_s:.3f} s, all-pairs {slow_s:.2f} s, "
        f"ratio {slow_s / fast_s:,.0f}x (medians {fast_med:.3f} s / {slow_med:.2f} s = {slow_med / fast_med:,.0f}x)"
    )
    extrapolated = slow_s * (n / baseline_n) ** 2
    print(f"all-pairs at n={n:,} would take about {extrapolated / 60:,.0f} min ({extrapolated / took:,.0f}x)")


QUALITY_GRID: list[tuple[int, float | None]] = [
    (12, None),
    (8, 0.55),
    (10, 0.55),
    (12, 0.45),
    (12, 0.5),
    (12, 0.55),
    (12, 0.6),
    (12, 0.7),
    (14, 0.55),
]


def quality(templates: int, seed: int, settings_grid: list[tuple[int, float | None]] = QUALITY_GRID) -> None:
    from labelled_banners import generate

    from adpipeline.media.images import analyse_image
    from adpipeline.settings import Settings

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    started = time.perf_counter()
    banners = list(generate(templates=templates, seed=seed))
    made = time.perf_counter() - started
    started = time.perf_counter()
    facts = [analyse_image(b.data, settings) for b in banners]
    analysed = time.perf_counter() - started
    sizes = np.array([len(f.fine_thumb) for f in facts])
    print(
        f"labelled set: {len(banners)} images, {len({b.label for b in banners})} creatives, "
        f"{templates} templates ({made:.0f} s to make); analyse_image {1e3 * analysed / len(banners):.1f} ms per "
        f"image; fine_thumb {sizes.mean():,.0f} B mean, {sizes.max():,} B max"
    )
    labels = np.array([b.label for b in banners])
    kinds = np.array([b.kind for b in banners])
    day = dt.date(2026, 1, 1)
    images = [
        dedupe.HashedImage(b.name, str(i), f.dhash, day, f.fine_thumb)
        for i, (b, f) in enumerate(zip(banners, facts, strict=True))
    ]
    index = {b.name: i for i, b in enumerate(banners)}
    same = labels[:, None] == labels[None, :]
    upper = np.triu(np.ones_like(same), 1)
    positives = int((same & upper).sum())
    template = np.array([label.split("-")[0] for label in labels])
    sibling = (template[:, None] == template[None, :]) & ~same
    thumbs = [dedupe.load_thumb(f.fine_thumb) for f in facts]
    rng = np.random.default_rng(0)
    random_pairs = [(thumbs[i], thumbs[j]) for i, j in rng.integers(0, len(thumbs), (1000, 2))]
    near = np.argwhere(same & upper.astype(bool))
    near_pairs = [(thumbs[i], thumbs[j]) for i, j in near[rng.permutation(len(near))[:1000]]]
    for name, pairs in (
        ("random pairs (most rejected by the coarse stage)", random_pairs),
        ("same-creative pairs (both stages)", near_pairs),
    ):
        started = time.perf_counter()
        for a, b in pairs:
            dedupe.pair_difference(a, b)  # type: ignore[arg-type]
        print(f"finer check, {name}: {1e6 * (time.perf_counter() - started) / len(pairs):.0f} us per pair")
    print("| dHash t | detail check | precision | recall | sibling pairs merged | copy recall by transform |")
    print("|---|---|---|---|---|---|")
    defaults = (settings.dhash_threshold, settings.duplicate_detail_threshold)
    for threshold, fine in settings_grid:
        rows = dedupe.group_duplicates(images, threshold, fine_threshold=fine)
        group = np.empty(len(banners), dtype=object)
        for row in rows:
            group[index[row.creative_id]] = row.group_id
        together = (group[:, None] == group[None, :]) & upper.astype(bool)
        tp = int((together & same).sum())
        predicted = int(together.sum())
        precision = tp / predicted if predicted else 1.0
        recall = tp / positives
        merged = int((together & sibling).sum())
        by_kind = []
        for kind in ("resize", "jpeg", "crop", "badge", "border"):
            members = [i for i in range(len(banners)) if kind in kinds[i].split("+")]
            originals = [index[banners[i].label + "-orig"] for i in members]
            hit = np.mean([group[i] == group[o] for i, o in zip(members, originals, strict=True)])
            by_kind.append(f"{kind} {hit:.2f}")
        label = "off" if fine is None else f"<= {fine:g}" + (" (default)" if (threshold, fine) == defaults else "")
        print(f"| {threshold} | {label} | {precision:.3f} | {recall:.3f} | {merged} | {', '.join(by_kind)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--baseline-n", type=int, default=50_000)
    parser.add_argument("--threshold", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side at --baseline-n (best, median)")
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--templates", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.quality:
        quality(args.templates, args.seed)
    else:
        speed(args.n, args.baseline_n, args.threshold, args.repeats)


if __name__ == "__main__":
    main()
