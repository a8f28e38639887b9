"""Where things live: the warehouse (DuckDB file or BigQuery dataset), the bucket and the Google connection."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from adpipeline.settings.base import Domain


class StorageSettings(Domain):
    """The local home folder, the warehouse backend and the bucket; credentials come from an Airflow connection."""

    title = "Storage: warehouse and bucket"
    readme = "docs/deploy.md"

    home: Path = Field(Path(".local"), description="Folder for the local warehouse file, bucket and caches.")
    warehouse_backend: Literal["duckdb", "bigquery"] = "duckdb"
    """Warehouse: duckdb (embedded file) or bigquery."""
    duckdb_path: Path | None = Field(None, description="DuckDB file; defaults to <home>/warehouse.duckdb.")
    duckdb_lock_wait_s: float = Field(600.0, gt=0)
    """Seconds a DuckDB writer waits for another process to release the file (writers take turns)."""
    bq_project: str | None = None
    """BigQuery project (required when the warehouse is bigquery)."""
    bq_dataset: str = "adpipeline"
    """BigQuery dataset holding the adpipeline tables."""
    bq_location: str = "US"
    """BigQuery location of the dataset and jobs."""
    bucket_url: str | None = Field(None, description="fsspec URL of the bucket; defaults to <home>/bucket.")
    gcp_conn_id: str = "google_cloud_default"
    """Airflow connection for BigQuery and GCS (read inside tasks, or from AIRFLOW_CONN_<ID>); else ADC. Empty: ADC."""

    @field_validator("bq_dataset")
    @classmethod
    def _dataset_name(cls, value: str) -> str:
        if not value.replace("_", "").isalnum():
            raise ValueError("bq_dataset may hold only letters, digits and underscores")
        return value

    @model_validator(mode="after")
    def _bigquery_needs_a_project(self) -> Self:
        if self.warehouse_backend == "bigquery" and not self.bq_project:
            raise ValueError("ADP_WAREHOUSE_BACKEND=bigquery needs ADP_BQ_PROJECT")
        return self

    @property
    def resolved_duckdb_path(self) -> Path:
        return self.duckdb_path or self.home / "warehouse.duckdb"

    @property
    def resolved_bucket_url(self) -> str:
        return self.bucket_url or str((self.home / "bucket").resolve())
