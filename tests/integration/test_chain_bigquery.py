"""The whole chain on the BigQuery backend (against the local emulator) gives the same tables as on DuckDB."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.e2e.support import table_checksums
from tests.integration.conftest import BQ_PROJECT, unique_dataset

pytestmark = [pytest.mark.bigquery, pytest.mark.slow]

START = dt.date(2026, 10, 1)
WHERE_NOT_WHAT = ("blob_path", "crop_path", "best_crop_path", "ocr_confidence")
"""Columns that hold where a run stored things (each backend run has its own home), and OCR confidence (float
noise between two OCR runs): left out of the comparison."""


def _run(settings, sample) -> dict[str, tuple[int, str]]:
    from adpipeline.sample_load import load_ads_csv
    from adpipeline.stages.chain import run_direct
    from adpipeline.window import Window

    load_ads_csv(settings, sample.raw_ads_csv)
    run_direct(settings, Window(START, START + dt.timedelta(days=2)))
    return table_checksums(settings, ignore=WHERE_NOT_WHAT, digits=4)


def test_chain_on_bigquery_matches_duckdb(bq_emulator: str, tmp_path: Path) -> None:
    from adpipeline.demo.sample import generate_sample
    from adpipeline.settings import Settings

    sample = generate_sample(tmp_path / "sample", start=START, days=3, n_images=8, n_videos=2)
    common = {"_env_file": None, "allow_local_paths": True}
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
        assert bq[table][0] == duck[table][0] > 0, table
    assert bq == duck
