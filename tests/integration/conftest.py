"""Fixtures for integration tests: a BigQuery emulator per session, BigQuery and DuckDB warehouses.

The BigQuery emulator runs from its own venv, ``.venv-bq``; create it once with ``scripts/setup_bqemulator.sh``.
Without it the BigQuery fixtures fail (they do not skip), so a missing emulator never passes unnoticed.
Deselect those tests with ``-m "not bigquery"``.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # ``tests.emulators`` lives beside, not inside, the installed package
    sys.path.insert(0, str(ROOT))

from adpipeline.google_auth import connection_env_var  # noqa: E402
from adpipeline.warehouse.bigquery import EMULATOR_ENV, BigQueryWarehouse  # noqa: E402
from adpipeline.warehouse.duckdb import DuckDBWarehouse  # noqa: E402
from tests.emulators.bigquery import EmulatorError, bigquery_emulator, emulator_python  # noqa: E402
from tests.emulators.google_token import TokenServer, token_server  # noqa: E402

BQ_PROJECT = "test-project"
CONN_ID = "adp_test_gcp"
"""The Airflow connection the connection-based tests define (``AIRFLOW_CONN_ADP_TEST_GCP``)."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "bigquery: runs against the local BigQuery emulator (.venv-bq; scripts/setup_bqemulator.sh)"
    )


@pytest.fixture(scope="session")
def bq_emulator() -> Iterator[str]:
    """The emulator's endpoint, with ``BIGQUERY_EMULATOR_HOST`` set to it for the whole session."""
    problem = None
    try:
        emulator_python()
    except EmulatorError as exc:
        problem = str(exc)
    if problem:  # fail, not skip: a missing emulator must not pass unnoticed
        pytest.fail(problem, pytrace=False)
    with bigquery_emulator(project=BQ_PROJECT) as endpoint, pytest.MonkeyPatch.context() as mp:
        mp.setenv(EMULATOR_ENV, endpoint)
        yield endpoint


@pytest.fixture
def gcp_connection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[TokenServer]:
    """The Airflow connection ``CONN_ID`` as an environment variable: a service-account key whose token endpoint is a
    local server, so the token requests it counts prove the clients used the connection."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow_home"))  # never the developer's metadata DB
    with token_server() as server:
        monkeypatch.setenv(connection_env_var(CONN_ID), server.connection_json(BQ_PROJECT))
        yield server


def unique_dataset(prefix: str = "test") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def bq_warehouse(bq_emulator: str) -> Iterator[BigQueryWarehouse]:
    """One warehouse (unique dataset) shared by the session; tests that need empty tables use ``new_bq_warehouse``."""
    wh = BigQueryWarehouse(project=BQ_PROJECT, dataset=unique_dataset())
    yield wh
    wh.close()


@pytest.fixture
def new_bq_warehouse(bq_emulator: str) -> Iterator[Callable[[], BigQueryWarehouse]]:
    """A factory of warehouses, each on its own fresh dataset (closed after the test)."""
    made: list[BigQueryWarehouse] = []

    def make() -> BigQueryWarehouse:
        wh = BigQueryWarehouse(project=BQ_PROJECT, dataset=unique_dataset())
        made.append(wh)
        return wh

    yield make
    for wh in made:
        wh.close()


@pytest.fixture
def duck_warehouse(tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    wh = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    yield wh
    wh.close()
