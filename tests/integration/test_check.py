"""``adpipeline check``: the pre-flight checks, and every SQL file as a BigQuery dry-run job on the local emulator
(which answers dry runs the way BigQuery's API does: the statement is checked, nothing runs, bytes are reported)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adpipeline.preflight import run_checks
from adpipeline.warehouse.base import SQL_DIR
from tests.emulators.google_token import TokenServer
from tests.integration.conftest import BQ_PROJECT, CONN_ID, unique_dataset

pytestmark = pytest.mark.bigquery


def test_bigquery_dry_run_of_every_sql_file(
    bq_emulator: str, gcp_connection: TokenServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adpipeline.settings import get_settings
    from adpipeline.warehouse.bigquery import BigQueryWarehouse

    dataset = unique_dataset("check")
    for name, value in {
        "ADP_HOME": str(tmp_path / "home"),
        "ADP_WAREHOUSE_BACKEND": "bigquery",
        "ADP_BQ_PROJECT": BQ_PROJECT,
        "ADP_BQ_DATASET": dataset,
        "ADP_GCP_CONN_ID": CONN_ID,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    first = {c.name: c for c in run_checks(airflow=False)}
    assert not first["warehouse"].ok and "source table 'raw_ads' is not there" in first["warehouse"].detail
    with BigQueryWarehouse(project=BQ_PROJECT, dataset=dataset, gcp_conn_id=CONN_ID) as wh:
        wh.ensure_tables(["raw_ads"])  # the source table a deployment points at
    broken = tmp_path / "select_broken.sql"
    broken.write_text("SELECT no_such_column FROM {{ creatives }}\n")
    files = [*sorted(SQL_DIR.glob("**/*.sql")), broken]
    checks = list(run_checks(bigquery_dry_run=True, airflow=False, sql_files=files))
    by_name = {c.name: c for c in checks}
    assert by_name["settings"].ok and by_name["warehouse"].ok and by_name["bucket"].ok, checks
    assert by_name["face model files"].ok and "dlib" in by_name["face model files"].detail
    dry = [c for c in checks if c.name.startswith("dry run ")]
    assert len(dry) == len(files)
    rejected = [c for c in dry if not c.ok]
    assert [c.name for c in rejected] == ["dry run select_broken.sql"], rejected
    assert "no_such_column" in rejected[0].detail
    accepted = [c for c in dry if c.ok]
    assert all(c.bytes_processed is not None and "would scan" in c.detail for c in accepted)
    assert {c.name for c in accepted} >= {
        "dry run final/select_ads_enriched.sql",
        "dry run faces/select_known_faces.sql",
    }
    assert gcp_connection.grants  # the configured credentials (the Airflow connection) were used
    get_settings.cache_clear()
