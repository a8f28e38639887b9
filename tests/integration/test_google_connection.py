"""Credentials through an Airflow connection (the Google provider's hook) against the local emulators.

The connection is an ``AIRFLOW_CONN_<ID>`` environment variable holding a real service-account key whose token URI
is a local token server (``tests/emulators/google_token.py``); the token requests it receives prove that the
BigQuery and GCS clients used the connection's credentials, not ADC or anonymous ones.
"""

from __future__ import annotations

import datetime as dt

import pytest

from adpipeline.google_auth import ADC, connection_env_var, google_credentials
from tests.emulators.google_token import TokenServer
from tests.integration.conftest import BQ_PROJECT, CONN_ID, unique_dataset


def test_without_a_connection_the_libraries_use_adc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(connection_env_var(CONN_ID), raising=False)
    monkeypatch.delenv("AIRFLOW_CTX_DAG_ID", raising=False)
    assert google_credentials(CONN_ID) is ADC  # CLI: no task, no connection in the environment
    assert google_credentials(None) is ADC
    assert google_credentials("") is ADC


def test_inside_a_task_a_missing_connection_falls_back_to_adc(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow_home"))
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "adp_final")
    monkeypatch.delenv(connection_env_var("adp_missing"), raising=False)
    assert google_credentials("adp_missing") is ADC


def test_connection_credentials_come_from_the_hook(gcp_connection: TokenServer) -> None:
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    found = google_credentials(CONN_ID)
    assert found.source == f"connection:{CONN_ID}" and found.project == BQ_PROJECT
    assert isinstance(found.credentials, service_account.Credentials)
    found.credentials.refresh(Request())
    assert found.credentials.token == "test-token-1" and len(gcp_connection.grants) == 1
    assert "private_key" not in repr(found)  # the dataclass repr shows no key material


def test_a_broken_connection_fails_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow_home"))
    monkeypatch.setenv(
        connection_env_var(CONN_ID),
        '{"conn_type": "google_cloud_platform", "extra": {"keyfile_dict": "{not json"}}',
    )
    with pytest.raises(Exception, match="(?i)json|key"):
        google_credentials(CONN_ID)


@pytest.mark.bigquery
def test_bigquery_warehouse_through_the_connection(bq_emulator: str, gcp_connection: TokenServer) -> None:
    from adpipeline.settings import Settings
    from adpipeline.tables import Creative
    from adpipeline.warehouse import get_warehouse

    settings = Settings(
        _env_file=None,
        warehouse_backend="bigquery",
        bq_project=BQ_PROJECT,
        bq_dataset=unique_dataset("conn"),
        gcp_conn_id=CONN_ID,
    )
    day = dt.date(2026, 10, 1)
    row = Creative(creative_id="c1", url="https://x/a.png", media_type="image", first_seen_date=day, last_seen_date=day)
    with get_warehouse(settings) as wh:
        assert wh.merge_rows("creatives", [row]) == 1
        assert wh.read_table("creatives")["creative_id"].tolist() == ["c1"]
    assert gcp_connection.grants, "the BigQuery client never asked the connection's token endpoint"
