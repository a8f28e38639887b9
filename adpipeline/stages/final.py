"""final: replace the window's date partitions of ``ads_enriched`` (``sql/final/select_ads_enriched.sql``), plus any
imported date that is missing or out of step (``sql/final/select_stale_dates.sql``), then run the table's checks."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from adpipeline.stages.context import StageContext, StageFailed, log, summary
from adpipeline.tables import TABLES
from adpipeline.warehouse import Warehouse


def run(ctx: StageContext) -> dict[str, Any]:
    wh = ctx.warehouse
    wh.ensure_tables([name for name, spec in TABLES.items() if spec.write != "source"])
    names = ctx.source_names()
    # The window's dates, and the dates no run built yet or whose creatives' facts changed since (caught up here).
    stale = [_as_date(d) for d in wh.query_file("final/select_stale_dates", names=names)["date"]]
    dates = sorted(set(ctx.window.days()) | set(stale))
    if set(stale) - set(ctx.window.days()):
        log.info("ads_enriched: %d date(s) outside the window out of step", len(set(stale) - set(ctx.window.days())))
    wh.replace_partitions_from_file("ads_enriched", "final/select_ads_enriched", dates, names=names)
    checks = wh.query_file("checks/check_ads_enriched", names=names).iloc[0].to_dict()
    checks = {k: int(v) for k, v in checks.items()}
    problems = []
    if checks["n_rows"] != checks["n_expected"]:
        problems.append(f"ads_enriched has {checks['n_rows']} rows, source has {checks['n_expected']}")
    if checks["n_duplicate_keys"]:
        problems.append(f"{checks['n_duplicate_keys']} duplicate (ad_id, date) keys")
    if checks["n_unmatched_creatives"]:
        # Not fatal: dates before the first imported window are legitimately not imported yet.
        log.warning("%d ads reference creatives not imported yet", checks["n_unmatched_creatives"])
    if problems:
        raise StageFailed("ads_enriched checks failed: " + "; ".join(problems))
    rebuild_feature_performance(wh, ctx.settings.feature_min_impressions)
    return summary("final", ctx.window, partitions_replaced=len(dates), **checks)


def _as_date(value: Any) -> dt.date:
    """A DATE read back through pandas (``date``, ``Timestamp`` or ``datetime64``) as a ``datetime.date``."""
    return pd.Timestamp(value).date()


def rebuild_feature_performance(wh: Warehouse, min_impressions: int) -> None:
    """Rebuild ``feature_performance`` from ``ads_enriched`` over all dates (the insights page runs the same SQL for a
    date range)."""
    params = {
        "start_date": dt.date(1, 1, 1),
        "end_date": dt.date(9999, 12, 31),
        "min_impressions": min_impressions,
        "feature": "",  # every feature
    }
    wh.rebuild_from_file("feature_performance", "final/select_feature_performance", params=params)
