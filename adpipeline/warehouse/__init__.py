"""Warehouse backends behind one interface; :func:`get_warehouse` picks one from the settings."""

from __future__ import annotations

from adpipeline.settings import Settings
from adpipeline.warehouse.base import Warehouse


def get_warehouse(settings: Settings) -> Warehouse:
    """The configured warehouse. BigQuery is imported only when chosen."""
    if settings.warehouse_backend == "bigquery":
        from adpipeline.warehouse.bigquery import BigQueryWarehouse

        assert settings.bq_project is not None  # checked by Settings
        return BigQueryWarehouse(
            project=settings.bq_project, dataset=settings.bq_dataset, location=settings.bq_location
        )
    from adpipeline.warehouse.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(settings.resolved_duckdb_path, lock_wait_s=settings.duckdb_lock_wait_s)


__all__ = ["Warehouse", "get_warehouse"]
