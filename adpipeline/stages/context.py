"""What every stage gets: settings, warehouse, bucket and the data window."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

import pandas as pd

from adpipeline.bucket import Bucket
from adpipeline.settings import Settings
from adpipeline.warehouse import Warehouse, get_warehouse
from adpipeline.warehouse.base import identifier, sql_path
from adpipeline.window import Window

log = logging.getLogger("adpipeline")


class Chunk(TypedDict, total=False):
    """One mapped task's share of a stage's pending work (what ``plan`` functions return, a list of these):
    ``kind`` and ``ids`` always; ``share``: the part of the run's model budget this chunk may spend."""

    kind: str
    ids: list[str]
    share: float


def make_chunks(kind: str, ids: Sequence[str], size: int) -> list[Chunk]:
    """Pending ids in chunks of at most ``size`` (order kept), for ``.expand()``; no chunk when nothing is pending."""
    ids = list(ids)
    return [Chunk(kind=kind, ids=ids[i : i + size]) for i in range(0, len(ids), size)]


class StageFailed(RuntimeError):
    """A stage's per-item failure share passed ``max_failure_share``; the good rows were written before this."""


@dataclass
class StageContext:
    """Settings, warehouse, bucket and the data window of one task. ``chunk`` is set in a mapped task: the ids
    (creative ids) that task works on, out of what its stage's ``plan`` listed as pending."""

    settings: Settings
    window: Window
    run_id: str = "manual"
    chunk: Chunk | None = None
    warehouse: Warehouse = field(init=False)
    bucket: Bucket = field(init=False)
    warnings: list[str] = field(default_factory=list, init=False)
    """Warning lines raised by :func:`warn_failure_share` in this task (the Airflow adapter posts them)."""

    def __post_init__(self) -> None:
        self.warehouse = get_warehouse(self.settings)
        self.bucket = Bucket.for_settings(self.settings)

    def close(self) -> None:
        self.warehouse.close()

    def __enter__(self) -> StageContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def only_chunk(self, frame: pd.DataFrame, column: str = "creative_id") -> pd.DataFrame:
        """The rows of a pending-work frame this task owns: all of them outside a mapped task, else the chunk's."""
        if self.chunk is None:
            return frame
        return frame[frame[column].isin(set(self.chunk["ids"]))]

    def source_names(self) -> dict[str, str]:
        """Template names for the source table and its configured columns."""
        s = self.settings
        names = {
            "source": self.warehouse.source_ref(s.source_table),
            "col_ad_id": identifier(s.source_ad_id_column),
            "col_date": identifier(s.source_date_column),
            "col_campaign": identifier(s.source_campaign_column),
            "col_image_url": identifier(s.source_image_url_column),
            "col_video_url": identifier(s.source_video_url_column),
            "col_impressions": identifier(s.source_impressions_column),
            "col_clicks": identifier(s.source_clicks_column),
            "col_spend": identifier(s.source_spend_column),
            "col_conversions": identifier(s.source_conversions_column),
        }
        # The source table in our column names, as a subquery every SQL file can select from.
        names["source_ads"] = (
            "(\n" + self.warehouse.render(sql_path("source/select_source_ads").read_text(), names) + ")"
        )
        return names


def check_failure_share(stage: str, failed: int, total: int, limit: float) -> None:
    """Fail the task only when too many items failed (each failure is already a status row)."""
    if total and failed / total > limit:
        raise StageFailed(f"{stage}: {failed} of {total} items failed (limit {limit:.0%}); see the status rows")


def warn_failure_share(ctx: StageContext, stage: str, failed_by_status: dict[str, int], total: int) -> str | None:
    """Warn, without failing the task, when more than ``permanent_failure_warn_share`` of a step's items failed for a
    permanent reason: a log line, a ``run_warnings`` row (``adpipeline summary`` shows it) and, through the Airflow
    adapter, a post to the alert connection. Such failures never fail the task (a bad day must not wedge the chain),
    but a day where every item is blocked must not look green. Returns the line, or None."""
    failed = sum(failed_by_status.values())
    limit = ctx.settings.permanent_failure_warn_share
    if not total or failed / total <= limit:
        return None
    import datetime as dt
    import json

    from adpipeline.tables import RunWarning

    statuses = ", ".join(f"{n} {status}" for status, n in sorted(failed_by_status.items(), key=lambda kv: -kv[1]))
    part = f"{ctx.chunk['kind']} chunk from {ctx.chunk['ids'][0]}" if ctx.chunk and ctx.chunk.get("ids") else ""
    line = (
        f"adpipeline warning: {stage}: {failed} of {total} items failed for a permanent reason ({statuses}); "
        f"more than {limit:.0%} (ADP_PERMANENT_FAILURE_WARN_SHARE), run {ctx.run_id}; the run goes on"
    )
    log.warning("%s", line)
    row = RunWarning(
        run_id=ctx.run_id,
        stage=stage,
        part=part,
        failed=failed,
        total=total,
        warn_share=limit,
        statuses_json=json.dumps(dict(sorted(failed_by_status.items()))),
        message=line,
        created_at=dt.datetime.now(dt.UTC),
    )
    ctx.warehouse.merge_rows("run_warnings", [row])
    ctx.warnings.append(line)
    return line


def summary(stage: str, window: Window, **counts: Any) -> dict[str, Any]:
    result = {"stage": stage, "window": window.to_json(), **counts}
    log.info("%s done for %s: %s", stage, window, counts)
    return result
