"""Images analysed per second on one core, decode included (analyse_image: decode, orient, dHash, thumbnail), and
the same plus a whole-image text read (read_image_text: what the analysis of the build before issue 19 did for every
image, and what grouping now does only for images of pixel-confirmed pairs), in the same run.

python bench/bench_image_hash.py [--count 200]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adpipeline.media.images import analyse_image, read_image_text  # noqa: E402
from adpipeline.settings import Settings  # noqa: E402


def make(size: tuple[int, int], fmt: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(30):
        x, y = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
        draw.rectangle([x, y, x + size[0] // 5, y + size[1] // 7], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        draw.text((x, y), "SALE 50% OFF", fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": 85} if fmt in ("JPEG", "WEBP") else {}))
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    read_image_text(make((64, 64), "PNG", 0), settings)  # load the OCR models once, outside the timing

    def with_text(data: bytes) -> None:
        analyse_image(data, settings)
        read_image_text(data, settings)

    def without(data: bytes) -> None:
        analyse_image(data, settings)

    for size, fmt in (((1200, 628), "JPEG"), ((1080, 1080), "PNG"), ((1080, 1920), "JPEG"), ((1080, 1080), "WEBP")):
        data = [make(size, fmt, seed) for seed in range(min(args.count, 20))]
        took = {}
        for name, step in (("analysis + text read", with_text), ("analysis", without)):
            started = time.perf_counter()
            for k in range(args.count):
                step(data[k % len(data)])
            took[name] = time.perf_counter() - started
        print(
            f"{fmt:>5} {size[0]}x{size[1]}: "
            + ", ".join(
                f"{name} {args.count / t:6.1f} images/s per core ({t / args.count * 1000:.1f} ms each)"
                for name, t in took.items()
            )
            + f"; ratio {took['analysis + text read'] / took['analysis']:.1f}x"
        )


if __name__ == "__main__":
    main()
