"""final: make ``ads_enriched`` and the analyses over it (``feature_performance``, ``face_performance``,
``creative_fatigue``, ``feature_effects``) equal a rebuild from the current upstream tables, whatever order the
upstream runs and their asset events came in.

The final DAG runs on every upstream asset event, so it runs often; a watermark keeps that cheap. Each run first reads
a version token of every table it reads (:data:`UPSTREAM_TABLES` and the source table; metadata on BigQuery, a
content hash on DuckDB) and of its outputs, plus a digest of its SQL files and settings, and compares them with the
tokens the last rebuild stored in ``final_watermark``. All equal: nothing changed since, the run ends there. Else it
replaces exactly the ``date`` partitions of ``ads_enriched`` whose rows differ from a rebuild
(:meth:`~adpipeline.warehouse.base.Warehouse.partitions_out_of_step`), checks the table, rebuilds the summary
tables, and stores the tokens: the upstream ones as read *before* the rebuild (a write that lands during the rebuild
shows as a change next time, and that writer's event triggers the next run), the outputs' as read after it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from adpipeline.stages.context import StageContext, StageFailed, log, summary
from adpipeline.tables import TABLES, FinalWatermark
from adpipeline.warehouse import Warehouse
from adpipeline.warehouse.base import MACROS_DIR, sql_path

UPSTREAM_TABLES = (
    "creatives", "media_fetches", "duplicate_groups", "image_hashes", "video_metadata", "image_features",
    "video_features", "face_detections", "face_video_status", "faces", "customer_appearances",
)  # fmt: skip
"""Every table the final SQL reads besides the source table (the watermark's upstream)."""
OUTPUT_TABLES = ("ads_enriched", "feature_performance", "face_performance", "creative_fatigue", "feature_effects")
"""What the final stage writes (their tokens catch another writer, e.g. the faces DAG's own face_performance)."""
RECIPE_FILES = (
    "source/select_source_ads",
    "final/select_candidate_dates",
    "final/select_ads_enriched",
    "final/select_feature_performance",
    "faces/select_face_performance",
    "final/select_creative_fatigue",
    "final/count_effect_cells",
    "final/select_effect_cells",
    "final/select_unit_features",
)
"""SQL files whose text is part of the recipe: an upgrade that changes them rebuilds what they make."""
RECIPE_SETTINGS = (
    "feature_min_impressions", "fatigue_min_drop", "fatigue_min_impressions", "effects_max_cells", "effects_max_values",
)  # fmt: skip
"""Settings the final SQL and the effects model take: a change rebuilds."""
WATERMARK = "final_watermark"


def run(ctx: StageContext) -> dict[str, Any]:
    wh = ctx.warehouse
    wh.ensure_tables([name for name, spec in TABLES.items() if spec.write != "source"])
    names = ctx.source_names()
    # Read before anything else: whatever lands after this is a change for the next run.
    upstream = {**wh.table_versions([*UPSTREAM_TABLES, ctx.settings.source_table]), **_recipe(ctx, names)}
    stored = _read_watermark(wh)
    if stored and _role(stored, "upstream", "recipe") == upstream:
        outputs = wh.table_versions(OUTPUT_TABLES)
        if _role(stored, "output") == outputs:
            log.info("final: no upstream table changed since the last rebuild; nothing to do")
            return summary("final", ctx.window, skipped=True, partitions_replaced=0)
    candidates = [_as_date(d) for d in wh.query_file("final/select_candidate_dates", names=names)["date"]]
    dates = wh.partitions_out_of_step("ads_enriched", "final/select_ads_enriched", candidates, names=names)
    log.info(
        "ads_enriched: %d of %d date partition(s) out of step with the upstream tables", len(dates), len(candidates)
    )
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
    wh.rebuild_from_file("face_performance", "faces/select_face_performance", names=names)
    rebuild_creative_fatigue(wh, ctx.settings.fatigue_min_drop, ctx.settings.fatigue_min_impressions)
    rebuild_feature_effects(
        wh,
        min_impressions=ctx.settings.feature_min_impressions,
        max_cells=ctx.settings.effects_max_cells,
        max_values=ctx.settings.effects_max_values,
    )
    _write_watermark(wh, upstream, wh.table_versions(OUTPUT_TABLES))
    return summary("final", ctx.window, skipped=False, partitions_replaced=len(dates), **checks)


def _as_date(value: Any) -> dt.date:
    """A DATE read back through pandas (``date``, ``Timestamp`` or ``datetime64``) as a ``datetime.date``."""
    return pd.Timestamp(value).date()


def _recipe(ctx: StageContext, names: Mapping[str, str]) -> dict[str, str]:
    """The recipe token: the final SQL files' text, the source mapping and the settings the SQL takes."""
    digest = hashlib.sha256()
    for name in RECIPE_FILES:
        digest.update(sql_path(name).read_bytes())
    for macros in sorted(MACROS_DIR.glob("*.jinja")):  # what the files import
        digest.update(macros.read_bytes())
    digest.update(json.dumps({k: v for k, v in names.items() if k != "source_ads"}, sort_keys=True).encode())
    for setting in RECIPE_SETTINGS:
        digest.update(f"{setting}={getattr(ctx.settings, setting)};".encode())
    return {"recipe": digest.hexdigest()[:32]}


def _read_watermark(wh: Warehouse) -> list[FinalWatermark]:
    frame = wh.read_table(WATERMARK)
    return [FinalWatermark(**record) for record in frame.to_dict("records")]


def _role(rows: list[FinalWatermark], *roles: str) -> dict[str, str]:
    return {row.table_name: row.version for row in rows if row.role in roles}


def _write_watermark(wh: Warehouse, upstream: Mapping[str, str], outputs: Mapping[str, str]) -> None:
    rows = [
        FinalWatermark(table_name=name, role="recipe" if name == "recipe" else "upstream", version=version)
        for name, version in upstream.items()
    ]
    rows += [FinalWatermark(table_name=name, role="output", version=version) for name, version in outputs.items()]
    # Tables no longer read (an upgrade) must not keep the comparison from matching: replace the whole set.
    with wh.session():
        wh.delete_where(WATERMARK, "TRUE")
        wh.merge_rows(WATERMARK, rows)


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
