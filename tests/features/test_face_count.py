"""The offline extractor's face_count comes from the configured face engine, with the video pipeline's rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adpipeline.settings import Settings
from adpipeline.stages.features import _face_counter

FACES = Path(__file__).resolve().parents[2] / "adpipeline" / "demo" / "assets" / "faces"


@pytest.fixture(scope="module")
def counter():
    return _face_counter(Settings(_env_file=None))


def test_counts_a_face_in_a_photo_and_none_in_a_plain_banner(counter) -> None:
    photo = np.asarray(Image.open(sorted(FACES.glob("*/*.jpg"))[0]).convert("RGB"))
    assert counter(photo) == 1
    banner = np.full((600, 1200, 3), (30, 90, 200), dtype=np.uint8)
    assert counter(banner) == 0


def test_faces_below_the_minimum_size_are_not_counted(counter) -> None:
    photo = Image.open(sorted(FACES.glob("*/*.jpg"))[0]).convert("RGB")
    tiny = photo.resize((photo.width // 8, photo.height // 8))
    canvas = Image.new("RGB", (800, 600), (240, 240, 240))
    canvas.paste(tiny, (10, 10))
    assert counter(np.asarray(canvas)) == 0
