"""final: rebuild ``ads_enriched`` from ``sql/final/select_ads_enriched.sql`` and run its data checks."""

from __future__ import annotations

import datetime as dt
from typing import Any

from adpipeline.stages.context import StageContext, StageFailed, log, summary
from adpipeline.tables import TABLES
from adpipeline.warehouse import Warehouse


def run(ctx: StageContext) -> dict[str, Any]:
    wh = ctx.warehouse
    wh.ensure_tables([name for name, spec in TABLES.items() if spec.write != "source"])
    names = ctx.source_names()
    wh.rebuild_from_file("ads_enriched", "final/select_ads_enriched", names=names)
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
    return summary("final", ctx.window, **checks)


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
