"""A table made by an earlier version gains the nullable columns its row model has added since (DuckDB)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from adpipeline.tables import TABLES
from adpipeline.warehouse import schema
from adpipeline.warehouse.duckdb import DuckDBWarehouse


def test_old_table_gains_new_nullable_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:  # image_hashes as an older version made it: no ocr_text, no fine_thumb
        con.execute(
            "CREATE TABLE image_hashes (creative_id VARCHAR NOT NULL, sha256 VARCHAR NOT NULL, dhash BIGINT NOT NULL, "
            "dhash_hex VARCHAR NOT NULL, width BIGINT NOT NULL, height BIGINT NOT NULL, aspect_ratio DOUBLE NOT NULL, "
            "orientation VARCHAR NOT NULL)"
        )
        con.execute("INSERT INTO image_hashes VALUES ('c1', 's1', 5, '0005', 10, 20, 0.5, 'portrait')")
    wh = DuckDBWarehouse(path)
    wh.ensure_tables(["image_hashes"])
    want = [c.name for c in schema.columns(TABLES["image_hashes"].model)]
    assert wh.existing_columns("image_hashes") == set(want)
    frame = wh.read_table("image_hashes")
    assert frame.loc[0, "creative_id"] == "c1" and frame["ocr_text"].isna().all()
    assert wh.add_missing_columns(TABLES["image_hashes"]) == []  # nothing left to add


def test_a_new_required_column_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE image_hashes (creative_id VARCHAR NOT NULL)")
    with pytest.raises(ValueError, match="required column sha256"):
        DuckDBWarehouse(path).ensure_tables(["image_hashes"])
