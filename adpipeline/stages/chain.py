"""The stage functions in the order the DAG chain runs them, for running without a scheduler (tests, ``--direct``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adpipeline.settings import Settings
from adpipeline.stages import faces, features, final, ingest, media
from adpipeline.stages.context import StageContext
from adpipeline.window import Window

StageFn = Callable[[StageContext], dict[str, Any]]

# (dag_id, task_id, function): the same functions the DAG files call, in dependency order.
CHAIN: list[tuple[str, str, StageFn]] = [
    ("adp_import", "merge_into_creatives", ingest.run),
    ("adp_media", "fetch_media", media.fetch),
    ("adp_media", "analyse_media", media.analyse),
    ("adp_media", "merge_duplicate_groups", media.group),
    ("adp_features", "extract_image_features", features.images),
    ("adp_features", "extract_video_features", features.videos),
    ("adp_features", "collect_batches", features.batches),
    ("adp_faces", "detect_and_cluster_faces", faces.detect),
    ("adp_faces", "rebuild_face_performance", faces.performance),
    ("adp_final", "rebuild_ads_enriched", final.run),
]


def run_direct(settings: Settings, window: Window, run_id: str = "direct") -> list[dict[str, Any]]:
    """Run every stage for ``window`` in-process, in chain order."""
    results = []
    with StageContext(settings, window, run_id=run_id) as ctx:
        for _dag_id, _task_id, fn in CHAIN:
            results.append(fn(ctx))
    return results
