"""final: replace the window's date partitions of ``ads_enriched`` (``sql/final/select_ads_enriched.sql``), plus any
imported date that is missing or out of step (``sql/final/select_stale_dates.sql``), then run the table's checks and
rebuild the analyses over it (``feature_performance``, ``creative_fatigue``, ``feature_effects``)."""

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
    rebuild_creative_fatigue(wh, ctx.settings.fatigue_min_drop, ctx.settings.fatigue_min_impressions)
    rebuild_feature_effects(
        wh,
        min_impressions=ctx.settings.feature_min_impressions,
        max_cells=ctx.settings.effects_max_cells,
        max_values=ctx.settings.effects_max_values,
    )
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


def rebuild_creative_fatigue(wh: Warehouse, min_drop: float, min_impressions: int) -> None:
    """Rebuild ``creative_fatigue`` from ``ads_enriched`` over all dates, in the warehouse's SQL."""
    params = {"min_drop": float(min_drop), "min_impressions": int(min_impressions)}
    wh.rebuild_from_file("creative_fatigue", "final/select_creative_fatigue", params=params)


def rebuild_feature_effects(wh: Warehouse, *, min_impressions: int, max_cells: int, max_values: int) -> None:
    """Rebuild ``feature_effects``: the adjusted model over the cells the warehouse aggregates (after
    ``feature_performance``, whose unadjusted lift it carries beside its own)."""
    from adpipeline.insights.effects import fit_feature_effects

    rows = fit_feature_effects(wh, min_impressions=min_impressions, max_cells=max_cells, max_values=max_values)
    wh.replace_rows("feature_effects", rows)
