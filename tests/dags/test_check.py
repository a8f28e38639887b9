"""``adpipeline check`` on the embedded defaults: pools and the DAG folder from the Airflow metadata database."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.airflow


def test_check_reports_missing_pools_then_passes(adp_env, airflow_db, monkeypatch) -> None:
    from airflow.models.pool import Pool

    from adpipeline.airflow_adapter import POOLS
    from adpipeline.cli import app
    from adpipeline.settings import get_settings
    from adpipeline.warehouse import get_warehouse

    with get_warehouse(get_settings()) as wh:
        wh.ensure_tables(["raw_ads"])
    for name in POOLS:
        Pool.delete_pool(name) if Pool.get_pool(name) else None
    runner = CliRunner()
    monkeypatch.setenv("COLUMNS", "200")
    failed = runner.invoke(app, ["check"])
    assert failed.exit_code == 1, failed.output
    assert "✗ airflow pools: LookupError: missing pools media_fetch, genai_api" in failed.output
    assert "✓ warehouse: duckdb" in failed.output and "✓ bucket:" in failed.output
    assert "✓ DAG folder: " in failed.output and "adp_gallery" in failed.output
    for name, (slots, description) in POOLS.items():
        Pool.create_or_update_pool(name, slots, description, include_deferred=False)
    passed = runner.invoke(app, ["check"])
    assert passed.exit_code == 0, passed.output
    assert "all checks passed" in passed.output
    dry = runner.invoke(app, ["check", "--no-airflow", "--bigquery-dry-run"])
    assert dry.exit_code == 1 and "needs ADP_WAREHOUSE_BACKEND=bigquery" in dry.output
