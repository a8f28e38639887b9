"""Helpers for the end-to-end tests: settings per home, sample loading, table checksums."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

from adpipeline.settings import Settings
from adpipeline.tables import TABLES

START = dt.date(2026, 10, 1)
VOLATILE = {"genai_usage": ("call_id", "latency_ms", "called_at", "run_id")}
"""Columns that record when and how fast a call happened, not what it produced: left out of the checksums."""


def make_settings(home: Path) -> Settings:
    return Settings(home=home, allow_local_paths=True)


def load_sample(settings: Settings, manifest) -> int:
    from adpipeline.sample_load import load_ads_csv

    return load_ads_csv(settings, manifest.raw_ads_csv)


def table_checksums(
    settings: Settings, placeholder_for: str | None = None, *, ignore: tuple[str, ...] = (), digits: int = 6
) -> dict[str, tuple[int, str]]:
    """(row count, content hash) per table; rows sorted by key, floats rounded to ``digits``, DATE values compared
    as dates on every backend, the home folder masked so two homes with the same data compare equal, and the
    ``ignore`` columns (plus :data:`VOLATILE`) left out."""
    from adpipeline.warehouse import get_warehouse
    from adpipeline.warehouse.schema import _plain

    out = {}
    with get_warehouse(settings) as wh:
        for name, spec in TABLES.items():
            if not wh.table_exists(name):
                continue
            frame = wh.read_table(name, order_by=", ".join(spec.key))
            skip = set(ignore) | set(VOLATILE.get(name, ()))
            records = []
            for record in frame.to_dict("records"):
                clean = {k: _clean(_plain(v), digits) for k, v in record.items() if k not in skip}
                records.append(json.dumps(clean, sort_keys=True, default=str))
            text = json.dumps(sorted(records) if name in VOLATILE else records)
            if placeholder_for:
                text = text.replace(placeholder_for, "<HOME>")
            out[name] = (len(records), hashlib.sha256(text.encode()).hexdigest()[:16])
    return out


def _clean(value, digits: int):
    if isinstance(value, dt.datetime) and value.tzinfo is None and value.time() == dt.time(0):
        return value.date().isoformat()  # DuckDB hands DATE columns back as midnight timestamps
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, list):
        return [_clean(v, digits) for v in value]
    return value
