"""Near-duplicate bench: multi-index hashing vs the all-pairs scan, and precision/recall on a labelled set.

python bench/bench_dedupe.py                 # 1,000,000 hashes at threshold 8, baseline at 50,000
python bench/bench_dedupe.py --quality       # the labelled banner set: precision / recall per threshold
python bench/bench_dedupe.py --n 200000      # a smaller run
python bench/bench_dedupe.py --incremental   # 10,000 new images against 1,000,000 grouped ones (wall, peak RSS)
python bench/bench_dedupe.py --incremental --headlines 10000 --compare-route   # ... with Zipf headlines, route on/off
python bench/bench_dedupe.py --full-before 5000   # the grouping before the incremental design, full regroup of N

The labelled quality bench of the varied set (tuning / held-out, ours vs dHash vs PHash) is bench/dedupe_quality.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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


QUALITY_GRID: list[tuple[int, float | None]] = [  # (dHash bits, detail limit); the text check is on unless "off"
    (12, None),
    (10, 2.0),
    (12, 1.0),
    (12, 1.5),
    (12, 2.0),
    (12, 2.5),
    (14, 2.0),
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
        dedupe.HashedImage(b.name, str(i), f.dhash, day, f.fine_thumb, ocr_text=f.ocr_text)
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
        rows = dedupe.group_duplicates(images, threshold, detail_threshold=fine)
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


# --- incremental grouping (issue 9) --------------------------------------------------------------------------------
BEFORE_COMMIT = "0fc8d94"  # the last commit that regrouped every stored image on every run


def synthetic_thumb(rng: np.random.Generator, like: np.ndarray | None = None) -> tuple[str, np.ndarray]:
    """A stored-format thumbnail (128 x 128 luma + 64 x 64 Cb/Cr, zlib, base64): a smooth random background with a
    few text-like bars; with ``like``, a copy of those planes with a brightness change and noise (a near copy)."""
    import base64
    import zlib

    if like is None:
        grid = rng.uniform(30, 220, (3, 5, 5))
        up = np.linspace(0, 4, 128)
        i0 = np.minimum(up.astype(int), 3)
        w = up - i0
        rows = grid[:, i0] * (1 - w)[None, :, None] + grid[:, i0 + 1] * w[None, :, None]
        planes = rows[:, :, i0] * (1 - w) + rows[:, :, i0 + 1] * w
        for _ in range(int(rng.integers(3, 7))):
            y, x = rng.integers(0, 120, 2)
            planes[0, y : y + int(rng.integers(3, 9)), x : x + int(rng.integers(10, 60))] = rng.uniform(0, 255)
    else:  # a brightness change scales luma, and colour differences about neutral grey (Cb/Cr 128)
        factor = rng.uniform(0.9, 1.1)
        planes = like.copy()
        planes[0] *= factor
        planes[1:] = 128 + (planes[1:] - 128) * factor
        planes += rng.normal(0, 2, like.shape)
    planes = np.clip(planes, 0, 255)
    chroma = planes[1:, ::2, ::2]
    raw = np.clip(planes[0], 0, 255).astype(np.uint8).tobytes() + chroma.astype(np.uint8).tobytes()
    return base64.b64encode(zlib.compress(raw, 6)).decode("ascii"), planes


def incremental(
    n_known: int,
    n_new: int,
    threshold: int,
    near_share: float = 0.3,
    all_pairs_within: int = 64,
    headlines: int = 0,
    text_bits: int | None = None,
) -> float:
    """``n_new`` pending images (real-format thumbnails, ``near_share`` of them near copies of earlier images) grouped
    into an index of ``n_known`` earlier ones, as the media task does: wall time, peak RSS, thumbnails read.

    With ``headlines``, every image also says one of that many headlines as its tallest line (drawn with Zipf
    weights 1/rank, so the first is shared by ~10 % of all images at 10,000; a near copy says its original's): the
    same-text candidate route at ``text_bits`` (default: the setting) then takes part, with no other line to tell
    unrelated images that share a headline apart (its worst case)."""
    from adpipeline import tables
    from adpipeline.media.text import text_key
    from adpipeline.settings import Settings

    if text_bits is None:
        text_bits = Settings(_env_file=None).duplicate_text_candidate_bits  # type: ignore[call-arg]

    rng = np.random.default_rng(0)
    started = time.perf_counter()
    dhash = planted(n_known, seed=1)
    inner = dhash ^ (np.uint64(1) << rng.integers(0, 64, n_known).astype(np.uint64))  # inner hash near the image's
    creative_ids = np.array([f"c{k:07d}" for k in range(n_known)], dtype=object)
    component_ids = np.array([f"k_c{k - k % 3:07d}" for k in range(n_known)], dtype=object)  # components of 3
    said = np.zeros(n_known, np.int64)
    records: list[str | None] = []
    words = np.random.default_rng(2)  # its own stream: the images are the same with and without headlines
    if headlines:
        weights = 1.0 / np.arange(1, headlines + 1)
        said = words.choice(headlines, n_known, p=weights / weights.sum())
        records = [json.dumps([[f"headline {j:05d}", 0.95, 0.1, 0.1, 0.9, 0.3]]) for j in range(headlines)]
        keys = np.array([text_key(r) for r in records], dtype=np.int64)
        known = dedupe.Known(
            creative_ids, dhash, inner, np.ones(n_known, bool), component_ids, keys[said], np.ones(n_known, bool)
        )
    else:
        known = dedupe.Known(creative_ids, dhash, inner, np.ones(n_known, bool), component_ids)

    new_images: list[dedupe.HashedImage] = []
    stored: dict[int, str] = {}  # earlier image -> its stored thumbnail (a near copy of the new image's)
    targets = rng.choice(n_known, int(n_new * near_share), replace=False)
    for k in range(n_new):
        thumb, planes = synthetic_thumb(rng)
        value = int(rng.integers(0, 2**64, dtype=np.uint64))
        if k < len(targets):  # a near copy of an earlier image: close dHash, close thumbnail
            target = int(targets[k])
            value = int(dhash[target] ^ np.uint64(1 << int(rng.integers(0, 64))))
            stored[target] = synthetic_thumb(rng, planes)[0]
        record = None
        if headlines:
            record = records[int(said[targets[k]])] if k < len(targets) else records[int(words.choice(said))]
        new_images.append(dedupe.HashedImage(f"n{k:06d}", f"sha-n{k:06d}", value, None, thumb, 1080, 1080, record))
    loaded = {"thumbs": 0, "members": 0}

    # What the warehouse would hand back for earlier images: the near copies' own thumbnails, else one of a pool.
    pool = [synthetic_thumb(rng)[0] for _ in range(256)]
    made = time.perf_counter() - started

    def load_thumbs(ids: list[str]) -> dict[str, str | None]:
        loaded["thumbs"] += len(ids)
        return {cid: stored.get(int(cid[1:]), pool[int(cid[1:]) % len(pool)]) for cid in ids}

    def load_members(components: list[str]) -> list[dedupe.Member]:
        members = []
        for component in components:
            first = int(component[3:])
            for k in range(first, min(first + 3, n_known)):
                image = dedupe.HashedImage(creative_ids[k], f"sha-c{k:07d}", int(dhash[k]), None, None, 800, 800)
                row = tables.DuplicateGroup(
                    creative_id=creative_ids[k],
                    group_id=f"g_c{first:07d}",
                    canonical_creative_id=f"c{first:07d}",
                    hamming_to_canonical=0,
                    is_canonical=k == first,
                    group_size=3,
                    component_id=component,
                    sha256=image.sha256,
                    inner_dhash=int(inner[k].astype(np.int64)),
                )
                members.append(dedupe.Member(image, row))
        loaded["members"] += len(members)
        return members

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, cpu = time.perf_counter(), time.process_time()
    rows = dedupe.regroup(
        new_images,
        known,
        dedupe.Clustering(
            threshold,
            all_pairs_within=all_pairs_within,
            text_candidate_bits=text_bits,
        ),
        load_thumbs=load_thumbs,
        load_members=load_members,
    )
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    joined = sum(1 for r in rows if r.creative_id.startswith("n") and r.group_size > 1)
    print(
        f"incremental: {n_new:,} new against {n_known:,} grouped at t={threshold}: {took:.1f} s wall "
        f"({cpu:.1f} s CPU; all pairs within components of <= {all_pairs_within}), peak RSS "
        f"{peak:,.0f} MiB (index and inputs alone: {before:,.0f} MiB; {made:.0f} s to make them); thumbnails read "
        f"{loaded['thumbs']:,}, members read {loaded['members']:,}; rows changed {len(rows):,}, new images in a "
        f"group of 2+: {joined:,}"
        + (f"; {headlines:,} headlines (Zipf), same-text route within {text_bits} bits" if headlines else "")
    )
    return cpu


def full_before(n: int, threshold: int) -> None:
    """The grouping as it was before the incremental design (every stored image, every thumbnail decoded), on ``n``
    images with stored-format thumbnails; run from git at ``BEFORE_COMMIT``."""
    import importlib.util
    import subprocess
    import tempfile

    source = subprocess.run(
        ["git", "show", f"{BEFORE_COMMIT}:adpipeline/media/dedupe.py"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(source)
    spec = importlib.util.spec_from_file_location("dedupe_before", handle.name)
    assert spec is not None and spec.loader is not None
    before = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(before)
    rng = np.random.default_rng(0)
    hashes = planted(n, seed=2)
    day = dt.date(2026, 1, 1)
    images = [before.HashedImage(f"c{k:07d}", f"s{k}", int(hashes[k]), day, synthetic_thumb(rng)[0]) for k in range(n)]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, cpu = time.perf_counter(), time.process_time()
    before.group_duplicates(images, threshold)
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    per_image = (peak - base) / n
    print(
        f"full regroup before ({BEFORE_COMMIT}): {n:,} stored images at t={threshold}: {took:.1f} s wall "
        f"({cpu:.1f} s CPU), peak RSS "
        f"{peak:,.0f} MiB ({per_image:.2f} MiB per image); at 1,010,000 images that is about "
        f"{per_image * 1_010_000 / 1024:,.0f} GiB and {took * 1_010_000 / n / 60:,.0f} min"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--baseline-n", type=int, default=50_000)
    parser.add_argument("--threshold", type=int, default=None, help="default 8 for the speed run, else the setting")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side at --baseline-n (best, median)")
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--incremental", action="store_true", help="--new images against --n grouped ones")
    parser.add_argument("--new", type=int, default=10_000)
    parser.add_argument("--all-pairs-within", type=int, default=64, help="the duplicate_all_pairs_within setting")
    parser.add_argument("--headlines", type=int, default=0, help="images say one of N headlines (Zipf)")
    parser.add_argument("--text-bits", type=int, default=None, help="duplicate_text_candidate_bits (default: setting)")
    parser.add_argument(
        "--compare-route", action="store_true", help="with --headlines: the same run with the same-text route off too"
    )
    parser.add_argument("--full-before", type=int, default=0, metavar="N", help="the former full regroup of N images")
    parser.add_argument("--templates", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.threshold is None:
        from adpipeline.settings import Settings

        args.threshold = 8 if not (args.incremental or args.full_before) else Settings(_env_file=None).dhash_threshold
    if args.quality:
        quality(args.templates, args.seed)
    elif args.incremental:

        def run(text_bits: int | None) -> float:
            return incremental(
                args.n,
                args.new,
                args.threshold,
                all_pairs_within=args.all_pairs_within,
                headlines=args.headlines,
                text_bits=text_bits,
            )

        cpu = run(args.text_bits)
        if args.compare_route and args.headlines:  # the naive side: candidates by hash alone (peak RSS: both runs')
            off = run(args.threshold)
            print(f"same-text route: {cpu:.1f} s CPU with it, {off:.1f} s without ({cpu / max(off, 1e-9):.2f}x)")
    elif args.full_before:
        full_before(args.full_before, args.threshold)
    else:
        speed(args.n, args.baseline_n, args.threshold, args.repeats)


if __name__ == "__main__":
    main()
