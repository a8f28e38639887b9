"""Loading ads from CSV: our format, the prototype's `Video URL, Performance`, and bad files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydantic import ValidationError

from adpipeline.sample_load import read_ads_csv

DAY = dt.date(2026, 10, 1)


def test_raw_rows(tmp_path: Path) -> None:
    path = tmp_path / "ads.csv"
    path.write_text(
        "ad_id,date,campaign,image_url,video_url,impressions,clicks,spend,conversions\n"
        "a1,2026-10-01,c,https://x.test/a.jpg,,100,3,1.5,1\n"
        "a2,2026-10-02,c,,https://x.test/v.mp4,200,4,2.0,0\n"
    )
    rows = read_ads_csv(path)
    assert [(r.ad_id, r.date, r.image_url, r.video_url) for r in rows] == [
        ("a1", DAY, "https://x.test/a.jpg", None),
        ("a2", DAY + dt.timedelta(days=1), None, "https://x.test/v.mp4"),
    ]


def test_prototype_rows(tmp_path: Path) -> None:
    path = tmp_path / "proto.csv"
    path.write_text("Video URL,Performance\nhttps://x.test/v.mp4,2.5\n")
    (row,) = read_ads_csv(path, fmt="prototype", date=DAY)
    assert row.video_url == "https://x.test/v.mp4" and row.date == DAY
    assert row.clicks / row.impressions == pytest.approx(0.025)


def test_prototype_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "proto.csv"
    path.write_text("Video,Performance\nhttps://x.test/v.mp4,2.5\n")
    with pytest.raises(ValueError, match="missing \\['Video URL'\\]"):
        read_ads_csv(path, fmt="prototype", date=DAY)


def test_bad_value_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "ads.csv"
    path.write_text("ad_id,date,impressions\na1,not-a-date,100\n")
    with pytest.raises(ValidationError, match="date"):
        read_ads_csv(path)


def test_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "ads.csv"
    path.write_text("ad_id,date\na1,2026-10-01\n")
    with pytest.raises(ValueError, match="unknown CSV format"):
        read_ads_csv(path, fmt="excel")
