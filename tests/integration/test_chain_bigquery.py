"""The whole chain on the BigQuery backend (against the local emulator) gives the same tables as on DuckDB."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.integration.conftest import BQ_PROJECT, unique_dataset

pytestmark = [pytest.mark.bigquery, pytest.mark.slow]

START = dt.date(2026, 10, 1)
# Columns whose values depend on where or when a run happened, not on the data.
VOLATILE = {
    "call_id",
    "latency_ms",
    "called_at",
    "run_id",
    "blob_path",
    "crop_path",
    "best_crop_path",
    "ocr_confidence",
}


def _run(settings, sample) -> dict[str, list[dict]]:
    from adpipeline.sample_load import load_ads_csv
    from adpipeline.stages.chain import run_direct
    from adpipeline.tables import TABLES
    from adpipeline.warehouse import get_warehouse
    from adpipeline.window import Window

    load_ads_csv(settings, sample.raw_ads_csv)
    run_direct(settings, Window(START, START + dt.timedelta(days=2)))
    out = {}
    with get_warehouse(settings) as wh:
        for name, spec in TABLES.items():
            if name == "raw_ads" or not wh.table_exists(name):
                continue
            frame = wh.read_table(name, order_by=", ".join(spec.key))
            out[name] = [{k: v for k, v in row.items() if k not in VOLATILE} for row in frame.to_dict("records")]
    return out


def _digest(rows: list[dict]) -> list[str]:
    import json

    from adpipeline.warehouse.schema import _plain

    def clean(value):
        value = _plain(value)
        if isinstance(value, dt.datetime) and value.time() == dt.time(0) and value.tzinfo is None:
            return value.date().isoformat()  # DuckDB hands DATE columns back as midnight timestamps
        if isinstance(value, float):
            return round(value, 4)
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return sorted(json.dumps({k: clean(v) for k, v in row.items()}, sort_keys=True, default=str) for row in rows)


def test_chain_on_bigquery_matches_duckdb(bq_emulator: str, tmp_path: Path) -> None:
    from adpipeline.demo.sample import generate_sample
    from adpipeline.settings import Settings

    sample = generate_sample(tmp_path / "sample", start=START, days=3, n_images=8, n_videos=2)
    common = {"_env_file": None, "allow_local_paths": True, "face_workers": 1}
    duck = _run(Settings(home=tmp_path / "duck", **common), sample)
    bq = _run(
        Settings(
            home=tmp_path / "bq",
            warehouse_backend="bigquery",
            bq_project=BQ_PROJECT,
            bq_dataset=unique_dataset("chain"),
            **common,
        ),
        sample,
    )
    for table in (
        "creatives",
        "media_fetches",
        "image_hashes",
        "duplicate_groups",
        "video_metadata",
        "image_features",
        "video_features",
        "faces",
        "face_performance",
        "ads_enriched",
    ):
        assert len(bq[table]) == len(duck[table]) > 0, table
    assert set(bq) == set(duck)
    for table in bq:
        assert _digest(bq[table]) == _digest(duck[table]), table
