"""The media stage's per-image path on a generated day, this build against an older one in the same run (issue 19).

python bench/bench_media_stage.py [--images 10000] [--copies 0.3] [--old-sample 60] [--chain]
python bench/bench_media_stage.py --images 2000 --copies 0    # a day with no near-duplicates

The day: banners from many templates (half of them with one template sibling: another price, headline, offer, call to
action, product colour or a mirrored layout), and ``--copies`` of the images near-duplicate copies of them (1-4
transform families each: brightness, contrast, resize, JPEG, crop, border or frame, badge, watermark, format), written
once as files under ``--cache``. Measured, wall time on this machine's cores:

* fetch: the files read and hashed (sha256), as the fetcher does for local paths;
* analyse: ``analyse_image`` in ``--workers`` processes (decode, dHash, thumbnail);
* group: ``group_duplicates`` in one process, reading an image's text (OCR, ``read_image_text``) only when a pair
  needs it; the images read are counted;
* with ``--chain``: the offline extractor on each group's canonical image, in ``--workers`` processes, reusing the
  text grouping read (and reading the rest once).

The old build (``--baseline-rev``, taken with ``git archive``) runs the same path in a subprocess on the first
``--old-sample`` images (its analysis read every image's text; its extractor read every canonical again at 1280 px),
so both figures come from the same run on the same load. Images per second = images / wall seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CODE = Path(os.environ.get("BENCH_CODE_DIR", ROOT))
sys.path.insert(0, str(CODE))
sys.path.insert(0, str(ROOT / "bench"))


# --- the day ---------------------------------------------------------------------------------------------------------
def _one(job: tuple[int, int, float, bool]) -> list[tuple[str, bytes]]:
    """One template's originals (base, maybe a sibling) and their copies."""
    from labelled_banners import FAMILIES, SIZES, VARIED_SIBLING_KINDS, _sibling, _varied_spec, apply_families

    from adpipeline.demo.banners import draw_flat_banner, encode

    t, seed, copies, siblings = job
    rng = random.Random(seed * 1_000_003 + t)
    size = rng.choice(SIZES)
    base = _varied_spec(rng)
    specs = [("base", base)]
    if siblings and rng.random() < 0.5:
        kind = rng.choice(VARIED_SIBLING_KINDS)
        specs.append((kind, _sibling(base, kind, rng)))
    out = []
    for kind, spec in specs:
        image = draw_flat_banner(size, spec)
        fmt = rng.choice(["PNG", "JPEG"])
        out.append((f"t{t:05d}-{kind}-orig", encode(image, fmt)))
        # copies per original so that about `copies` of all images are copies
        n = int(copies / (1 - copies)) + (rng.random() < (copies / (1 - copies)) % 1) if copies < 1 else 0
        for c in range(n):
            families = tuple(rng.sample(FAMILIES, rng.choices([1, 2, 3, 4], weights=[4, 3, 2, 1])[0]))
            data, _ = apply_families(image.copy(), families, fmt, rng)
            out.append((f"t{t:05d}-{kind}-c{c}", data))
    return out


def make_day(images: int, copies: float, seed: int, cache: Path, workers: int) -> list[Path]:
    """The day's files (made once, kept under ``cache``), in a shuffled order."""
    folder = cache / f"day-{images}-{copies:g}-{seed}"
    done = folder / "done.json"
    if done.exists():
        return [folder / name for name in json.loads(done.read_text())]
    folder.mkdir(parents=True, exist_ok=True)
    siblings = copies > 0  # a day with no near-duplicates has no template siblings either
    names: list[str] = []
    t = 0
    with ProcessPoolExecutor(workers) as pool:
        while len(names) < images:
            batch = range(t, t + max(16, (images - len(names)) // 2))
            for made in pool.map(_one, [(k, seed, copies, siblings) for k in batch], chunksize=4):
                for name, data in made:
                    if len(names) < images:
                        (folder / name).write_bytes(data)
                        names.append(name)
            t = batch.stop
    random.Random(seed).shuffle(names)
    done.write_text(json.dumps(names))
    return [folder / name for name in names]


# --- the path measured (runs against whichever build is on sys.path) ------------------------------------------------
def _fetch(path: str) -> tuple[str, str, bytes]:
    data = Path(path).read_bytes()
    return Path(path).name, hashlib.sha256(data).hexdigest(), data


def _analyse(path: str) -> Any:
    from adpipeline.media.images import analyse_image
    from adpipeline.settings import Settings

    name, sha, data = _fetch(path)
    return name, sha, analyse_image(data, Settings(_env_file=None))  # type: ignore[call-arg]


def _extract(job: tuple[str, str | None]) -> tuple[str, str | None]:
    import inspect

    from adpipeline.features.offline import OfflineExtractor
    from adpipeline.settings import Settings

    path, text = job
    extractor = _EXTRACTOR.setdefault(0, OfflineExtractor(Settings(_env_file=None)))  # type: ignore[call-arg]
    data = Path(path).read_bytes()
    if "ocr_text" in inspect.signature(extractor.extract_image).parameters:
        extractor.extract_image(data, Path(path).name, ocr_text=text)
        return Path(path).name, getattr(extractor, "texts_read", {}).pop(Path(path).name, None)
    extractor.extract_image(data, Path(path).name)  # the old build: reads every canonical again
    return Path(path).name, None


_EXTRACTOR: dict[int, Any] = {}


def run_path(paths: list[Path], workers: int, chain: bool) -> dict[str, Any]:
    """fetch + analyse (``workers`` processes) + group (one process, text read lazily where the build does) [+ the
    offline extractor on the canonical images]; wall seconds of each step and the texts read."""
    import inspect

    from adpipeline.media import dedupe

    started = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        analysed = list(pool.map(_analyse, [str(p) for p in paths], chunksize=8))
    analyse_s = time.perf_counter() - started
    by_name = {str(p.name): p for p in paths}
    images = [
        dedupe.HashedImage(name, sha, f.dhash, None, f.fine_thumb, f.width, f.height, f.ocr_text)
        for name, sha, f in analysed
    ]
    texts: dict[str, str | None] = {}
    lazy = "read_texts" in inspect.signature(dedupe.group_duplicates).parameters
    kwargs: dict[str, Any] = {}
    if lazy:
        from adpipeline.media import images as image_module
        from adpipeline.settings import Settings

        settings = Settings(_env_file=None)  # type: ignore[call-arg]

        def read(ids: Any) -> dict[str, str | None]:
            blobs = {i: by_name[i].read_bytes() for i in ids}
            if hasattr(image_module, "read_image_texts"):  # a batch on every core (the stage's reader)
                texts.update(image_module.read_image_texts(blobs, settings))
            else:
                texts.update({i: image_module.read_image_text(b, settings) for i, b in blobs.items()})
            return {i: texts[i] for i in ids}

        kwargs["read_texts"] = read
    started = time.perf_counter()
    rows = dedupe.group_duplicates(images, **kwargs)
    group_s = time.perf_counter() - started
    out: dict[str, Any] = {
        "images": len(paths),
        "analyse_s": analyse_s,
        "group_s": group_s,
        "groups": len({r.group_id for r in rows}),
        "texts_read_grouping": len(texts) if lazy else len(paths),
    }
    if chain:
        canonical = [r.creative_id for r in rows if r.is_canonical]
        started = time.perf_counter()
        with ProcessPoolExecutor(workers) as pool:
            read = list(pool.map(_extract, [(str(by_name[c]), texts.get(c)) for c in canonical], chunksize=4))
        out["extract_s"] = time.perf_counter() - started
        out["canonical"] = len(canonical)
        out["texts_read_extractor"] = sum(text is not None for _, text in read) if lazy else len(canonical)
    return out


def _old_build(rev: str) -> Path:
    target = Path(tempfile.mkdtemp(prefix="bench-media-old-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def _report(label: str, r: dict[str, Any]) -> tuple[float, float | None]:
    """Print one build's figures; (media stage images/s, chain images/s or None)."""
    media_s = r["analyse_s"] + r["group_s"]
    line = (
        f"{label}: {r['images']} images, {r['groups']} groups; fetch+analyse {r['analyse_s']:.1f} s, group "
        f"{r['group_s']:.1f} s ({r['texts_read_grouping']} images' text read): media stage "
        f"{r['images'] / media_s:.2f} images/s"
    )
    rate, chain = r["images"] / media_s, None
    if "extract_s" in r:
        chain_s = media_s + r["extract_s"]
        line += (
            f"; offline extractor {r['extract_s']:.1f} s on {r['canonical']} canonical images "
            f"({r['texts_read_extractor']} read): chain {r['images'] / chain_s:.2f} images/s"
        )
        chain = r["images"] / chain_s
    print(line, flush=True)
    return rate, chain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--copies", type=float, default=0.3, help="share of the day that are near-duplicate copies")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--old-sample", type=int, default=60, help="images the old build runs on (0: skip it)")
    parser.add_argument("--baseline-rev", default="c05afcc", help="the old build (before text was read lazily)")
    parser.add_argument("--chain", action="store_true", help="also the offline extractor on the canonical images")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "adpipeline-bench")
    parser.add_argument("--only-paths", type=Path, help=argparse.SUPPRESS)  # the old build's subprocess
    args = parser.parse_args()
    if args.only_paths:
        paths = [Path(p) for p in json.loads(args.only_paths.read_text())]
        print("RESULT " + json.dumps(run_path(paths, args.workers, args.chain)))
        return
    started = time.perf_counter()
    paths = make_day(args.images, args.copies, args.seed, args.cache, args.workers)
    print(
        f"day: {len(paths)} images, {args.copies:.0%} copies ({time.perf_counter() - started:.0f} s to make or load); "
        f"{os.cpu_count()} cores, {args.workers} workers; load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    new = _report("this build", run_path(paths, args.workers, args.chain))
    if args.old_sample:
        old_dir = _old_build(args.baseline_rev)
        sample = paths[: args.old_sample]
        listing = old_dir / "paths.json"
        listing.write_text(json.dumps([str(p) for p in sample]))
        command = [sys.executable, str(Path(__file__).resolve()), "--only-paths", str(listing)]
        command += ["--workers", str(args.workers)] + (["--chain"] if args.chain else [])
        env = {**os.environ, "BENCH_CODE_DIR": str(old_dir)}
        done = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
        result = json.loads(next(line for line in done.splitlines() if line.startswith("RESULT "))[7:])
        old = _report(f"old build {args.baseline_rev} (first {len(sample)} images)", result)
        print(f"media stage: {new[0] / old[0]:.1f}x the old build's images/s")
        if new[1] is not None and old[1] is not None:
            print(f"chain with the offline extractor: {new[1] / old[1]:.1f}x the old build's images/s")
        print(f"load average at the end {os.getloadavg()[0]:.1f} (a shared machine: both figures under the same load)")


if __name__ == "__main__":
    main()
