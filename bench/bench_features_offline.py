"""Offline feature extraction throughput: images per second per core, one process vs mapped chunks side by side.

python bench/bench_features_offline.py                 # the demo sample's banners, 1 process, then 2 chunks at once
python bench/bench_features_offline.py --images 120 --workers 2

The offline extractor (OCR, rules, colours, face count) is CPU-bound and runs one image at a time in a task; the
features DAG gets parallelism from mapped ``extract_features`` tasks over chunks. This prints, in one run, images/s
of one process (the naive way: one task over the whole window) and of ``--workers`` processes each on its own chunk
(what the DAG does with that many worker slots), per core, and the ratio. Engine and OCR model loading are timed
separately from the per-image steady state.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _images(n: int, out: Path) -> list[Path]:
    from adpipeline.demo.sample import generate_sample

    manifest = generate_sample(out, days=3, n_images=n, n_videos=0)
    files = sorted(p for p in manifest.out_dir.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    return files[:n]


def _chunk(paths: list[str]) -> tuple[float, float, int]:
    """Load the extractor (timed apart), then extract every image; returns (load s, work s, images ok)."""
    from adpipeline.features.offline import OfflineExtractor
    from adpipeline.settings import Settings
    from adpipeline.stages.features import _face_counter

    t0 = time.perf_counter()
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    extractor = OfflineExtractor(settings, face_counter=_face_counter(settings))
    extractor.extract_image(Path(paths[0]).read_bytes(), "warm-up")  # loads the OCR models
    t1 = time.perf_counter()
    ok = sum(extractor.extract_image(Path(p).read_bytes(), p).status == "ok" for p in paths)
    return t1 - t0, time.perf_counter() - t1, ok


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        paths = [str(p) for p in _images(args.images, Path(tmp))]
        load1, work1, ok1 = _chunk(paths)  # the naive way: one task, one process, the whole window
        chunks = [paths[i :: args.workers] for i in range(args.workers)]
        t0 = time.perf_counter()
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=get_context("spawn")) as pool:
            parts = list(pool.map(_chunk, chunks))
        wall = time.perf_counter() - t0
        work_n = max(p[1] for p in parts)
    n = len(paths)
    one = n / work1
    many = n / work_n
    print(
        json.dumps(
            {
                "bench": "offline features",
                "images": n,
                "cores": os.cpu_count(),
                "one_process": {"load_s": round(load1, 2), "images_per_s": round(one, 2), "ok": ok1},
                f"{args.workers}_chunks": {
                    "load_s": round(max(p[0] for p in parts), 2),
                    "images_per_s": round(many, 2),
                    "images_per_s_per_core": round(many / min(args.workers, os.cpu_count() or 1), 2),
                    "wall_s_with_start_up": round(wall, 2),
                    "ok": sum(p[2] for p in parts),
                },
                "ratio_vs_one_process": round(many / one, 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
