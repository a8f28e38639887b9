"""Date-partitioned, clustered tables on BigQuery and the partition-replacing write, on both backends."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from adpipeline.tables import TABLES, AdEnriched, RawAd
from adpipeline.warehouse import base, schema
from adpipeline.warehouse.base import Warehouse
from adpipeline.warehouse.bigquery import BigQueryWarehouse
from adpipeline.warehouse.duckdb import DuckDBWarehouse

D1, D2, D3 = dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 3)

_FROM_RAW = {"ad_id", "date", "campaign", "impressions", "clicks", "spend", "conversions"}


def _enrich_sql() -> str:
    """Rebuilds ads_enriched from raw_ads for @dates (other columns empty); the test changes raw_ads between runs."""
    projections = [
        c.name
        if c.name in _FROM_RAW
        else f"0 AS {c.name}"
        if c.name in ("n_faces", "n_customers")  # the NOT NULL counts
        else (f"ARRAY<{c.bq_type}>[] AS {c.name}" if c.repeated else f"CAST(NULL AS {c.bq_type}) AS {c.name}")
        for c in schema.columns(AdEnriched)
    ]
    return "SELECT " + ", ".join(projections) + " FROM {{ raw_ads }} WHERE date IN UNNEST(@dates)"


def test_layout_sql_checks_the_columns() -> None:
    assert schema.layout_sql(AdEnriched, "date", ("creative_id", "ad_id")) == (
        "\nPARTITION BY date\nCLUSTER BY creative_id, ad_id"
    )
    assert schema.layout_sql(AdEnriched) == ""
    with pytest.raises(ValueError, match="DATE"):
        schema.layout_sql(AdEnriched, "ad_id")
    with pytest.raises(ValueError, match="clustering"):
        schema.layout_sql(AdEnriched, None, ("brands",))  # REPEATED
    with pytest.raises(ValueError, match="clustering"):
        schema.layout_sql(AdEnriched, None, ("ad_id", "date", "url", "campaign", "ctr"))  # five


def test_specs_partition_and_cluster_on_real_columns() -> None:
    for spec in TABLES.values():
        schema.layout_sql(spec.model, spec.partition_by, spec.clustering)  # raises on a bad spec
    assert TABLES["raw_ads"].partition_by == TABLES["ads_enriched"].partition_by == "date"
    assert TABLES["ads_enriched"].clustering == ("creative_id", "ad_id")
    assert TABLES["creatives"].clustering == ("creative_id",)  # the key by default


@pytest.mark.bigquery
def test_bigquery_tables_are_partitioned_and_clustered(new_bq_warehouse: Callable[[], BigQueryWarehouse]) -> None:
    bq = new_bq_warehouse()
    bq.ensure_tables()
    jobs = sum(bq.jobs.values())
    bq.ensure_tables()  # nothing missing: no job
    assert sum(bq.jobs.values()) == jobs == len(TABLES)
    for name in ("raw_ads", "ads_enriched"):
        table = bq.client.get_table(f"{bq.dataset_id}.{name}")
        assert table.time_partitioning is not None and table.time_partitioning.field == "date", name
    # The emulator does not report clustering back; the DDL it ran is checked instead.
    assert "CLUSTER BY creative_id, ad_id" in bq.create_table_sql(TABLES["ads_enriched"])


def _raw(ad_id: str, date: dt.date, clicks: int) -> RawAd:
    return RawAd(ad_id=ad_id, date=date, impressions=100, clicks=clicks)


def _replace_partitions(wh: Warehouse) -> list[tuple[str, dt.date, int]]:
    wh.merge_rows("raw_ads", [_raw("a", D1, 1), _raw("b", D2, 2), _raw("c", D3, 3)])
    wh.replace_partitions_from_file("ads_enriched", "test/enrich", [D1, D2, D3])
    wh.replace_partitions_from_file("ads_enriched", "test/enrich", [D1, D2, D3])  # idempotent
    # The source changes on every day, but only D2 is replaced: D1 and D3 keep what they had.
    wh.merge_rows("raw_ads", [_raw("a", D1, 10), _raw("b", D2, 20), _raw("b2", D2, 21), _raw("c", D3, 30)])
    wh.replace_partitions_from_file("ads_enriched", "test/enrich", [D2])
    wh.replace_partitions_from_file("ads_enriched", "test/enrich", [])  # nothing to do
    frame = wh.read_table("ads_enriched", order_by="ad_id")
    return [
        (r.ad_id, schema.rows_from_frame(AdEnriched, frame.iloc[[i]])[0].date, r.clicks) for i, r in frame.iterrows()
    ]


@pytest.fixture
def enrich_sql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "SQL_DIR", tmp_path)
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "enrich.sql").write_text(_enrich_sql())


EXPECTED = [("a", D1, 1), ("b", D2, 20), ("b2", D2, 21), ("c", D3, 3)]


def test_replace_partitions_on_duckdb(enrich_sql: None, tmp_path: Path) -> None:
    with DuckDBWarehouse(tmp_path / "w.duckdb") as wh:
        assert _replace_partitions(wh) == EXPECTED


@pytest.mark.bigquery
def test_replace_partitions_on_bigquery(enrich_sql: None, new_bq_warehouse: Callable[[], BigQueryWarehouse]) -> None:
    bq = new_bq_warehouse()
    assert _replace_partitions(bq) == EXPECTED
    assert bq.jobs["MERGE"] >= 5 and "CREATE_TABLE_AS_SELECT" not in bq.jobs  # never a whole-table rewrite


def _out_of_step(wh: Warehouse) -> list[tuple[str, list[dt.date]]]:
    """What partitions_out_of_step finds and table_versions says after each kind of change."""
    seen = []
    wh.merge_rows("raw_ads", [_raw("a", D1, 1), _raw("b", D2, 2), _raw("c", D3, 3)])
    wh.ensure_tables(["ads_enriched"])

    def step(label: str) -> None:
        seen.append((label, wh.partitions_out_of_step("ads_enriched", "test/enrich", [D1, D2, D3])))

    step("empty table: every date")
    wh.replace_partitions_from_file("ads_enriched", "test/enrich", [D1, D2, D3])
    step("built: none")
    before = wh.table_versions(["raw_ads", "ads_enriched", "no_such_table"])
    assert before["no_such_table"] == "absent"
    assert wh.table_versions(["raw_ads", "ads_enriched"]) == {k: before[k] for k in ("raw_ads", "ads_enriched")}
    wh.merge_rows("raw_ads", [_raw("b", D2, 5)])  # same row count, a metric corrected
    after = wh.table_versions(["raw_ads", "ads_enriched"])
    assert after["raw_ads"] != before["raw_ads"] and after["ads_enriched"] == before["ads_enriched"]
    step("changed metric: D2")
    wh.merge_rows("raw_ads", [_raw("d", D3, 4)])
    step("new row: D2, D3")
    wh.replace_partitions_from_file("ads_enriched", "test/enrich", [D2, D3])
    wh.delete_where("raw_ads", "ad_id = 'a'")
    step("source row gone: D1")
    return seen


OUT_OF_STEP = [
    ("empty table: every date", [D1, D2, D3]),
    ("built: none", []),
    ("changed metric: D2", [D2]),
    ("new row: D2, D3", [D2, D3]),
    ("source row gone: D1", [D1]),
]


def test_out_of_step_partitions_on_duckdb(enrich_sql: None, tmp_path: Path) -> None:
    with DuckDBWarehouse(tmp_path / "w.duckdb") as wh:
        assert _out_of_step(wh) == OUT_OF_STEP


@pytest.mark.bigquery
def test_out_of_step_partitions_on_bigquery(
    enrich_sql: None, new_bq_warehouse: Callable[[], BigQueryWarehouse]
) -> None:
    assert _out_of_step(new_bq_warehouse()) == OUT_OF_STEP
