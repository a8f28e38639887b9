"""DuckDB warehouse (embedded default): one file; BigQuery-dialect SQL transpiled with sqlglot."""

from __future__ import annotations

import functools
import os
import random
import re
import time
import uuid
from collections.abc import Generator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import sqlglot

from adpipeline.tables import Row, TableSpec
from adpipeline.warehouse import schema
from adpipeline.warehouse.base import Warehouse

DEFAULT_LOCK_WAIT_S = 600.0
"""How long a writer waits for another process to release the file before it gives up (``ADP_DUCKDB_LOCK_WAIT_S``)."""


@functools.lru_cache(maxsize=512)
def to_duckdb(sql: str) -> str:
    """Transpile one BigQuery statement to DuckDB (cached: the same SQL files run many times)."""
    statements = sqlglot.transpile(sql, read="bigquery", write="duckdb", unsupported_level=sqlglot.ErrorLevel.RAISE)
    if len(statements) != 1:
        raise ValueError(f"expected one SQL statement, got {len(statements)}")
    return statements[0]


class DuckDBWarehouse(Warehouse):
    """All tables in one DuckDB file.

    DuckDB lets one process at a time open the file for writing, so a connection is held only for one operation
    (a query, or a MERGE with its staging table) and closed at once: Airflow tasks in separate processes (two DAGs
    at once, mapped tasks) take turns on the file. A process that finds the file locked waits, with growing pauses,
    up to ``lock_wait_s`` instead of failing. Holding the warehouse object does not hold the file."""

    name = "duckdb"

    def __init__(self, path: Path | str, lock_wait_s: float = DEFAULT_LOCK_WAIT_S) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock_wait_s = lock_wait_s
        self._con: duckdb.DuckDBPyConnection | None = None
        self._depth = 0

    @contextmanager
    def session(self) -> Generator[duckdb.DuckDBPyConnection, None, None]:
        """One connection for the operations inside the block (re-entrant); the file is released on exit."""
        if self._con is None:
            self._con = self._connect()
        self._depth += 1
        try:
            yield self._con
        finally:
            self._depth -= 1
            if self._depth == 0:
                con, self._con = self._con, None
                con.close()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_wait_s
        pause = 0.05
        while True:
            try:
                return duckdb.connect(str(self.path))
            except duckdb.IOException as exc:  # another process holds the file
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(pause * (0.5 + random.random()))
                pause = min(pause * 2, 2.0)

    def close(self) -> None:
        if self._con is not None and self._depth == 0:
            self._con.close()
            self._con = None

    def table_ref(self, table: str) -> str:
        return f"`{table}`"

    def table_exists(self, table: str) -> bool:
        with self.session() as con:
            found = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
            ).fetchone()
        return bool(found and found[0])

    def existing_columns(self, table: str) -> set[str]:
        with self.session() as con:
            found = con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table])
            return {row[0] for row in found.fetchall()}

    def table_versions(self, tables: Sequence[str]) -> dict[str, str]:
        """Row count and an order-free sum of row hashes per table: DuckDB keeps no modification time, and a scan
        of a local file is cheap (its content, so a write that changes nothing changes no token)."""
        out = {}
        with self.session() as con:
            for table in tables:
                bare = table.strip().strip("`")
                if not self.table_exists(bare):
                    out[table] = "absent"
                    continue
                found = con.execute(f'SELECT count(*), sum(hash(t)::HUGEINT) FROM "{bare}" AS t').fetchone()
                out[table] = f"{found[0]}:{found[1] or 0}" if found else "absent"
        return out

    def _run(self, sql: str, params: Mapping[str, Any] | None) -> pd.DataFrame:
        translated = to_duckdb(sql)
        # BigQuery ignores parameters a statement does not use; DuckDB rejects them, so pass only the used ones.
        used = {k: v for k, v in (params or {}).items() if re.search(rf"\${re.escape(k)}\b", translated)}
        with self.session() as con:
            cursor = con.execute(translated, used or None)
            if cursor.description is None:
                return pd.DataFrame()
            return cursor.fetchdf()

    def _load_stage(self, spec: TableSpec, rows: Sequence[Row]) -> str:
        # Called inside merge_rows' session: the TEMP table lives as long as that one connection.
        name = f"_stage_{spec.name}_{uuid.uuid4().hex[:8]}"
        arrow_rows = schema.rows_to_arrow(spec.model, rows)  # noqa: F841 - read by DuckDB's replacement scan
        with self.session() as con:
            con.execute(f'CREATE TEMP TABLE "{name}" AS SELECT * FROM arrow_rows')
        return f"`{name}`"

    def _drop(self, table_ref: str) -> None:
        self._run(f"DROP TABLE IF EXISTS {table_ref}", None)

    def compact(self) -> bool:
        """Rewrite the file (after a privacy delete): DuckDB marks deleted rows and reuses their blocks later, so until
        then their bytes stay in the file (measured: a deleted id is still found in the file after CHECKPOINT). The
        tables are copied into a new file while this process holds the old one, which then replaces it."""
        fresh = self.path.with_name(self.path.name + ".compact")
        for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
            leftover.unlink(missing_ok=True)
        with self.session() as con:
            con.execute("CHECKPOINT")
            (db,) = con.execute("SELECT current_database()").fetchone()  # type: ignore[misc]
            con.execute(f"ATTACH '{fresh}' AS adp_compact")
            try:
                con.execute(f'COPY FROM DATABASE "{db}" TO adp_compact')
            finally:
                con.execute("DETACH adp_compact")
            # Replaced while this connection still holds the old file: a writer waiting for the lock opens the new one.
            os.replace(fresh, self.path)
        return True
