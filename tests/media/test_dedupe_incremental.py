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
from adpipeline.media.dedupe import Clustering, HashedImage, Known, Member, Stored, group_duplicates, regroup
from adpipeline.media.images import analyse_image
from adpipeline.settings import Settings


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
            dhash=np.array([self.images[r.creative_id].dhash & dedupe._MASK64 for r in rows], dtype=np.uint64),
            inner=np.array([(v or 0) & dedupe._MASK64 for v in inner], dtype=np.uint64),
            has_inner=np.array([v is not None for v in inner], dtype=bool),
            component_ids=np.array([r.component_id for r in rows], dtype=object),
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
        facts = analyse_image(banner.data, settings)
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
    off = group_duplicates(banners, 10, fine_threshold=None)
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
            dhash=dedupe._signed(im.dhash & dedupe._MASK64),
            dhash_hex=f"{im.dhash & dedupe._MASK64:016x}",
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
