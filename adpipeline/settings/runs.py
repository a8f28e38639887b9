"""Runs: the import schedule, how work fans out over mapped tasks, when a task fails and where alerts go."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from adpipeline.settings.base import Domain


class RunSettings(Domain):
    """Scheduling, chunk sizes of the mapped tasks, the failure shares every stage applies, and alerts."""

    title = "Runs: schedule, fan-out, failures and alerts"
    readme = "docs/deploy.md"

    schedule_start_date: dt.date = dt.date(2026, 10, 1)
    """First data interval of the daily adp_import schedule (read when the DAG file is parsed)."""
    schedule_catchup: bool = False
    """Unpausing adp_import runs every missed day since the start date (off: only the latest; backfill history)."""
    media_chunk_size: int = Field(500, ge=1, le=100_000)
    """Creatives per mapped media task (fetch + analyse); each chunk writes its own rows."""
    features_chunk_size: int = Field(200, ge=1, le=100_000)
    """Creatives per mapped feature-extraction task (bounds a task's memory: its media is held at once)."""
    faces_chunk_size: int = Field(20, ge=1, le=10_000)
    """Videos per mapped face-detection task."""
    alert_conn_id: str | None = None
    """Airflow connection whose host is a webhook URL (e.g. Slack) for one-line failure alerts; empty: log only."""
    max_failure_share: float = Field(0.5, ge=0.0, le=1.0)
    """A task fails only when more than this share of its items failed (the rest are kept)."""
    permanent_failure_warn_share: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="A step whose permanent per-item failures (blocked paths, corrupt files, 404s) pass this share of "
        "its items logs a warning, records it in run_warnings (adpipeline summary) and posts it to ADP_ALERT_CONN_ID; "
        "the task still succeeds (1.0: never warn).",
    )
