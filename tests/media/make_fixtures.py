"""Write the small committed image fixtures and their golden dHashes: ``python tests/media/make_fixtures.py``.

Golden values are ``imagehash.dhash`` of each fixture (opened with Pillow, converted to RGB), recorded once.
"""

from __future__ import annotations

import json
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).parent / "fixtures"


def _banner(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, width - 10)), int(rng.integers(0, height - 10))
        x1, y1 = x0 + int(rng.integers(10, width // 2)), y0 + int(rng.integers(10, height // 2))
        draw.rectangle([x0, y0, x1, y1], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    draw.text((8, 8), f"SALE {seed}", fill=(255, 255, 255))
    return image


def main() -> None:
    HERE.mkdir(exist_ok=True)
    made = {
        "landscape.png": (_banner(191, 100, 1), "PNG", {}),
        "square.jpg": (_banner(120, 120, 2), "JPEG", {"quality": 90}),
        "portrait.webp": (_banner(90, 160, 3), "WEBP", {"quality": 90}),
        "story.bmp": (_banner(72, 128, 4), "BMP", {}),
        "feed.gif": (_banner(80, 100, 5).convert("P"), "GIF", {}),
    }
    golden = {}
    for name, (image, fmt, options) in made.items():
        path = HERE / name
        image.save(path, fmt, **options)
        with Image.open(path) as reopened:
            golden[name] = str(imagehash.dhash(reopened.convert("RGB")))
    (HERE / "golden_dhash.json").write_text(json.dumps(golden, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
