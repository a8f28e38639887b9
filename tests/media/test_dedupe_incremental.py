"""Incremental grouping (issue 9) and order independence (issue 14): daily passes against the stored index end with
the same rows as one pass over everything, whatever the order, the batches or the URL strings."""

from __future__ import annotations

import random
import string
import sys
from pathlib import Path

import numpy as np
import pytest

from adpipeline import tables
from adpipeline.media import dedupe
from adpipeline.media.dedupe import (
    Clustering,
    HashedImage,
    Known,
    Member,
    Stored,
    candidates,
    group_duplicates,
    regroup,
)
from adpipeline.settings import Settings
from tests.media.conftest import with_text


class MemoryIndex:
    """``duplicate_groups`` and ``image_hashes`` as the media task reads them, kept in memory."""

    def __init__(self) -> None:
        self.images: dict[str, HashedImage] = {}
        self.rows: dict[str, tables.DuplicateGroup] = {}
        self.thumbs_loaded = 0

    def known(self) -> Known:
        rows = [r for r in self.rows.values() if r.component_id is not None]
        inner = [r.inner_dhash for r in rows]
        return Known(
            creative_ids=np.array([r.creative_id for r in rows], dtype=object),
            dhash=np.array([self.images[r.creative_id].dhash & dedupe.MASK64 for r in rows], dtype=np.uint64),
            inner=np.array([(v or 0) & dedupe.MASK64 for v in inner], dtype=np.uint64),
            has_inner=np.array([v is not None for v in inner], dtype=bool),
            component_ids=np.array([r.component_id for r in rows], dtype=object),
            text_keys=np.array([r.text_key or 0 for r in rows], dtype=np.int64),
            has_text_key=np.array([r.text_key is not None for r in rows], dtype=bool),
        )

    def thumbs(self, ids):
        self.thumbs_loaded += len(ids)
        return {i: Stored(self.images[i].fine_thumb, self.images[i].ocr_text) for i in ids}

    def members(self, components):
        wanted = set(components)
        return [
            Member(self.images[r.creative_id]._replace(fine_thumb=None, ocr_text=None), r)
            for r in self.rows.values()
            if r.component_id in wanted
        ]

    def run(self, batch: list[HashedImage], clustering: Clustering) -> list[tables.DuplicateGroup]:
        for image in batch:
            self.images[image.creative_id] = image
        changed = regroup(batch, self.known(), clustering, load_thumbs=self.thumbs, load_members=self.members)
        for row in changed:
            self.rows[row.creative_id] = row
        return changed

    def sorted_rows(self) -> list[tables.DuplicateGroup]:
        return sorted(self.rows.values(), key=lambda r: (r.group_id, r.creative_id))


def _planted(n: int, seed: int) -> list[HashedImage]:
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, n, dtype=np.uint64)
    for _ in range(n // 4):  # near copies at 0-10 bits, chains of them
        source, target = rng.integers(0, n, 2)
        flips = np.uint64(0)
        for bit in rng.choice(64, int(rng.integers(0, 11)), replace=False):
            flips |= np.uint64(1) << np.uint64(bit)
        hashes[target] = hashes[source] ^ flips
    sizes = rng.integers(1, 4, n) * 300
    images = [
        HashedImage(f"c{i:05d}", f"sha{i:05d}", int(h), width=int(s), height=int(s))
        for i, (h, s) in enumerate(zip(hashes.tolist(), sizes.tolist(), strict=True))
    ]
    images += [images[k]._replace(creative_id=f"dup{k}") for k in range(0, n, 37)]  # same bytes, other URLs
    return images


@pytest.fixture(scope="module")
def banners() -> list[HashedImage]:
    """Real thumbnails: a small varied labelled set (siblings and copies), so the finer check decides."""
    sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
    from labelled_banners import generate_varied

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    out = []
    for k, banner in enumerate(generate_varied(templates=2, seed=5, copies_per_sibling=3)):
        facts = with_text(banner.data, settings)
        out.append(
            HashedImage(
                banner.name, f"{k:04d}", facts.dhash, None, facts.fine_thumb, facts.width, facts.height, facts.ocr_text
            )
        )
    assert all(image.ocr_text for image in out)  # the text check takes part in every property below
    return out


def _partition(rows: list[tables.DuplicateGroup], sha: dict[str, str]) -> set[frozenset[str]]:
    """Groups as sets of contents, and each group's canonical content: what must not move with URL strings."""
    groups: dict[str, set[str]] = {}
    for row in rows:
        groups.setdefault(row.group_id, set()).add(sha[row.creative_id])
    canon = {row.group_id: sha[row.canonical_creative_id] for row in rows}
    return {frozenset({*members, "canonical:" + canon[g]}) for g, members in groups.items()}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_groups_do_not_depend_on_order_or_urls(banners: list[HashedImage], seed: int) -> None:
    """Permutation property: shuffle the images and rename every creative id: the same groups of contents, with the
    same canonical content."""
    images = banners + _planted(400, seed)
    expected = _partition(group_duplicates(images, 10), {im.creative_id: im.sha256 for im in images})
    rng = random.Random(seed)
    renamed = [im._replace(creative_id="".join(rng.choices(string.ascii_letters, k=12))) for im in images]
    rng.shuffle(renamed)
    assert _partition(group_duplicates(renamed, 10), {im.creative_id: im.sha256 for im in renamed}) == expected


@pytest.mark.parametrize(("passes", "seed"), [(2, 1), (5, 2), (9, 3)])
def test_passes_against_the_index_equal_one_pass(banners: list[HashedImage], passes: int, seed: int) -> None:
    images = banners + _planted(600, seed)
    clustering = Clustering(10)
    rng = random.Random(seed)
    order = images[:]
    rng.shuffle(order)
    index = MemoryIndex()
    cuts = sorted(rng.sample(range(1, len(order)), passes - 1))
    for start, end in zip([0, *cuts], [*cuts, len(order)], strict=True):
        index.run(order[start:end], clustering)
    assert index.sorted_rows() == group_duplicates(images, 10)
    assert index.run([], clustering) == []


def test_a_pass_changes_only_rows_that_move(banners: list[HashedImage]) -> None:
    """A new, larger copy becomes its group's canonical: the rows of its component change (component id, canonical),
    no other row is rewritten; and thumbnails are read for candidates only."""
    index = MemoryIndex()
    others = _planted(300, 7)
    index.run(banners + others, Clustering(10))
    original = next(im for im in banners if im.creative_id.endswith("s0-orig"))
    bigger = original._replace(
        creative_id="bigger", sha256="zz-bigger", width=original.width * 2, height=original.height * 2
    )
    before = dict(index.rows)
    index.thumbs_loaded = 0
    changed = {r.creative_id: r for r in index.run([bigger], Clustering(10))}
    component = before[original.creative_id].component_id
    assert set(changed) == {"bigger"} | {c for c, r in before.items() if r.component_id == component}
    assert changed[original.creative_id].group_id == "g_bigger" and changed["bigger"].is_canonical
    assert index.thumbs_loaded < len(before) // 10  # its candidates and its component's members, not the index


def test_fine_check_off_is_dhash_alone(banners: list[HashedImage]) -> None:
    off = group_duplicates(banners, 10, detail_threshold=None)
    stripped = group_duplicates([im._replace(fine_thumb=None, ocr_text=None) for im in banners], 10)
    assert [(r.creative_id, r.group_id) for r in off] == [(r.creative_id, r.group_id) for r in stripped]


def test_media_group_stage_is_incremental_on_the_warehouse(tmp_path: Path, banners: list[HashedImage]) -> None:
    """The task itself on DuckDB: images analysed on three days, grouped after each (in passes of 7), end with the
    rows of one grouping of everything; a run with nothing pending changes nothing."""
    import datetime as dt

    from adpipeline.stages import media
    from adpipeline.stages.context import StageContext
    from adpipeline.warehouse.schema import rows_from_frame
    from adpipeline.window import Window

    settings = Settings(_env_file=None, home=tmp_path, dedupe_batch_size=7)  # type: ignore[call-arg]
    day = dt.date(2026, 1, 1)
    images = banners + _planted(40, 4)
    rows = [
        tables.ImageHash(
            creative_id=im.creative_id,
            sha256=im.sha256,
            dhash=dedupe.signed64(im.dhash & dedupe.MASK64),
            dhash_hex=f"{im.dhash & dedupe.MASK64:016x}",
            width=im.width,
            height=im.height,
            aspect_ratio=1.0,
            orientation="square",
            fine_thumb=im.fine_thumb,
            ocr_text=im.ocr_text,
        )
        for im in images
    ]
    random.Random(3).shuffle(rows)
    for part in (rows[:20], rows[20:50], rows[50:]):
        with StageContext(settings, Window(day, day)) as ctx:
            ctx.warehouse.ensure_tables(media.MEDIA_TABLES)
            ctx.warehouse.merge_rows("image_hashes", part)
            media.group(ctx)
    with StageContext(settings, Window(day, day)) as ctx:
        assert media.group(ctx)["rows_changed"] == 0
        stored = ctx.warehouse.read_table("duplicate_groups")
    got = sorted(rows_from_frame(tables.DuplicateGroup, stored), key=lambda r: (r.group_id, r.creative_id))
    assert got == group_duplicates(images, settings.dhash_threshold)


def test_text_pairs_are_every_same_key_pair_within_the_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same-text route against a brute-force scan, read in slices of a few pairs (as a headline shared by many
    images is), pending against the index and pending among themselves."""
    rng = np.random.default_rng(7)
    monkeypatch.setattr(candidates, "_TEXT_PAIR_CHUNK", 5)

    def hashes(n: int) -> candidates.Hashes:
        base = rng.integers(0, 2**64, 4, dtype=np.uint64)
        dhash = base[rng.integers(0, 4, n)] ^ rng.integers(0, 2**64, n, dtype=np.uint64) & np.uint64(0xFFFFFF)
        inner = dhash ^ rng.integers(0, 2**64, n, dtype=np.uint64) & np.uint64(0xFFFFFFF)
        keys = rng.integers(0, 5, n).astype(np.int64)
        return candidates.Hashes(dhash, inner, rng.random(n) < 0.7, keys, rng.random(n) < 0.8)

    clustering = Clustering(text_candidate_bits=20)
    queries, index = hashes(60), hashes(90)

    def near(a: candidates.Hashes, i: int, b: candidates.Hashes, j: int) -> bool:
        if not (a.has_key[i] and b.has_key[j] and a.keys[i] == b.keys[j]):
            return False
        on_inner = a.has_inner[i] and b.has_inner[j] and bin(int(a.inner[i] ^ b.inner[j])).count("1") <= 20
        return on_inner or bin(int(a.dhash[i] ^ b.dhash[j])).count("1") <= 20

    rows_q, rows_i = np.arange(60), np.arange(90)
    got = {tuple(p) for p in candidates.text_pairs(queries, rows_q, index, rows_i, clustering).tolist()}
    assert got == {(i, j) for i in range(60) for j in range(90) if near(queries, i, index, j)} and got
    among = {tuple(p) for p in candidates.text_pairs(queries, rows_q, queries, rows_q, clustering).tolist()}
    assert among == {(i, j) for i in range(60) for j in range(i + 1, 60) if near(queries, i, queries, j)} and among
    off = Clustering(text_candidate_bits=12)  # at the dHash threshold: the route adds nothing, so it is off
    assert not len(candidates.text_pairs(queries, rows_q, index, rows_i, off))


def test_a_crop_in_a_frame_beyond_the_threshold_joins_by_its_text(tmp_path: Path) -> None:
    """A copy cropped 5-6 % and framed is more than 12 bits from its original on both dHashes; its tallest line reads
    the same, so it is a candidate and the finer check confirms it (stored with its text key); with the route off, or
    the line counted as too common, it stays alone. Incremental passes find it against the index too."""
    import io

    from PIL import Image

    sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
    from labelled_banners import generate_varied

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    banner = next(b for b in generate_varied(templates=1, seed=5, copies_per_sibling=1) if b.name.endswith("orig"))
    picture = Image.open(io.BytesIO(banner.data)).convert("RGB")
    width, height = picture.size
    cropped = picture.crop((int(width * 0.05), int(height * 0.06), width, height))
    pad = int(min(cropped.size) * 0.02)
    framed = Image.new("RGB", (cropped.width + 2 * pad, cropped.height + 2 * pad), (0, 0, 0))
    framed.paste(cropped, (pad, pad))
    out = io.BytesIO()
    framed.save(out, "PNG")
    images = []
    for name, data in (("original", banner.data), ("copy", out.getvalue())):
        facts = with_text(data, settings)
        images.append(
            HashedImage(name, name, facts.dhash, None, facts.fine_thumb, facts.width, facts.height, facts.ocr_text)
        )
    first, second = images
    assert bin((first.dhash ^ second.dhash) & dedupe.MASK64).count("1") > 12
    assert bin(dedupe.inner_hash(first.fine_thumb) ^ dedupe.inner_hash(second.fine_thumb)).count("1") > 12

    rows = group_duplicates(images)
    assert len({r.group_id for r in rows}) == 1
    assert all(r.text_key is not None for r in rows)
    assert len({r.group_id for r in group_duplicates(images, text_candidate_bits=12)}) == 2
    assert len({r.group_id for r in group_duplicates(images, text_check=False)}) == 2
    common = Clustering(text_key_max_images=1)  # a line two images say counts as too common: no candidate
    assert len({r.group_id for r in regroup(images, Known.empty(), common, load_thumbs=lambda ids: {})}) == 2
    index = MemoryIndex()
    index.run([first], Clustering())
    index.run([second], Clustering())
    assert index.sorted_rows() == rows
