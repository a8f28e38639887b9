"""The demo sample: counts, determinism, idempotence, decodable videos, detectable faces, planted effects."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from pathlib import Path

import pandas as pd
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


def _ads_enriched(sample: SampleManifest, rows: list[dict[str, str]], labels: dict) -> pd.DataFrame:
    """The rows as the chain's ``ads_enriched`` would hold them for the fatigue and effects analyses: a duplicate
    group's creatives share its unit, an image's aspect ratio is named as the media stage names it, and a discounted
    creative has the promotion (the chain reads these from the pixels; the labels hold the truth)."""
    from adpipeline.media.images import aspect_label_of

    def hex_id(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    records = []
    for r in rows:
        file = _relative(r["image_url"] or r["video_url"], sample)
        label = labels["images" if r["image_url"] else "videos"][file]
        group = label["creative_id"] if r["image_url"] else file
        records.append(
            {
                "ad_id": r["ad_id"],
                "date": dt.date.fromisoformat(r["date"]),
                "campaign": r["campaign"],
                "media_type": "image" if r["image_url"] else "video",
                "creative_id": hex_id(file),
                "canonical_creative_id": hex_id(group),
                "duplicate_group_id": hex_id(group),
                "impressions": int(r["impressions"]),
                "clicks": int(r["clicks"]),
                "ctr": int(r["clicks"]) / int(r["impressions"]),
                "spend": float(r["spend"]),
                "conversions": int(r["conversions"]),
                "n_faces": 0,
                "n_customers": 0,
                "aspect_label": aspect_label_of(label["width"], label["height"]) if r["image_url"] else None,
                "promotions": ["discount"] if label["discount_pct"] else [],
                "group": group,
            }
        )
    return pd.DataFrame(records)


def test_planted_fatigue_and_confounder_show_in_the_analyses(
    sample: SampleManifest, rows: list[dict[str, str]], labels: dict, tmp_path: Path
) -> None:
    """What the Fatigue tab and the adjusted effects show on the demo: the final stage's own SQL and model, on the
    sample's rows."""
    from adpipeline.settings import Settings
    from adpipeline.stages.final import rebuild_creative_fatigue, rebuild_feature_effects, rebuild_feature_performance
    from adpipeline.testing.planted import load_ads_enriched
    from adpipeline.warehouse.duckdb import DuckDBWarehouse

    ads = _ads_enriched(sample, rows, labels)
    group_of = dict(zip(ads["canonical_creative_id"], ads["group"], strict=False))
    wh = DuckDBWarehouse(tmp_path / "demo.duckdb")
    load_ads_enriched(wh, ads.drop(columns=["group"]))
    defaults = Settings()
    rebuild_creative_fatigue(wh, defaults.fatigue_min_drop, defaults.fatigue_min_impressions)
    fatigue = wh.read_table("creative_fatigue")
    decaying = set(labels["effects"]["fatigue"]["decaying_groups"])
    assert set(fatigue["unit_id"].map(group_of)) == set(group_of.values())
    worn = fatigue[fatigue["unit_id"].map(group_of).isin(decaying)]
    fresh = fatigue[~fatigue["unit_id"].map(group_of).isin(decaying)]
    assert len(worn) >= 5 and len(fresh) >= 20
    assert worn["fatigued"].sum() >= 1  # a creative wearing out is flagged
    assert not fresh["fatigued"].any()  # and none that keeps its CTR
    # the planted loss shows in the fitted decay: every decaying group's estimate below every flat group's median
    assert (worn["decay"] < fresh["decay"].median()).all()

    rebuild_feature_performance(wh, 1000)
    rebuild_feature_effects(wh, min_impressions=1000, max_cells=1_000_000, max_values=40)
    effects = wh.read_table("feature_effects")
    confounder = labels["effects"]["confounder"]
    row = effects[(effects["feature"] == "aspect") & (effects["value"] == confounder["aspect"])].iloc[0]
    # lifted unadjusted (it rides on the strong campaign), not significant once the campaign is in the model
    assert row["unadjusted_flag"] == "above" and row["unadjusted_lift"] > 0.2
    assert row["odds_ratio_low"] <= 1 <= row["odds_ratio_high"] and pd.isna(row["adjusted_flag"])
    assert row["disagreement"] == "significance"


def test_planting_moves_no_ad_dates_or_impressions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The day-by-day chain imports the creatives a day's rows name, so the planted fatigue and confounder may change
    clicks, conversions and a confounded ad's campaign, never which ads run on which day or their impressions (a
    duplicate group's features depend on which member is served first; tests/e2e compares a backfill with one run)."""
    from adpipeline.demo import performance
    from adpipeline.demo.performance import Creative, decays, generate_ads

    creatives = [
        Creative(f"media/images/img_{i:03d}.jpg", "image", i % 4 == 0, (), f"g{i // 2}", i % 3 == 0) for i in range(30)
    ]
    creatives += [Creative(f"media/videos/vid_{i:02d}.mp4", "video", False, (), f"v{i}") for i in range(4)]
    assert any(decays(c.group) for c in creatives) and any(c.confounded for c in creatives)
    planted, _ = generate_ads(Path("out"), creatives, dt.date(2026, 10, 1), 14, 7)
    monkeypatch.setattr(performance, "FATIGUE_DECAY_PER_DAY", 0.0)
    monkeypatch.setattr(performance, "STRONG_CAMPAIGN_CTR_MULTIPLIER", 1.0)
    monkeypatch.setattr(performance, "CONFOUNDED_SHARE", 0.0)
    plain, _ = generate_ads(Path("out"), creatives, dt.date(2026, 10, 1), 14, 7)

    def schedule(rows: list[dict[str, object]]) -> list[tuple[object, ...]]:
        return [(r["ad_id"], r["date"], r["image_url"], r["video_url"], r["impressions"], r["spend"]) for r in rows]

    assert schedule(planted) == schedule(plain)
    assert [r["clicks"] for r in planted] != [r["clicks"] for r in plain]
    moved = {r["ad_id"] for r, p in zip(planted, plain, strict=True) if r["campaign"] != p["campaign"]}
    assert moved and all(r["campaign"] == performance.STRONG_CAMPAIGN for r in planted if r["ad_id"] in moved)
