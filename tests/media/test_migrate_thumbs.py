"""``adpipeline migrate-thumbs``: rows in the two earlier thumbnail formats (and rows without a thumbnail or without a
recorded format) are brought to the one stored format from their bytes in the bucket; groups do not move; a second
run does nothing."""

from __future__ import annotations

import base64
import datetime as dt
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from adpipeline.cli import app
from adpipeline.media import dedupe
from adpipeline.media.images import analyse_image
from adpipeline.settings import Settings
from adpipeline.stages import media
from adpipeline.stages.context import StageContext
from adpipeline.stages.media_thumbs import migrate_thumbs
from adpipeline.tables import DuplicateGroup, ImageHash
from adpipeline.warehouse.schema import rows_from_frame
from adpipeline.window import Window

DAY = dt.date(2026, 1, 1)


def _format_2(thumb: str) -> str:
    """The 64-px format (64 x 64 luma + 32 x 32 Cb/Cr) of the same image, as rows before the detail stage held."""
    raw = zlib.decompress(base64.b64decode(thumb))
    luma = np.frombuffer(raw[: 128 * 128], np.uint8).reshape(64, 2, 64, 2).mean(axis=(1, 3)).round()
    chroma = np.frombuffer(raw[128 * 128 :], np.uint8).reshape(2, 32, 2, 32, 2).mean(axis=(2, 4)).round()
    return base64.b64encode(zlib.compress(luma.astype(np.uint8).tobytes() + chroma.astype(np.uint8).tobytes())).decode()


def _format_1(thumb: str) -> str:
    """The oldest format: 32 x 32 grey, not compressed."""
    raw = zlib.decompress(base64.b64decode(thumb))
    luma = np.frombuffer(raw[: 128 * 128], np.uint8).reshape(32, 4, 32, 4).mean(axis=(1, 3)).round()
    return base64.b64encode(luma.astype(np.uint8).tobytes()).decode()


def _image_hashes(ctx: StageContext) -> dict[str, ImageHash]:
    frame = ctx.warehouse.query("SELECT * FROM {{ image_hashes }}")
    return {r.creative_id: r for r in rows_from_frame(ImageHash, frame)}


def _groups(ctx: StageContext) -> dict[str, DuplicateGroup]:
    frame = ctx.warehouse.query("SELECT * FROM {{ duplicate_groups }}")
    return {r.creative_id: r for r in rows_from_frame(DuplicateGroup, frame)}


def _analysed(ctx: StageContext, banners: list[tuple[str, bytes]]) -> list[ImageHash]:
    """Each banner's bytes in the bucket and its ``image_hashes`` row, as the media stage writes them."""
    rows = []
    for name, data in banners:
        sha256, _ = ctx.bucket.put_blob(data)
        rows.append(analyse_image(data, ctx.settings).to_row(name, sha256))
    return rows


@pytest.fixture(scope="module")
def day_of_banners() -> list[tuple[str, bytes]]:
    sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
    from labelled_banners import generate

    return [(banner.name, banner.data) for banner in generate(templates=2, seed=24, copies_per_sibling=2)]


def test_migration_brings_old_rows_to_the_current_format_and_keeps_the_groups(
    tmp_path: Path, day_of_banners: list[tuple[str, bytes]]
) -> None:
    settings = Settings(_env_file=None, home=tmp_path, duplicate_text_check=False)  # type: ignore[call-arg]
    with StageContext(settings, Window(DAY, DAY)) as ctx:
        ctx.warehouse.ensure_tables(media.MEDIA_TABLES)
        rows = _analysed(ctx, day_of_banners)
        ctx.warehouse.merge_rows("image_hashes", rows)
        media.group(ctx)
        current = _image_hashes(ctx)
        grouped = _groups(ctx)
        assert all(r.thumb_format == dedupe.THUMB_FORMAT for r in current.values())
        assert len({g.group_id for g in grouped.values()}) < len(grouped)  # copies were grouped: the test has groups

        # The same rows as earlier releases stored them: both older formats, no thumbnail, no recorded format, and
        # their index state (inner_dhash) as an earlier pass computed it from the older thumbnail.
        names = sorted(current)
        old = {
            **{n: _format_2(current[n].fine_thumb or "") for n in names[0::4]},
            **{n: _format_1(current[n].fine_thumb or "") for n in names[1::4]},
            **{n: None for n in names[2::8]},
        }
        unrecorded = names[3::4]  # current bytes, written before thumb_format existed
        ctx.warehouse.merge_rows(
            "image_hashes",
            [current[n].model_copy(update={"fine_thumb": thumb, "thumb_format": None}) for n, thumb in old.items()]
            + [current[n].model_copy(update={"thumb_format": None}) for n in unrecorded],
        )
        stale = [grouped[n].model_copy(update={"inner_dhash": None}) for n in old]
        ctx.warehouse.merge_rows("duplicate_groups", stale)
        missing = names[4]  # bytes gone from the bucket: left as it is, counted
        gone = ctx.warehouse.query(f"SELECT sha256 FROM {{{{ image_hashes }}}} WHERE creative_id = '{missing}'")
        assert missing in old
        with pytest.raises(dedupe.OldThumbFormat, match="migrate-thumbs"):
            dedupe.load_thumb(_format_2(current[names[0]].fine_thumb or ""))

        dry = migrate_thumbs(ctx, dry_run=True)
        assert dry["checked"] == len(old) + len(unrecorded) and dry["reanalysed"] == 0
        assert _image_hashes(ctx)[names[0]].fine_thumb == old[names[0]]  # a dry run writes nothing
        assert dry["found_formats"] == {
            "2": len(names[0::4]),
            "1": len(names[1::4]),
            "None": len(names[2::8]),
            "3": len(unrecorded),
        }

        ctx.bucket.delete(ctx.bucket.blob_key(str(gone["sha256"].iloc[0])))
        out = migrate_thumbs(ctx, page=3)  # several pages
        assert out["reanalysed"] == len(old) - 1 and out["blob_missing"] == 1
        assert out["already_current"] == len(unrecorded)
        after = _image_hashes(ctx)
        for name in names:
            if name == missing:
                assert after[name].fine_thumb == old[name] and after[name].thumb_format is None
                continue
            # the analyser's thumbnail again, in the current format; every other column as it was
            assert after[name] == current[name], name
            assert dedupe.thumb_format(after[name].fine_thumb) == dedupe.THUMB_FORMAT
        regrouped = _groups(ctx)
        for name in names:  # the groups are unchanged, and the index state follows the new thumbnails
            expected = grouped[name].model_copy(update={"inner_dhash": None}) if name == missing else grouped[name]
            assert regrouped[name] == expected, name

        again = migrate_thumbs(ctx)  # idempotent: only the row whose bytes are gone is looked at again
        assert again["checked"] == 1 and again["reanalysed"] == 0 and again["blob_missing"] == 1
        assert _image_hashes(ctx) == after and _groups(ctx) == regrouped
        assert media.group(ctx)["rows_changed"] == 0  # nothing became pending

    # The command line runs the same function (here: only the row whose bytes are gone is left).
    result = CliRunner().invoke(app, ["migrate-thumbs"], env={"ADP_HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert "checked=1" in result.output and "reanalysed=0" in result.output and "blob_missing=1" in result.output


def test_the_group_task_migrates_old_rows_before_it_groups(
    tmp_path: Path, day_of_banners: list[tuple[str, bytes]]
) -> None:
    """An upgrade needs no manual step: the media group task finds rows in an older format (one count query) and
    migrates them before comparing thumbnails; new images group against them as before."""
    settings = Settings(_env_file=None, home=tmp_path, duplicate_text_check=False)  # type: ignore[call-arg]
    half = len(day_of_banners) // 2
    with StageContext(settings, Window(DAY, DAY)) as ctx:
        ctx.warehouse.ensure_tables(media.MEDIA_TABLES)
        rows = _analysed(ctx, day_of_banners)
        ctx.warehouse.merge_rows("image_hashes", rows[:half])
        assert media.group(ctx)["thumbs_migrated"] == 0  # nothing old: one count query
        current = _image_hashes(ctx)
        ctx.warehouse.merge_rows(  # as an earlier release stored them
            "image_hashes",
            [
                r.model_copy(update={"fine_thumb": _format_2(r.fine_thumb or ""), "thumb_format": None})
                for r in current.values()
            ],
        )
        ctx.warehouse.merge_rows("image_hashes", rows[half:])  # a new day's images
        out = media.group(ctx)
        assert out["thumbs_migrated"] == half and out["images"] == len(rows) - half
        after = _image_hashes(ctx)
        assert all(r.thumb_format == dedupe.THUMB_FORMAT for r in after.values())
        assert {n: after[n] for n in current} == current
        all_at_once = tmp_path / "once"
        once = Settings(_env_file=None, home=all_at_once, duplicate_text_check=False)  # type: ignore[call-arg]
        with StageContext(once, Window(DAY, DAY)) as fresh:
            fresh.warehouse.ensure_tables(media.MEDIA_TABLES)
            fresh.warehouse.merge_rows("image_hashes", rows)
            media.group(fresh)
            expected = {n: g.group_id for n, g in _groups(fresh).items()}
        assert {n: g.group_id for n, g in _groups(ctx).items()} == expected
