"""The whole chain on the BigQuery backend (against the local emulator) gives the same tables as on DuckDB.

The BigQuery side takes its credentials from an Airflow connection (``AIRFLOW_CONN_ADP_TEST_GCP``) through the Google
provider's hook, as a deployment does: the production credential path end to end."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.e2e.support import differing_rows, table_records
from tests.emulators.google_token import TokenServer
from tests.integration.conftest import BQ_PROJECT, CONN_ID, unique_dataset

pytestmark = [pytest.mark.bigquery, pytest.mark.slow]

START = dt.date(2026, 10, 1)
WHERE_NOT_WHAT = ("blob_path", "crop_path", "best_crop_path", "ocr_confidence")
"""Columns that hold where a run stored things (each backend run has its own home), and OCR confidence (float
noise between two OCR runs): left out of the comparison."""


def _run(settings, sample) -> dict[str, list[dict]]:
    from adpipeline.sample_load import load_ads_csv
    from adpipeline.stages.chain import run_direct
    from adpipeline.window import Window

    load_ads_csv(settings, sample.raw_ads_csv)
    run_direct(settings, Window(START, START + dt.timedelta(days=2)))
    return table_records(settings, ignore=WHERE_NOT_WHAT)


def test_chain_on_bigquery_matches_duckdb(bq_emulator: str, gcp_connection: TokenServer, tmp_path: Path) -> None:
    from adpipeline.demo.sample import generate_sample
    from adpipeline.settings import Settings

    sample = generate_sample(tmp_path / "sample", start=START, days=3, n_images=8, n_videos=2)
    common = {"_env_file": None, "allow_local_paths": True, "local_media_roots": [sample.out_dir]}
    duck = _run(Settings(home=tmp_path / "duck", **common), sample)
    bq = _run(
        Settings(
            home=tmp_path / "bq",
            warehouse_backend="bigquery",
            bq_project=BQ_PROJECT,
            bq_dataset=unique_dataset("chain"),
            gcp_conn_id=CONN_ID,
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
    assert bq.keys() == duck.keys()
    # Floats within 1e-9 relative: the two engines sum in different orders (feature_performance's pooled estimates
    # once split a 4-digit rounding edge when the comparison hashed rounded values).
    differences = {name: differing_rows(bq[name], duck[name]) for name in duck}
    assert not {name: rows[:3] for name, rows in differences.items() if rows}
    assert gcp_connection.grants, "the chain's BigQuery client did not use the connection's credentials"
