"""The media fetch and analyse tasks on a real warehouse (DuckDB) and a local server: failures become rows with a
back-off, a bad day never wedges, verdicts on the bytes never turn back into ``ok`` without a new analysis."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adpipeline.settings import Settings
from adpipeline.stages import media
from adpipeline.stages.context import StageContext, StageFailed
from adpipeline.stages.ingest import creative_id
from adpipeline.tables import Creative, MediaFetch
from adpipeline.warehouse.schema import rows_from_frame
from adpipeline.window import Window
from tests.media.conftest import FIXTURES, jpeg_bytes

DAY = dt.date(2026, 10, 1)
WINDOW = Window(DAY, DAY)


def _png_bomb() -> bytes:
    out = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(out, "PNG")  # 400 megapixels in a few tens of kB
    return out.getvalue()


def _mp4(frames: int = 10) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 20, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def _ctx(settings: Settings, **update: object) -> StageContext:
    return StageContext(settings.model_copy(update={"max_image_pixels": 5_000_000, **update}), WINDOW)


def _add_creatives(ctx: StageContext, urls: dict[str, str], day: dt.date = DAY) -> dict[str, str]:
    """Creatives for ``{name: url}`` (images, or videos when the name starts with 'video'); returns name -> id."""
    ids, rows = {}, []
    for name, url in urls.items():
        kind = "video" if name.startswith("video") else "image"
        ids[name] = creative_id(url, kind)
        rows.append(Creative(creative_id=ids[name], url=url, media_type=kind, first_seen_date=day, last_seen_date=day))
    ctx.warehouse.ensure_tables(media.MEDIA_TABLES)
    ctx.warehouse.merge_rows("creatives", rows)
    return ids


def _rows(ctx: StageContext, ids: dict[str, str]) -> dict[str, dict]:
    rows = rows_from_frame(MediaFetch, ctx.warehouse.read_table("media_fetches"))
    by_id = {r.creative_id: r.model_dump() for r in rows}
    return {name: by_id[cid] for name, cid in ids.items() if cid in by_id}


@pytest.fixture()
def blobs(server):
    base, routes = server
    routes.blobs.update(
        {
            "good-a": jpeg_bytes((70, 50)),
            "good-b": jpeg_bytes((71, 50)),
            "truncated": (FIXTURES / "square.jpg").read_bytes()[:400],
            "bomb": _png_bomb(),
            "tiff-ish": b"II*\x00" + b"\x00" * 200,
            "video-good": _mp4(),
            "video-corrupt": np.random.default_rng(1).integers(0, 256, 30_000, dtype=np.uint8).tobytes(),
        }
    )
    return base, routes


def _days_later(monkeypatch: pytest.MonkeyPatch, days: int) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    monkeypatch.setattr(media, "_now", lambda: later)


def test_a_bad_day_does_not_wedge(blobs, settings, monkeypatch) -> None:
    """6 of 9 fail (3 permanent 404s, 3 transient 500s): the task passes, the good ones are analysed, the 404s are
    not fetched again, and the 500s are retried by the next run without failing it again."""
    base, routes = blobs
    ctx = _ctx(settings, fetch_retry_transient_s=0.0)
    urls = {f"good{i}": f"{base}/blob/good-{'ab'[i % 2]}?{i}" for i in range(3)}
    urls |= {f"gone{i}": f"{base}/missing?{i}" for i in range(3)}
    urls |= {f"down{i}": f"{base}/error?{i}" for i in range(3)}
    ids = _add_creatives(ctx, urls)
    report = media.fetch(ctx)
    assert report["transient_first_tries"] == 3  # 3 of 9 < 50 %
    media.analyse(ctx)
    rows = _rows(ctx, ids)
    assert {rows[f"good{i}"]["status"] for i in range(3)} == {"ok"}
    for i in range(3):
        gone, down = rows[f"gone{i}"], rows[f"down{i}"]
        assert (gone["status"], gone["failure_kind"], gone["failed_runs"]) == ("not_found", "permanent", 1)
        assert (down["status"], down["failure_kind"], down["failed_runs"]) == ("http_error", "transient", 1)
        assert gone["next_attempt_at"] - dt.datetime.now(dt.UTC) > dt.timedelta(days=6)

    hits_missing, hits_error = routes.hits["/missing"], routes.hits["/error"]
    again = media.fetch(ctx)  # only the transient failures are pending; all fail again, the task does not
    assert again["requested"] == 3 and again["transient_first_tries"] == 0
    assert routes.hits["/missing"] == hits_missing and routes.hits["/error"] > hits_error
    assert {r["failed_runs"] for n, r in _rows(ctx, ids).items() if n.startswith("down")} == {2}

    # Permanent failures come back once their back-off (7 days) has passed; then they wait 14 days.
    _days_later(monkeypatch, 8)
    assert media.fetch(ctx)["requested"] == 6 and routes.hits["/missing"] == hits_missing + 3
    gone = _rows(ctx, ids)["gone0"]
    assert gone["failed_runs"] == 2 and gone["next_attempt_at"] - dt.datetime.now(dt.UTC) > dt.timedelta(days=21)


def test_an_outage_fails_the_task_after_writing(blobs, settings) -> None:
    base, _ = blobs
    ctx = _ctx(settings)
    ids = _add_creatives(ctx, {"ok": f"{base}/blob/good-a", "down1": f"{base}/error?x", "down2": f"{base}/error?y"})
    with pytest.raises(StageFailed, match="2 of 3"):
        media.fetch(ctx)
    rows = _rows(ctx, ids)
    assert rows["ok"]["status"] == "fetched" and rows["down1"]["failure_kind"] == "transient"
    assert media.fetch(ctx)["requested"] == 0  # the transient ones wait for their back-off


def test_a_verdict_never_turns_back_into_ok_without_analysis(blobs, settings, monkeypatch) -> None:
    """Bombs, truncated and unsupported images, corrupt videos: analysed to a verdict; fetched again (a refresh, or the
    back-off over) and aborted before analyse, they are 'fetched', never 'ok'; analysed again, the verdict returns."""
    base, _ = blobs
    ctx = _ctx(settings)
    names = ["good-a", "truncated", "bomb", "video-good", "video-corrupt"]
    ids = _add_creatives(ctx, {name: f"{base}/blob/{name}" for name in names} | {"tiff": f"{base}/blob/tiff-ish"})
    media.fetch(ctx)
    assert {r["status"] for r in _rows(ctx, ids).values()} == {"fetched", "unsupported_format"}
    report = media.analyse(ctx)
    assert (report["failed_images"], report["failed_videos"]) == (2, 1)
    verdicts = {name: (r["status"], r["failure_kind"]) for name, r in _rows(ctx, ids).items()}
    assert verdicts == {
        "good-a": ("ok", None),
        "truncated": ("corrupt", "permanent"),
        "bomb": ("too_many_pixels", "permanent"),
        "video-good": ("ok", None),
        "video-corrupt": ("corrupt", "permanent"),
        "tiff": ("unsupported_format", "permanent"),
    }
    assert "5,000,000" in _rows(ctx, ids)["bomb"]["reason"]  # our cap, not Pillow's
    # The bytes judged unusable are gone from the bucket; the good ones stay.
    rows = _rows(ctx, ids)
    assert rows["truncated"]["blob_path"] is None and rows["truncated"]["sha256"]
    assert ctx.bucket.exists(rows["good-a"]["blob_path"]) and ctx.bucket.exists(rows["video-good"]["blob_path"])
    assert not [k for k in ctx.bucket.list("blobs") if k.endswith(rows["bomb"]["sha256"])]

    assert media.fetch(ctx)["requested"] == 0  # verdicts wait for the long back-off
    for rerun in (_ctx(settings, refresh_media=True), _ctx(settings)):
        if not rerun.settings.refresh_media:
            _days_later(monkeypatch, 40)  # past any back-off
        media.fetch(rerun)  # ... and the run is killed here, before analyse
        after = {name: r["status"] for name, r in _rows(ctx, ids).items()}
        assert after["truncated"] == after["bomb"] == after["video-corrupt"] == "fetched", after
        # A refresh fetches the good ones again too, to be analysed again (e.g. after an analysis upgrade).
        assert after["good-a"] == ("fetched" if rerun.settings.refresh_media else "ok")
        media.analyse(rerun)
        assert {name: (r["status"], r["failure_kind"]) for name, r in _rows(ctx, ids).items()} == verdicts
    # Each new verdict on the same bad bytes is one more failed run in a row (a longer wait); ok ones stay at 0.
    final = _rows(ctx, ids)
    assert final["truncated"]["failed_runs"] == final["video-corrupt"]["failed_runs"] == 3
    assert final["good-a"]["failed_runs"] == 0


def test_corrupt_video_shows_in_fetch_rows_and_video_metadata(blobs, settings) -> None:
    base, _ = blobs
    ctx = _ctx(settings)
    ids = _add_creatives(ctx, {"video-corrupt": f"{base}/blob/video-corrupt"})
    media.fetch(ctx)
    media.analyse(ctx)
    assert _rows(ctx, ids)["video-corrupt"]["status"] == "corrupt"
    meta = ctx.warehouse.read_table("video_metadata").to_dict("records")
    assert [m["status"] for m in meta] == ["corrupt"]


def test_a_blob_shared_with_a_usable_row_is_kept_until_its_last_user_is_judged(blobs, settings, monkeypatch) -> None:
    base, _ = blobs
    monkeypatch.setattr(media, "WRITE_EVERY_ITEMS", 1)  # each row is judged and written on its own
    ctx = _ctx(settings)
    ids = _add_creatives(ctx, {"first": f"{base}/blob/truncated?1", "second": f"{base}/blob/truncated?2"})
    media.fetch(ctx)
    media.analyse(ctx)
    rows = _rows(ctx, ids)
    # Whichever was judged first kept the blob for the other, which was still 'fetched': both got a real verdict.
    assert rows["first"]["status"] == rows["second"]["status"] == "corrupt"
    assert not list(ctx.bucket.list("blobs"))


def test_a_vanished_blob_is_fetched_again(blobs, settings) -> None:
    base, _ = blobs
    ctx = _ctx(settings, fetch_retry_transient_s=0.0)
    urls = {"img": f"{base}/blob/good-b", "other": f"{base}/blob/good-a?other", "video": f"{base}/blob/video-good"}
    ids = _add_creatives(ctx, urls)
    media.fetch(ctx)
    for name in ("img", "video"):
        ctx.bucket.delete(_rows(ctx, ids)[name]["blob_path"])
    with pytest.raises(StageFailed, match=r"blobs missing\): 2 of 3"):  # a bucket losing blobs fails the task ...
        media.analyse(ctx)
    rows = _rows(ctx, ids)  # ... after writing every row; a missing video is not called corrupt
    assert {n: (r["status"], r["failure_kind"]) for n, r in rows.items()} == {
        "img": ("blob_missing", "transient"),
        "video": ("blob_missing", "transient"),
        "other": ("ok", None),
    }
    media.fetch(ctx)
    media.analyse(ctx)
    assert {r["status"] for r in _rows(ctx, ids).values()} == {"ok"}


def test_pending_work_is_not_limited_to_the_window(blobs, settings) -> None:
    base, _ = blobs
    ctx = _ctx(settings)
    ids = _add_creatives(ctx, {"old": f"{base}/blob/good-a?old"}, day=DAY - dt.timedelta(days=30))
    assert media.fetch(ctx)["requested"] == 1
    media.analyse(ctx)
    assert _rows(ctx, ids)["old"]["status"] == "ok"


def test_local_files_only_under_the_roots(settings, tmp_path: Path) -> None:
    root = tmp_path / "media"
    root.mkdir()
    (root / "a.jpg").write_bytes((FIXTURES / "square.jpg").read_bytes())
    (root / "escape.jpg").symlink_to(FIXTURES / "square.jpg")
    ctx = _ctx(settings, allow_local_paths=True, local_media_roots=[root])
    urls = {
        "inside": str(root / "a.jpg"),
        "uri": (root / "a.jpg").as_uri(),
        "passwd": "file:///etc/passwd",
        "dotdot": f"{root}/../../../etc/passwd",
        "symlink": str(root / "escape.jpg"),
    }
    ids = _add_creatives(ctx, urls)
    media.fetch(ctx)
    rows = _rows(ctx, ids)
    assert rows["inside"]["status"] == rows["uri"]["status"] == "fetched"
    for name in ("passwd", "dotdot", "symlink"):
        assert rows[name]["status"] == "blocked_path", name
        assert "outside the local media roots" in rows[name]["reason"]
