"""The warehouse interface. SQL is BigQuery's dialect everywhere; a backend runs it natively or transpiles it."""

from __future__ import annotations

import datetime as dt
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import pandas as pd

from adpipeline.tables import BUCKET_KEYS, TABLES, Row, TableSpec
from adpipeline.warehouse import schema

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"  # package data: found from a wheel install too
MACROS_DIR = SQL_DIR / "macros"
_JINJA = jinja2.Environment(
    loader=jinja2.FileSystemLoader(MACROS_DIR),
    undefined=jinja2.StrictUndefined,
    autoescape=False,  # noqa: S701 - SQL, not HTML; every value rendered is a table reference or a macro's text
    keep_trailing_newline=True,
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUALIFIED = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_]+){0,2}")


def identifier(name: str) -> str:
    """A column name from a setting, checked and quoted for SQL."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"bad column name {name!r}")
    return f"`{name}`"


@lru_cache(maxsize=256)
def _template(sql: str) -> tuple[jinja2.Template, frozenset[str]]:
    """A SQL text compiled once, with the names its ``{{ x }}`` placeholders refer to."""
    return _JINJA.from_string(sql), frozenset(jinja2.meta.find_undeclared_variables(_JINJA.parse(sql)))


def sql_path(name: str) -> Path:
    """``media/merge_into_x`` → ``adpipeline/sql/media/merge_into_x.sql``."""
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no SQL file {path}")
    return path


def missing_columns(spec: TableSpec, have: set[str]) -> list[schema.Column]:
    """The columns of ``spec``'s row model a table with columns ``have`` lacks; a missing REQUIRED column is an
    error naming it (rows that exist have no value for it)."""
    missing = [column for column in schema.columns(spec.model) if column.name not in have]
    for column in missing:
        if not (column.nullable or column.repeated):
            raise ValueError(
                f"table {spec.name} lacks the required column {column.name}: add it by hand (it has no default)"
            )
    return missing


class Warehouse(ABC):
    """A warehouse that runs BigQuery-dialect SQL and writes rows idempotently.

    Implementations: :class:`~adpipeline.warehouse.duckdb.DuckDBWarehouse` (embedded default) and
    :class:`~adpipeline.warehouse.bigquery.BigQueryWarehouse` (production).
    """

    name: str
    partitioned: bool = False
    """Whether tables get the specs' PARTITION BY / CLUSTER BY (BigQuery); DuckDB has neither."""

    # --- backend primitives ---------------------------------------------------------------------
    @abstractmethod
    def table_ref(self, table: str) -> str:
        """A table reference valid in BigQuery-dialect SQL for this backend."""

    @abstractmethod
    def _run(self, sql: str, params: Mapping[str, Any] | None) -> pd.DataFrame:
        """Run one BigQuery-dialect statement; return its rows (empty frame for DDL/DML)."""

    def _read(self, sql: str, params: Mapping[str, Any] | None) -> pd.DataFrame:
        """Run one BigQuery-dialect SELECT and return its rows (a backend may read results its own way)."""
        return self._run(sql, params)

    @abstractmethod
    def _load_stage(self, spec: TableSpec, rows: Sequence[Row]) -> str:
        """Write rows into a fresh staging table shaped like ``spec.model``; return its reference."""

    @abstractmethod
    def _drop(self, table_ref: str) -> None:
        """Drop a (staging) table if it exists."""

    @abstractmethod
    def table_exists(self, table: str) -> bool:
        """Whether the table exists."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def session(self) -> AbstractContextManager[Any]:
        """Group operations on one connection (needed where a staging table must outlive one statement). Backends
        with a shared server (BigQuery) need nothing; DuckDB opens the file here and releases it on exit."""
        return nullcontext()

    def compact(self) -> bool:
        """Rewrite the storage so the bytes of deleted rows are gone (after a privacy delete); whether anything was
        rewritten. Backends that need nothing keep this no-op."""
        return False

    # --- shared behaviour -----------------------------------------------------------------------
    def render(self, sql: str, names: Mapping[str, str] | None = None) -> str:
        """Render a Jinja-templated SQL text: each ``{{ x }}`` becomes ``names[x]`` if given (already a valid SQL
        reference), else the backend's reference to table ``x``; ``{% from "stats.sql.jinja" import ... %}`` brings
        the shared macros of ``sql/macros/``."""
        names = names or {}
        template, variables = _template(sql)
        return template.render({v: names.get(v) or self.table_ref(v) for v in variables})

    def source_ref(self, table: str) -> str:
        """Reference to a source table given by a setting: a bare name lives in our dataset; ``project.dataset.table``
        (BigQuery) is used as given."""
        if not _QUALIFIED.fullmatch(table):
            raise ValueError(f"bad table name {table!r}")
        return f"`{table}`" if "." in table else self.table_ref(table)

    def query(
        self, sql: str, params: Mapping[str, Any] | None = None, names: Mapping[str, str] | None = None
    ) -> pd.DataFrame:
        """Run a templated BigQuery-dialect query and return a DataFrame."""
        return self._read(self.render(sql, names), params)

    def query_file(
        self, name: str, params: Mapping[str, Any] | None = None, names: Mapping[str, str] | None = None
    ) -> pd.DataFrame:
        """Run ``sql/<name>.sql``."""
        return self.query(sql_path(name).read_text(), params, names)

    def ensure_tables(self, names: Sequence[str] | None = None) -> None:
        """Create the named tables (all by default) from their row models, if missing, and add the nullable columns a
        newer version of a row model has (:meth:`add_missing_columns`, once per table and warehouse object)."""
        checked: set[str] = self.__dict__.setdefault("_columns_checked", set())
        with self.session():
            for name in names or list(TABLES):
                self._run(self.create_table_sql(TABLES[name]), None)
                if name not in checked:
                    self.add_missing_columns(TABLES[name])
                    checked.add(name)
                    self.migrate_bucket_keys(TABLES[name])

    def migrate_bucket_keys(self, spec: TableSpec) -> int:
        """Rewrite the absolute paths and URLs that rows written before bucket keys were stored hold in
        :data:`~adpipeline.tables.BUCKET_KEYS` columns to the key at their end (MERGE on the table's key); a value
        with no such key stays as it is. Returns the rows rewritten (0, after one query, once they are keys)."""
        from adpipeline.warehouse.schema import rows_from_frame

        patterns = BUCKET_KEYS.get(spec.name)
        if not patterns:
            return 0
        repeated = {c.name: c.repeated for c in schema.columns(spec.model)}
        absolute = "(STARTS_WITH({v}, '/') OR STRPOS({v}, '://') > 0)"
        where = " OR ".join(
            f"EXISTS (SELECT 1 FROM UNNEST({column}) AS v WHERE {absolute.format(v='v')})"
            if repeated[column]
            else absolute.format(v=column)
            for column in patterns
        )
        frame = self._run(f"SELECT * FROM {self.table_ref(spec.name)} WHERE {where}", None)
        if frame.empty:
            return 0
        compiled = {column: re.compile(pattern) for column, pattern in patterns.items()}

        def to_key(value: str | None, column: str) -> str | None:
            if not isinstance(value, str) or not ("://" in value or value.startswith("/")):
                return value
            found = compiled[column].search(value)
            return found.group(0) if found else value

        rows = rows_from_frame(spec.model, frame)
        for row in rows:
            for column in patterns:
                value = getattr(row, column)
                if isinstance(value, list):
                    setattr(row, column, [to_key(v, column) for v in value])
                else:
                    setattr(row, column, to_key(value, column))
        self.merge_rows(spec.name, rows)
        return len(rows)

    def existing_columns(self, table: str) -> set[str]:
        """The column names ``table`` has in the warehouse."""
        frame = self._run(
            "SELECT column_name FROM INFORMATION_SCHEMA.COLUMNS WHERE table_name = @table", {"table": table}
        )
        return set(frame["column_name"])

    def add_missing_columns(self, spec: TableSpec) -> list[str]:
        """Bring a table made by an earlier version up to its row model: ``ALTER TABLE ... ADD COLUMN`` for each
        column the model has and the table lacks (new columns are nullable, so old rows read NULL). A new REQUIRED
        column cannot be added to rows that exist: that is an error naming it. Returns the columns added."""
        missing = missing_columns(spec, self.existing_columns(spec.name))
        for column in missing:
            self._run(f"ALTER TABLE {self.table_ref(spec.name)} ADD COLUMN {column.name} {column.sql_type}", None)
        return [column.name for column in missing]

    def create_table_sql(self, spec: TableSpec) -> str:
        """The table's DDL on this backend (with partitioning and clustering where the backend has them)."""
        if self.partitioned:
            return schema.create_table_sql(self.table_ref(spec.name), spec.model, spec.partition_by, spec.clustering)
        return schema.create_table_sql(self.table_ref(spec.name), spec.model)

    def merge_rows(
        self,
        table: str,
        rows: Sequence[Row],
        *,
        update: Mapping[str, str] | None = None,
    ) -> int:
        """MERGE rows into ``table`` on its key: update matched rows, insert new ones. Idempotent.

        ``update`` overrides the SET expression of some columns (``T`` is the target, ``S`` the new row), e.g.
        ``{"first_seen_date": "LEAST(T.first_seen_date, S.first_seen_date)"}``.
        """
        spec = TABLES[table]
        if not rows:
            return 0
        rows = _dedupe_on_key(spec, rows)
        with self.session():
            self.ensure_tables([table])
            stage = self._load_stage(spec, rows)
            try:
                self._run(merge_sql(spec, self.table_ref(table), stage, update or {}), None)
            finally:
                self._drop(stage)
        return len(rows)

    def replace_rows(self, table: str, rows: Sequence[Row]) -> int:
        """Replace every row of ``table`` with ``rows`` (a table rebuilt in Python): one atomic MERGE that deletes
        the old rows and inserts the new ones. Idempotent."""
        spec = TABLES[table]
        rows = _dedupe_on_key(spec, rows)
        with self.session():
            self.ensure_tables([table])
            if not rows:
                self._run(f"DELETE FROM {self.table_ref(table)} WHERE TRUE", None)
                return 0
            stage = self._load_stage(spec, rows)
            cols = [c.name for c in schema.columns(spec.model)]
            try:
                self._run(
                    f"MERGE {self.table_ref(table)} AS T\nUSING {stage} AS S\nON FALSE\n"
                    "WHEN NOT MATCHED BY SOURCE THEN DELETE\n"
                    f"WHEN NOT MATCHED THEN INSERT ({', '.join(cols)}) VALUES ({', '.join(f'S.{c}' for c in cols)})",
                    None,
                )
            finally:
                self._drop(stage)
        return len(rows)

    def rebuild_from_file(
        self,
        table: str,
        name: str,
        params: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> None:
        """CREATE OR REPLACE ``table`` from the SELECT in ``sql/<name>.sql``, cast to the table's row model."""
        spec = TABLES[table]
        select = self._model_select(table, name, names)
        layout = schema.layout_sql(spec.model, spec.partition_by, spec.clustering) if self.partitioned else ""
        self._run(f"CREATE OR REPLACE TABLE {self.table_ref(table)}{layout} AS\n{select}", params)

    def replace_partitions_from_file(
        self,
        table: str,
        name: str,
        dates: Sequence[dt.date],
        params: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> None:
        """Replace the rows of ``dates`` in ``table`` with the SELECT in ``sql/<name>.sql``, which gets ``@dates``.

        One atomic MERGE, BigQuery's idiom for replacing partitions: the old rows of those dates are deleted and the
        new ones inserted together; other partitions are neither read nor written (rows the SELECT returns for
        other dates are not inserted either). Idempotent."""
        spec = self._partitioned(table)
        if not dates:
            return
        self.ensure_tables([table])
        select = self._model_select(table, name, names)
        cols = [c.name for c in schema.columns(spec.model)]
        column = spec.partition_by
        sql = (
            f"MERGE {self.table_ref(table)} AS T\nUSING (\n{select}\n) AS S\nON FALSE\n"
            f"WHEN NOT MATCHED BY SOURCE AND T.{column} IN UNNEST(@dates) THEN DELETE\n"
            f"WHEN NOT MATCHED AND S.{column} IN UNNEST(@dates) THEN "
            f"INSERT ({', '.join(cols)}) VALUES ({', '.join(f'S.{c}' for c in cols)})"
        )
        self._run(sql, {**(params or {}), "dates": sorted(set(dates))})

    def partitions_out_of_step(
        self,
        table: str,
        name: str,
        dates: Sequence[dt.date],
        params: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> list[dt.date]:
        """The dates among ``dates`` whose rows in ``table`` differ from what ``sql/<name>.sql`` (given ``@dates``)
        returns for them now: a row missing, extra, changed in any column, or there a different number of times.
        Replacing exactly these partitions with :meth:`replace_partitions_from_file` makes the table equal a rebuild
        from the current upstream tables. One query; it reads the SELECT's inputs and the table's rows of ``dates``
        but writes nothing (arrays compare by their JSON text, since set operations cannot compare ARRAY)."""
        spec = self._partitioned(table)
        if not dates:
            return []
        self.ensure_tables([table])
        column = spec.partition_by
        compared = ", ".join(
            f"TO_JSON_STRING({c.name}) AS {c.name}" if c.repeated else c.name for c in schema.columns(spec.model)
        )
        sql = (
            f"WITH fresh AS (\n{self._model_select(table, name, names)}\n),\n"
            f"built AS (SELECT * FROM {self.table_ref(table)} WHERE {column} IN UNNEST(@dates)),\n"
            f"fresh_rows AS (SELECT {compared} FROM fresh WHERE {column} IN UNNEST(@dates)),\n"
            f"built_rows AS (SELECT {compared} FROM built),\n"
            f"fresh_counts AS (SELECT {column} AS d, COUNT(*) AS n FROM fresh_rows GROUP BY {column}),\n"
            f"built_counts AS (SELECT {column} AS d, COUNT(*) AS n FROM built_rows GROUP BY {column})\n"
            f"SELECT DISTINCT {column} AS d FROM (\n"
            "  (SELECT * FROM fresh_rows EXCEPT DISTINCT SELECT * FROM built_rows)\n  UNION ALL\n"
            "  (SELECT * FROM built_rows EXCEPT DISTINCT SELECT * FROM fresh_rows)\n)\n"
            "UNION DISTINCT\n"
            "SELECT COALESCE(f.d, b.d) AS d FROM fresh_counts AS f FULL OUTER JOIN built_counts AS b ON f.d = b.d\n"
            "WHERE f.n IS NULL OR b.n IS NULL OR f.n != b.n"
        )
        frame = self._read(sql, {**(params or {}), "dates": sorted(set(dates))})
        return sorted({pd.Timestamp(value).date() for value in frame["d"]})

    def _model_select(self, table: str, name: str, names: Mapping[str, str] | None) -> str:
        """The SELECT in ``sql/<name>.sql``, rendered and cast to ``table``'s row model."""
        inner = self.render(sql_path(name).read_text(), names).strip().rstrip(";")
        return schema.select_as_model_sql(TABLES[table].model, inner)

    @staticmethod
    def _partitioned(table: str) -> TableSpec:
        spec = TABLES[table]
        if not spec.partition_by:
            raise ValueError(f"{table} has no partition column")
        return spec

    def table_versions(self, tables: Sequence[str]) -> dict[str, str]:
        """A token per table (a name in our dataset, or a qualified source table) that changes whenever the table's
        rows change; ``absent`` for a missing table. Cheap enough to ask on every run (see each backend)."""
        raise NotImplementedError(f"{type(self).__name__} has no table versions")

    def delete_where(self, table: str, condition: str, params: Mapping[str, Any] | None = None) -> None:
        """DELETE rows matching a BigQuery-dialect condition (used by deletion of a person)."""
        if self.table_exists(table):
            self._run(f"DELETE FROM {self.table_ref(table)} WHERE {condition}", params)

    def read_table(self, table: str, order_by: str | None = None) -> pd.DataFrame:
        order = f" ORDER BY {order_by}" if order_by else ""
        return self._read(f"SELECT * FROM {self.table_ref(table)}{order}", None)

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _dedupe_on_key(spec: TableSpec, rows: Sequence[Row]) -> list[Row]:
    """Last row wins per key, so a MERGE never sees two source rows for one target row."""
    by_key: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        if not isinstance(row, spec.model):
            raise TypeError(f"{spec.name} expects {spec.model.__name__}, got {type(row).__name__}")
        by_key[tuple(getattr(row, k) for k in spec.key)] = row
    return list(by_key.values())


def merge_sql(spec: TableSpec, target: str, stage: str, update: Mapping[str, str]) -> str:
    """A BigQuery MERGE from the staging table into the target on the spec's key."""
    cols = [c.name for c in schema.columns(spec.model)]
    on = " AND ".join(f"T.{k} = S.{k}" for k in spec.key)
    sets = ", ".join(f"{c} = {update.get(c, f'S.{c}')}" for c in cols if c not in spec.key)
    insert_cols = ", ".join(cols)
    insert_vals = ", ".join(f"S.{c}" for c in cols)
    matched = f"WHEN MATCHED THEN UPDATE SET {sets}\n" if sets else ""
    return (
        f"MERGE {target} AS T\nUSING {stage} AS S\nON {on}\n{matched}"
        f"WHEN NOT MATCHED THEN INSERT ({insert_cols}) VALUES ({insert_vals})"
    )
