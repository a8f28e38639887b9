"""Derive warehouse schemas from the Pydantic row models (BigQuery types are the lingua franca)."""

from __future__ import annotations

import datetime as dt
import inspect
import types
import typing
from dataclasses import dataclass
from typing import Any, get_args, get_origin

import pyarrow as pa
from pydantic import BaseModel


@dataclass(frozen=True)
class Column:
    """One column: BigQuery scalar type, whether it is REPEATED, and whether it may be NULL."""

    name: str
    bq_type: str
    repeated: bool
    nullable: bool
    description: str = ""
    """From the row model's field (``Field(description=...)``), else :data:`adpipeline.tables.COLUMN_DOCS`."""

    @property
    def sql_type(self) -> str:
        return f"ARRAY<{self.bq_type}>" if self.repeated else self.bq_type

    @property
    def mode(self) -> str:
        if self.repeated:
            return "REPEATED"
        return "NULLABLE" if self.nullable else "REQUIRED"


_SCALARS: dict[Any, str] = {
    str: "STRING",
    int: "INT64",
    float: "FLOAT64",
    bool: "BOOL",
    dt.date: "DATE",
    dt.datetime: "TIMESTAMP",
}

_ARROW: dict[str, pa.DataType] = {
    "STRING": pa.string(),
    "INT64": pa.int64(),
    "FLOAT64": pa.float64(),
    "BOOL": pa.bool_(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
}


def _scalar(annotation: Any) -> str:
    if get_origin(annotation) is typing.Literal:
        values = get_args(annotation)
        return _SCALARS[type(values[0])]
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    raise TypeError(f"no warehouse type for {annotation!r}")


def column_description(model: type[BaseModel], name: str) -> str:
    """What a column means, for BigQuery and docs/tables.md: the field's description, else the shared one."""
    from adpipeline.tables import COLUMN_DOCS

    return " ".join((model.model_fields[name].description or COLUMN_DOCS.get(name, "")).split())


def table_description(model: type[BaseModel]) -> str:
    """What a table holds (the row model's docstring as one paragraph), for BigQuery and docs/tables.md."""
    return " ".join(inspect.cleandoc(model.__doc__ or "").split())


def columns(model: type[BaseModel]) -> list[Column]:
    """The model's columns in declaration order."""
    result = []
    for name, field in model.model_fields.items():
        description = column_description(model, name)
        annotation = field.annotation
        nullable = False
        origin = get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            nullable = len(args) < len(get_args(annotation))
            if len(args) != 1:
                raise TypeError(f"{model.__name__}.{name}: unions other than Optional are not supported")
            annotation = args[0]
            origin = get_origin(annotation)
        if origin is list:
            (item,) = get_args(annotation)
            result.append(Column(name, _scalar(item), repeated=True, nullable=True, description=description))
        else:
            result.append(Column(name, _scalar(annotation), repeated=False, nullable=nullable, description=description))
    return result


def create_table_sql(
    table_ref: str,
    model: type[BaseModel],
    partition_by: str | None = None,
    cluster_by: typing.Sequence[str] = (),
) -> str:
    """``CREATE TABLE IF NOT EXISTS`` in BigQuery's dialect, partitioned by a DATE column and clustered if asked."""
    cols = ",\n  ".join(
        f"{c.name} {c.sql_type}{'' if c.nullable or c.repeated else ' NOT NULL'}" for c in columns(model)
    )
    return f"CREATE TABLE IF NOT EXISTS {table_ref} (\n  {cols}\n){layout_sql(model, partition_by, cluster_by)}"


def layout_sql(model: type[BaseModel], partition_by: str | None = None, cluster_by: typing.Sequence[str] = ()) -> str:
    """`` PARTITION BY d CLUSTER BY a, b`` (or ``""``), checked against the model's columns."""
    by_name = {c.name: c for c in columns(model)}
    clauses = []
    if partition_by:
        column = by_name.get(partition_by)
        if column is None or column.bq_type != "DATE" or column.repeated:
            raise ValueError(f"{model.__name__}: partition column {partition_by!r} must be a DATE column")
        clauses.append(f"PARTITION BY {partition_by}")
    if cluster_by:
        bad = [c for c in cluster_by if c not in by_name or by_name[c].repeated]
        if bad or len(cluster_by) > 4:
            raise ValueError(f"{model.__name__}: bad clustering columns {list(cluster_by)} (at most four scalars)")
        clauses.append("CLUSTER BY " + ", ".join(cluster_by))
    return "".join(f"\n{clause}" for clause in clauses)


def arrow_schema(model: type[BaseModel]) -> pa.Schema:
    fields = []
    for c in columns(model):
        base = _ARROW[c.bq_type]
        fields.append(pa.field(c.name, pa.list_(base) if c.repeated else base, nullable=c.nullable or c.repeated))
    return pa.schema(fields)


def rows_to_arrow(model: type[BaseModel], rows: typing.Sequence[BaseModel]) -> pa.Table:
    """Rows (validated models) to an Arrow table with exactly the model's schema."""
    schema = arrow_schema(model)
    data = {f.name: [getattr(r, f.name) for r in rows] for f in schema}
    for c in columns(model):
        if c.bq_type == "TIMESTAMP":
            data[c.name] = [
                (v if v.tzinfo else v.replace(tzinfo=dt.UTC)) if v is not None else None for v in data[c.name]
            ]
    return pa.table(data, schema=schema)


def select_as_model_sql(model: type[BaseModel], inner_sql: str) -> str:
    """Wrap a SELECT so that its output has exactly the model's columns and types (BigQuery dialect)."""
    projections = []
    for c in columns(model):
        if c.repeated:
            projections.append(c.name)
        else:
            projections.append(f"CAST({c.name} AS {c.bq_type}) AS {c.name}")
    return "SELECT " + ", ".join(projections) + f" FROM (\n{inner_sql}\n)"


def _plain(value: Any) -> Any:
    """A value read back through pandas as plain Python: NULL/NaN → None, arrays → lists, numpy → Python."""
    if value is None:
        return None
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        converted = value.tolist()
        if isinstance(converted, list):
            return [_plain(v) for v in converted]
        value = converted
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN
        return None
    try:
        import pandas as pd

        if value is pd.NaT or value is pd.NA:
            return None
        if isinstance(value, pd.Timestamp):
            return value.to_pydatetime()
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    return value


def rows_from_frame(model: type[BaseModel], frame: Any) -> list[Any]:
    """DataFrame rows (from any backend) back into validated row models; extra columns are ignored."""
    names = set(model.model_fields)
    rows = []
    for record in frame.to_dict("records"):
        clean = {k: _plain(v) for k, v in record.items() if k in names}
        for c in columns(model):
            if c.repeated and clean.get(c.name) is None:
                clean[c.name] = []
            if c.bq_type == "DATE" and isinstance(clean.get(c.name), dt.datetime):
                clean[c.name] = clean[c.name].date()
        rows.append(model.model_validate(clean))
    return rows
