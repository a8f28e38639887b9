"""Text is read only where it decides (issue 19): a small day through fetch, analyse, grouping and the offline
extractor, with every OCR call counted by the pixels it read. Images in no candidate pair are never read, no image is
read twice in full, the extractor reuses what grouping read and stores what it reads, and the OCR engine is built
once per process."""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adpipeline import tables, text_reader
from adpipeline.features import offline
from adpipeline.settings import Settings
from adpipeline.stages import features, media
from adpipeline.stages.context import StageContext
from adpipeline.stages.ingest import creative_id
from adpipeline.window import Window
from tests.media.conftest import jpeg_bytes

DAY = dt.date(2026, 10, 1)


def _day(root: Path) -> dict[str, bytes]:
    """One template's seven siblings with a copy each (candidates: the text decides the sibling pairs the pixels
    cannot), and four unrelated photos of other sizes (no candidate at all)."""
    sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
    from labelled_banners import generate_varied

    files = {b.name: b.data for b in generate_varied(templates=1, seed=5, copies_per_sibling=1)}
    files |= {f"alone-{k}": jpeg_bytes((300 + 37 * k, 200 + 11 * k)) for k in range(4)}
    for name, data in files.items():
        (root / f"{name}.img").write_bytes(data)
    return files


def _pixels_key(rgb: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(rgb).tobytes()).hexdigest()


def test_text_is_read_only_for_candidates_and_once_per_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "media"
    root.mkdir()
    files = _day(root)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        home=tmp_path / "home",
        allow_local_paths=True,
        local_media_roots=[root],
        dedupe_batch_size=5,  # several grouping passes: what one pass read, the next never reads again
        feature_provider="offline",
    )
    reads: Counter[str] = Counter()
    real_run_ocr = text_reader.run_ocr

    def counted(rgb: np.ndarray, **kwargs: Any) -> Any:
        reads[_pixels_key(rgb)] += 1
        return real_run_ocr(rgb, **kwargs)

    monkeypatch.setattr(text_reader, "run_ocr", counted)
    monkeypatch.setattr(features, "_face_counter", lambda settings: None)  # faces are not what is counted here
    ids = {name: creative_id(str(root / f"{name}.img"), "image") for name in files}
    window = Window(DAY, DAY)
    with StageContext(settings, window) as ctx:
        ctx.warehouse.ensure_tables(media.MEDIA_TABLES)
        ctx.warehouse.merge_rows(
            "creatives",
            [
                tables.Creative(
                    creative_id=ids[n],
                    url=str(root / f"{n}.img"),
                    media_type="image",
                    first_seen_date=DAY,
                    last_seen_date=DAY,
                )
                for n in files
            ],
        )
        media.fetch_and_analyse(ctx)
        assert not reads  # analysis reads no text
        builds_before = text_reader.ENGINE_BUILDS
        grouped = media.group(ctx)
        assert grouped["passes"] >= 3
        after_group = Counter(reads)
        features.images(ctx)
        stored = ctx.warehouse.read_table("image_hashes").set_index("creative_id")["ocr_text"]
        groups = ctx.warehouse.read_table("duplicate_groups").set_index("creative_id")
        assert media.group(ctx)["texts_read"] == 0  # nothing pending: nothing read
    assert text_reader.ENGINE_BUILDS - builds_before <= 1  # one engine for every pass and the extractor

    from PIL import Image

    def key_of(name: str) -> str:
        with Image.open(root / f"{name}.img") as image:
            return _pixels_key(np.asarray(image.convert("RGB")))

    keys = {name: key_of(name) for name in files}
    assert max(reads.values()) == 1  # no image read twice in full, over grouping and the extractor
    alone = [n for n in files if n.startswith("alone")]
    # grouping read only images of pairs the pixels confirmed; the unrelated photos were in no candidate pair
    assert not any(after_group[keys[n]] for n in alone)
    assert 0 < grouped["texts_read"] == sum(after_group.values()) <= len(files) - len(alone)
    # the extractor read only canonical images grouping had not read, and stored what it read
    canonical = [n for n in files if groups.loc[ids[n], "is_canonical"]]
    extractor_read = [n for n in files if reads[keys[n]] and not after_group[keys[n]]]
    assert set(extractor_read) <= set(canonical)
    assert set(alone) <= set(extractor_read)  # a canonical photo is read once, by the extractor
    assert all(isinstance(stored[ids[n]], str) for n in canonical)  # every canonical's text is stored now
    assert sum(isinstance(stored[ids[n]], str) for n in files) == sum(reads.values())


def test_the_extractor_reuses_a_stored_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given the stored record, the extractor reads nothing and derives the same text features from it."""
    from tests.media.test_text_check import _banner

    data = _banner("$45.99")
    extractor = offline.OfflineExtractor(Settings(_env_file=None))  # type: ignore[call-arg]
    fresh = extractor.extract_image(data, "a")
    record = extractor.texts_read["a"]
    assert record == text_reader.ocr_record(text_reader.run_ocr(extractor._decode_image(data), max_side=640))

    def no_ocr(*args: object, **kwargs: object) -> None:
        raise AssertionError("read again")

    monkeypatch.setattr(text_reader, "run_ocr", no_ocr)
    again = offline.OfflineExtractor(Settings(_env_file=None))  # type: ignore[call-arg]
    reused = again.extract_image(data, "a", ocr_text=record)
    assert not again.texts_read
    keep = {"creative_id", "provider", "model", "prompt_version", "status", "reason", "raw_response"}
    assert fresh.text and fresh.promotions  # the banner's offer and price are read
    # the same row whoever read the text first (features come from the stored form either way)
    assert reused.model_dump(exclude=keep) == fresh.model_dump(exclude=keep)
