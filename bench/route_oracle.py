"""What reading text lazily costs in quality, without OCR noise: the varied labelled set grouped with a perfect
"OCR" (every image says one line, its creative's label, in the same place), once with the text stored for every image
before grouping (the flow before issue 19: analysis read all, so the same-text candidate route saw every image) and
once read lazily through ``read_texts`` (now: only images of pixel-confirmed pairs, and the route sees none).

python bench/route_oracle.py [--templates 8] [--seed 19]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from adpipeline.media import dedupe  # noqa: E402


def _analyse(banner: Any) -> tuple[Any, ...]:
    from adpipeline.media.images import analyse_image
    from adpipeline.settings import Settings

    f = analyse_image(banner.data, Settings(_env_file=None))  # type: ignore[call-arg]
    sha = hashlib.sha256(banner.data).hexdigest()
    return (banner.name, banner.label, banner.families, banner.sibling_kind, banner.split, sha, f.dhash) + (
        f.fine_thumb,
        f.width,
        f.height,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--templates", type=int, default=8)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "adpipeline-bench")
    args = parser.parse_args()
    cache = args.cache / f"route-oracle-{args.templates}-{args.seed}.pkl"
    if cache.exists():
        items = pickle.loads(cache.read_bytes())
    else:
        from labelled_banners import generate_varied

        banners = generate_varied(templates=args.templates, seed=args.seed, copies_per_sibling=5)
        with ProcessPoolExecutor(2) as pool:
            items = list(pool.map(_analyse, banners, chunksize=8))
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps(items))
    import dedupe_quality as q

    for split in ("tune", "heldout"):
        part = [i for i in items if i[4] == split]
        text = {i[0]: json.dumps([[i[1].replace("-", " ") + " offer", 0.95, 0.1, 0.1, 0.9, 0.2]]) for i in part}
        base = [dedupe.HashedImage(i[0], i[5], i[6], None, i[7], i[8], i[9]) for i in part]
        stored = [im._replace(ocr_text=text[im.creative_id]) for im in base]
        reads: list[str] = []

        def reader(ids: Any, text: dict[str, str] = text, reads: list[str] = reads) -> dict[str, str | None]:
            reads.extend(ids)
            return {k: text[k] for k in ids}

        scored = [q.Analysed(*i[:7], 0, *i[7:], text[i[0]]) for i in part]
        flows: list[tuple[str, list[dedupe.HashedImage], dict[str, Any]]] = [
            ("text stored for every image (before)", stored, {}),
            ("text read lazily (now)", base, {"read_texts": reader}),
        ]
        for name, images, kwargs in flows:
            reads.clear()
            started = time.perf_counter()
            rows = dedupe.group_duplicates(images, **kwargs)
            s = q.score(scored, {r.creative_id: r.group_id for r in rows})
            most = max([reads.count(r) for r in set(reads)] or [0])
            print(
                f"{split}: {len(part)} images, {s.creatives} creatives | {name} | precision {s.precision:.3f} "
                f"recall {s.recall:.3f} groups {s.groups} | images read {len(set(reads))} (at most {most} each) | "
                f"crop {s.by_family['crop']:.2f} border {s.by_family['border']:.2f} | "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
