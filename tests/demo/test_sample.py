"""The demo sample: counts, determinism, idempotence, decodable videos, detectable faces, planted effects."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

from adpipeline.demo.sample import CSV_COLUMNS, SampleManifest, generate_sample
from tests.locked import locked_import

av = locked_import("av")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleManifest:
    return generate_sample(tmp_path_factory.mktemp("sample"))


@pytest.fixture(scope="module")
def rows(sample: SampleManifest) -> list[dict[str, str]]:
    with sample.raw_ads_csv.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        return list(reader)


@pytest.fixture(scope="module")
def labels(sample: SampleManifest) -> dict:
    return json.loads(sample.labels_path.read_text(encoding="utf-8"))


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "raw_ads.csv"
    }


def _relative(url: str, sample: SampleManifest) -> str:
    return Path(url).relative_to(sample.out_dir.resolve()).as_posix()


def test_counts(sample: SampleManifest, rows: list[dict[str, str]], labels: dict) -> None:
    assert sample.n_rows == len(rows) >= 300
    dates = {dt.date.fromisoformat(r["date"]) for r in rows}
    assert len(dates) >= 14 and min(dates) == sample.start and max(dates) == sample.end
    assert sample.n_images == len(labels["images"]) >= 60
    assert sample.n_videos == len(labels["videos"]) >= 12
    assert len(sample.persons) >= 4
    persons_in_videos = {p for v in labels["videos"].values() for p in v["persons"]}
    assert persons_in_videos == set(sample.persons)
    assert any(len(v["persons"]) == 2 for v in labels["videos"].values())
    assert any(not v["persons"] for v in labels["videos"].values())
    assert any(v["has_audio"] for v in labels["videos"].values())
    assert any(not v["has_audio"] for v in labels["videos"].values())


def test_csv_urls_exist_and_metrics_are_plausible(sample: SampleManifest, rows: list[dict[str, str]]) -> None:
    per_url: dict[str, set[str]] = {}
    for r in rows:
        assert bool(r["image_url"]) != bool(r["video_url"]), r
        url = r["image_url"] or r["video_url"]
        assert Path(url).is_absolute() and Path(url).is_file(), url
        per_url.setdefault(url, set()).add(r["ad_id"])
        impressions, clicks, conversions = int(r["impressions"]), int(r["clicks"]), int(r["conversions"])
        assert 500 <= impressions <= 50_000
        assert 0 <= conversions <= clicks <= impressions * 0.06
        assert float(r["spend"]) > 0
    assert any(len(ads) > 1 for ads in per_url.values()), "some creatives must be shared by several ads"
    on_disk = {p for p in (sample.out_dir / "media").rglob("*") if p.is_file()}
    assert {Path(u) for u in per_url} == {p.resolve() for p in on_disk}, "every creative is used by an ad"


def test_image_labels(sample: SampleManifest, labels: dict) -> None:
    images = labels["images"]
    for file, info in images.items():
        assert (sample.out_dir / file).is_file()
        if info["near_duplicate_of"] is not None:
            original = images[info["near_duplicate_of"]]
            assert original["near_duplicate_of"] is None and original["creative_id"] == info["creative_id"]
            assert info["transform"]
    grouped = [f for g in labels["duplicate_groups"] for f in g]
    assert len(grouped) == len(set(grouped))
    assert len(labels["duplicate_groups"]) >= 15
    # byte-identical copies under other names are there, and so are template siblings
    copies = [f for f, i in images.items() if i["transform"] == "exact_copy"]
    assert copies
    for f in copies:
        assert (sample.out_dir / f).read_bytes() == (sample.out_dir / images[f]["near_duplicate_of"]).read_bytes()
    assert all(len(ids) >= 3 for ids in labels["template_siblings"].values())
    assert {Path(f).suffix for f in images} == {".jpg", ".png", ".webp"}


def test_videos_decode_with_stated_duration(sample: SampleManifest, labels: dict) -> None:
    for file, info in labels["videos"].items():
        with av.open(str(sample.out_dir / file)) as container:
            stream = container.streams.video[0]
            assert (stream.codec_context.width, stream.codec_context.height) == (info["width"], info["height"])
            assert stream.codec_context.name == info["codec"]
            assert bool(container.streams.audio) == info["has_audio"]
            n_frames = sum(1 for _ in container.decode(video=0))
        duration = n_frames / info["fps"]
        assert duration == pytest.approx(info["duration_s"])
        assert 5 <= duration <= 15
        for a in info["appearances"]:
            assert 0 <= a["start_s"] < a["end_s"] <= info["duration_s"]


def test_faces_are_detectable_where_labelled(sample: SampleManifest, labels: dict) -> None:
    dlib = locked_import("dlib")
    detector = dlib.get_frontal_face_detector()
    videos = labels["videos"]
    two_people = next(f for f, v in videos.items() if len(v["persons"]) == 2)
    one_person = next(f for f, v in videos.items() if len(v["persons"]) == 1)
    for file in (one_person, two_people):
        info = videos[file]
        a = info["appearances"][0]
        wanted = {a["start_frame"] + 2, (a["start_frame"] + a["end_frame"]) // 2, a["end_frame"] - 3}
        found = []
        with av.open(str(sample.out_dir / file)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted:
                    expected = sum(1 for b in info["appearances"] if b["start_frame"] <= i < b["end_frame"])
                    faces = detector(frame.to_ndarray(format="rgb24"), 1)
                    found.append((i, expected, len(faces)))
                    assert faces and min(d.height() for d in faces) >= 80, (file, i)
        assert len(found) == len(wanted)
        assert any(exp == got for _, exp, got in found), found


def _ctr(rows: list[dict[str, str]]) -> float:
    return sum(int(r["clicks"]) for r in rows) / sum(int(r["impressions"]) for r in rows)


def _cvr(rows: list[dict[str, str]]) -> float:
    return sum(int(r["conversions"]) for r in rows) / sum(int(r["clicks"]) for r in rows)


def test_planted_effects_are_visible(sample: SampleManifest, rows: list[dict[str, str]], labels: dict) -> None:
    favoured = labels["effects"]["favoured_person"]
    video_rows = [r for r in rows if r["video_url"]]

    def persons(r: dict[str, str]) -> list[str]:
        return labels["videos"][_relative(r["video_url"], sample)]["persons"]

    with_favoured = [r for r in video_rows if favoured in persons(r)]
    other_faces = [r for r in video_rows if persons(r) and favoured not in persons(r)]
    no_face = [r for r in video_rows if not persons(r)]
    assert _ctr(with_favoured) > 1.4 * _ctr(other_faces)
    assert _ctr(no_face) < _ctr(other_faces)

    def discounted(r: dict[str, str]) -> bool:
        url = r["image_url"] or r["video_url"]
        kind = "images" if r["image_url"] else "videos"
        return bool(labels[kind][_relative(url, sample)]["discount_pct"])

    assert _cvr([r for r in rows if discounted(r)]) > 1.5 * _cvr([r for r in rows if not discounted(r)])


def test_deterministic_and_idempotent(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    generate_sample(a, n_images=14, n_videos=2, days=5)
    generate_sample(b, n_images=14, n_videos=2, days=5)
    assert _digests(a) == _digests(b)
    csv_a = (a / "raw_ads.csv").read_text().replace(str(a.resolve()), "ROOT")
    csv_b = (b / "raw_ads.csv").read_text().replace(str(b.resolve()), "ROOT")
    assert csv_a == csv_b

    # over an existing folder: the same files again, and nothing left from a larger run
    generate_sample(a, n_images=14, n_videos=3, days=5)
    manifest = generate_sample(a, n_images=14, n_videos=2, days=5)
    assert _digests(a) == _digests(b)
    assert manifest.n_videos == 2 and len(list((a / "media" / "videos").iterdir())) == 2

    c = tmp_path / "c"
    generate_sample(c, n_images=14, n_videos=1, days=5, seed=8)
    assert (c / "raw_ads.csv").read_text().replace(str(c.resolve()), "ROOT") != csv_a
