"""The stage functions in the order the DAG chain runs them, for running without a scheduler (tests, ``--direct``).

In the DAGs the ``plan`` tasks split the pending work into chunks for mapped tasks; run directly, each stage
function takes all pending work at once (``chunk`` is None), which gives the same rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from adpipeline.settings import Settings
from adpipeline.stages import faces, features, final, gallery, ingest, media
from adpipeline.stages.context import StageContext
from adpipeline.window import Window

StageFn = Callable[[StageContext], dict[str, Any]]

# (dag_id, task_id, function): the same functions the DAG files call, in dependency order. The gallery match runs
# before the final rebuild, so ads_enriched.customer_ids has the customers an enrolled gallery finds.
CHAIN: list[tuple[str, str, StageFn]] = [
    ("adp_import", "merge_into_creatives", ingest.run),
    ("adp_media", "fetch_and_analyse (fetch)", media.fetch),
    ("adp_media", "fetch_and_analyse (analyse)", media.analyse),
    ("adp_media", "merge_duplicate_groups", media.group),
    ("adp_features", "extract_features (images)", features.images),
    ("adp_features", "extract_features (videos)", features.videos),
    ("adp_feature_batches", "collect_batches", features.batches),
    ("adp_faces", "detect_faces", faces.detect),
    ("adp_faces", "cluster_faces", faces.cluster),
    ("adp_faces", "rebuild_face_performance", faces.performance),
    ("adp_gallery", "enrol_customers", gallery.enrol),
    ("adp_gallery", "match_customers_in_videos", gallery.match),
    ("adp_final", "rebuild_ads_enriched", final.run),
]


def run_direct(
    settings: Settings,
    window: Window,
    run_id: str = "direct",
    on_step: Callable[[str, str, dict[str, Any], float], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every stage for ``window`` in-process, in chain order; ``on_step(dag_id, task_id, result, seconds)`` is
    called after each step (progress output)."""
    results = []
    with StageContext(settings, window, run_id=run_id) as ctx:
        for dag_id, task_id, fn in CHAIN:
            started = time.monotonic()
            result = fn(ctx)
            results.append(result)
            if on_step is not None:
                on_step(dag_id, task_id, result, time.monotonic() - started)
    return results


NOT_IN_CHAIN = {
    "adp_privacy": "daily retention and suppression enforcement (trigger it, or run `adpipeline forget`)",
    "adp_forget_person": "manual: `adpipeline forget`",
    "adp_face_verify": "manual: `adpipeline verify`",
}
"""The DAGs ``adpipeline run`` does not cover, and what to use instead."""


def covered_dags() -> list[str]:
    """The DAG ids the chain covers, in order."""
    return list(dict.fromkeys(dag_id for dag_id, _, _ in CHAIN))
