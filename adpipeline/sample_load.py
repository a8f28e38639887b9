"""Load ads from CSV into the source table (MERGE on ad_id, date)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pandas as pd

from adpipeline.settings import Settings
from adpipeline.tables import RawAd
from adpipeline.warehouse import get_warehouse

_PROTOTYPE_COLUMNS = {"Video URL", "Performance"}


def read_ads_csv(path: Path, fmt: str = "raw", date: dt.date | None = None) -> list[RawAd]:
    """Rows from a CSV: ``raw`` has our columns; ``prototype`` is an earlier tool's ``Video URL, Performance``
    (performance is taken as CTR in percent of 10,000 notional impressions, the only reading that keeps ratios)."""
    frame = pd.read_csv(path)
    if fmt == "raw":
        frame = frame.astype(object).where(frame.notna(), None)
        return [RawAd.model_validate(record) for record in frame.to_dict("records")]
    if fmt == "prototype":
        missing = _PROTOTYPE_COLUMNS - set(frame.columns)
        if missing:
            raise ValueError(
                f"{path}: prototype CSV needs columns {sorted(_PROTOTYPE_COLUMNS)}, missing {sorted(missing)}"
            )
        day = date or dt.date.today()
        rows = []
        for record in frame.to_dict("records"):
            url = str(record["Video URL"]).strip()
            ad_id = "proto_" + hashlib.sha256(url.encode()).hexdigest()[:12]
            impressions = 10_000
            clicks = round(float(record["Performance"]) / 100 * impressions)
            rows.append(RawAd(ad_id=ad_id, date=day, video_url=url, impressions=impressions, clicks=clicks))
        return rows
    raise ValueError(f"unknown CSV format {fmt!r} (raw or prototype)")


def load_ads_csv(settings: Settings, path: Path, fmt: str = "raw", date: dt.date | None = None) -> int:
    rows = read_ads_csv(Path(path), fmt, date)
    with get_warehouse(settings) as wh:
        return wh.merge_rows("raw_ads", rows)
