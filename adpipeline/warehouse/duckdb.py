"""DuckDB warehouse (embedded default): one file; BigQuery-dialect SQL transpiled with sqlglot."""

from __future__ import annotations

import functools
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import sqlglot

from adpipeline.tables import Row, TableSpec
from adpipeline.warehouse import schema
from adpipeline.warehouse.base import Warehouse

_LOCK_WAIT_S = 60.0


@functools.lru_cache(maxsize=512)
def to_duckdb(sql: str) -> str:
    """Transpile one BigQuery statement to DuckDB (cached: the same SQL files run many times)."""
    statements = sqlglot.transpile(sql, read="bigquery", write="duckdb", unsupported_level=sqlglot.ErrorLevel.RAISE)
    if len(statements) != 1:
        raise ValueError(f"expected one SQL statement, got {len(statements)}")
    return statements[0]


class DuckDBWarehouse(Warehouse):
    """All tables in one DuckDB file. A connection is opened per operation so Airflow tasks in separate
    processes take turns on the file lock instead of holding it."""

    name = "duckdb"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con: duckdb.DuckDBPyConnection | None = None

    # a single long-lived connection inside one process; callers close() when done
    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            deadline = time.monotonic() + _LOCK_WAIT_S
            while True:
                try:
                    self._con = duckdb.connect(str(self.path))
                    break
                except duckdb.IOException as exc:  # another process holds the write lock
                    if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                        raise
                    time.sleep(0.25)
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def table_ref(self, table: str) -> str:
        return f"`{table}`"

    def table_exists(self, table: str) -> bool:
        found = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
        ).fetchone()
        return bool(found and found[0])

    def _run(self, sql: str, params: Mapping[str, Any] | None) -> pd.DataFrame:
        translated = to_duckdb(sql)
        # BigQuery ignores parameters a statement does not use; DuckDB rejects them, so pass only the used ones.
        used = {k: v for k, v in (params or {}).items() if re.search(rf"\${re.escape(k)}\b", translated)}
        cursor = self.con.execute(translated, used or None)
        if cursor.description is None:
            return pd.DataFrame()
        return cursor.fetchdf()

    def _load_stage(self, spec: TableSpec, rows: Sequence[Row]) -> str:
        name = f"_stage_{spec.name}_{uuid.uuid4().hex[:8]}"
        arrow_rows = schema.rows_to_arrow(spec.model, rows)  # noqa: F841 - read by DuckDB's replacement scan
        self.con.execute(f'CREATE TEMP TABLE "{name}" AS SELECT * FROM arrow_rows')
        return f"`{name}`"

    def _drop(self, table_ref: str) -> None:
        self._run(f"DROP TABLE IF EXISTS {table_ref}", None)
