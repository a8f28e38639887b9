"""Helpers for the end-to-end tests: settings per home, sample loading, table checksums."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from pathlib import Path

from adpipeline.settings import Settings
from adpipeline.tables import TABLES

START = dt.date(2026, 10, 1)
VOLATILE = {
    "genai_usage": ("call_id", "latency_ms", "called_at", "run_id"),
    "media_fetches": ("next_attempt_at",),  # a retry time counted from the wall clock
    "final_watermark": ("version",),  # backend-specific tokens of what the final stage last read
}
"""Columns that record when and how fast a call happened, not what it produced: left out of the checksums."""
RUN_LOG_TABLES = ("run_warnings",)
"""Tables that record how the work was split into runs (which run warned), not what it produced: left out."""


def make_settings(home: Path, *media_roots: Path) -> Settings:
    """Settings for a run on the sample in ``media_roots`` (local media paths are allowed only under them; without
    any, only under the default root ``<home>/sample``)."""
    if not media_roots:
        return Settings(home=home, allow_local_paths=True)
    return Settings(home=home, allow_local_paths=True, local_media_roots=list(media_roots))


def load_sample(settings: Settings, manifest) -> int:
    from adpipeline.sample_load import load_ads_csv

    return load_ads_csv(settings, manifest.raw_ads_csv)


def table_records(
    settings: Settings, *, ignore: tuple[str, ...] = (), digits: int | None = None
) -> dict[str, list[dict]]:
    """Every table's rows as plain records: sorted by key (or by content where :data:`VOLATILE` columns are left
    out), floats rounded to ``digits`` when given, DATE values compared as dates on every backend, and the ``ignore``
    columns (plus :data:`VOLATILE`) left out."""
    from adpipeline.warehouse import get_warehouse
    from adpipeline.warehouse.schema import _plain

    out = {}
    with get_warehouse(settings) as wh:
        for name, spec in TABLES.items():
            if name in RUN_LOG_TABLES or not wh.table_exists(name):
                continue
            frame = wh.read_table(name, order_by=", ".join(spec.key))
            skip = set(ignore) | set(VOLATILE.get(name, ()))
            records = [
                {k: _clean(_plain(v), digits) for k, v in record.items() if k not in skip}
                for record in frame.to_dict("records")
            ]
            if name in VOLATILE:
                records.sort(key=lambda r: json.dumps(r, sort_keys=True, default=str))
            out[name] = records
    return out


def table_checksums(
    settings: Settings, placeholder_for: str | None = None, *, ignore: tuple[str, ...] = (), digits: int = 6
) -> dict[str, tuple[int, str]]:
    """(row count, content hash) per table, of :func:`table_records` rounded to ``digits``, with the home folder
    masked so two homes with the same data compare equal."""
    out = {}
    for name, records in table_records(settings, ignore=ignore, digits=digits).items():
        text = json.dumps([json.dumps(r, sort_keys=True, default=str) for r in records])
        if placeholder_for:
            text = text.replace(placeholder_for, "<HOME>")
        out[name] = (len(records), hashlib.sha256(text.encode()).hexdigest()[:16])
    return out


def differing_rows(left: list[dict], right: list[dict], *, rel: float = 1e-9, abs_: float = 1e-12) -> list:
    """Pairs of rows (by position) that differ; floats compare within ``rel``/``abs_`` (two engines sum floats in
    different orders, so a hash of rounded values can split on a rounding edge)."""
    if len(left) != len(right):
        return [("row count", len(left), len(right))]
    return [(a, b) for a, b in zip(left, right, strict=True) if not _same(a, b, rel, abs_)]


def _same(a, b, rel: float, abs_: float) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=rel, abs_tol=abs_) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], rel, abs_) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y, rel, abs_) for x, y in zip(a, b, strict=True))
    return a == b


def _clean(value, digits: int | None):
    if isinstance(value, dt.datetime) and value.tzinfo is None and value.time() == dt.time(0):
        return value.date().isoformat()  # DuckDB hands DATE columns back as midnight timestamps
    if type(value) is dt.date:
        return value.isoformat()
    if isinstance(value, float):
        return value if digits is None else round(value, digits)
    if isinstance(value, list):
        return [_clean(v, digits) for v in value]
    return value


FINAL_TABLES = ("ads_enriched", "feature_performance", "face_performance")


def stale_tables(settings: Settings, scratch: Path) -> dict[str, int]:
    """The final tables that differ from a rebuild from the same upstream tables, with how many rows differ. The
    rebuild is the final stage run on a copy of the warehouse (DuckDB: the home copied into ``scratch``; BigQuery: every
    table copied into a new dataset) whose final tables and watermark were dropped, so nothing of the old final tables
    can leak into it; rows compare by content (floats within 1e-9)."""
    from adpipeline.stages import final
    from adpipeline.stages.context import StageContext
    from adpipeline.window import Window

    copy = _clone_warehouse(settings, scratch)
    with StageContext(copy, Window(START, START)) as ctx:
        for table in (*FINAL_TABLES, final.WATERMARK):
            ctx.warehouse._drop(ctx.warehouse.table_ref(table))
        if final.run(ctx)["skipped"]:
            raise AssertionError("the rebuild found a watermark")
    want = table_records(copy)
    got = table_records(settings)
    out = {}
    for table in FINAL_TABLES:
        # No path masking: the copy holds the upstream rows as they were, stored paths included.
        differ = differing_rows(got.get(table, []), want.get(table, []))
        if differ:
            out[table] = len(differ)
    return out


def _clone_warehouse(settings: Settings, scratch: Path) -> Settings:
    import shutil

    if settings.warehouse_backend != "bigquery":
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.copytree(settings.home, scratch)
        return make_settings(scratch, *settings.local_media_roots)
    from adpipeline.warehouse.bigquery import BigQueryWarehouse

    dataset = f"{settings.bq_dataset}_rebuild_{scratch.name}".replace("-", "_")
    copy = settings.model_copy(update={"home": scratch, "bq_dataset": dataset})
    with get_warehouse_for(settings) as src, get_warehouse_for(copy) as dst:
        assert isinstance(src, BigQueryWarehouse) and isinstance(dst, BigQueryWarehouse)
        dst.ensure_dataset()
        for name in TABLES:
            if src.table_exists(name):
                dst._drop(dst.table_ref(name))
                dst._run(f"CREATE TABLE {dst.table_ref(name)} AS SELECT * FROM {src.table_ref(name)}", None)
    return copy


def get_warehouse_for(settings: Settings):
    from adpipeline.warehouse import get_warehouse

    return get_warehouse(settings)
