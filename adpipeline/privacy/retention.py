"""Retention: the faces that were in no ad for ``face_retention_days`` lose their crops and vectors (ids and counts
stay for the performance tables). The daily ``adp_privacy`` DAG runs it through ``adpipeline.stages.privacy``.
"""

from __future__ import annotations

import datetime as dt

from adpipeline.faces.crops import CROP_PREFIX
from adpipeline.privacy.footprint import Change, bucket_change, crop_keys, resolve, table_change
from adpipeline.privacy.suppression import PrivacyContext, query, tables_exist


def expired_faces(ctx: PrivacyContext) -> list[str]:
    """Faces that still hold a vector and whose videos were in no ad on or after the retention cutoff (the run's
    window end minus ``face_retention_days``; never the wall clock)."""
    days = ctx.settings.face_retention_days
    wh = ctx.warehouse
    if not days or not tables_exist(wh, "faces", "face_detections", "creatives"):
        return []
    cutoff = ctx.window.end - dt.timedelta(days=days)
    frame = query(
        wh,
        "SELECT f.face_id FROM {{ faces }} AS f WHERE ARRAY_LENGTH(f.centroid) > 0 AND NOT EXISTS ("
        "SELECT 1 FROM {{ face_detections }} AS d JOIN {{ creatives }} AS c ON c.creative_id = d.creative_id "
        "WHERE d.face_id = f.face_id AND c.last_seen_date >= @cutoff) ORDER BY f.face_id",
        {"cutoff": cutoff},
    )
    return list(frame["face_id"])


def plan_retention(ctx: PrivacyContext, face_ids: list[str]) -> list[Change]:
    """Crops deleted; track embeddings and face centroids emptied; crop paths cleared. Ids and counts stay, so
    face_performance and ads_enriched keep their history; an emptied face is never compared again."""
    wh = ctx.warehouse
    if not face_ids:
        return []
    fp = resolve(ctx, face_ids=face_ids)
    best = query(wh, "SELECT best_crop_path FROM {{ faces }} WHERE face_id IN UNNEST(@ids)", {"ids": face_ids})
    ids = {"face_ids": face_ids}
    changes = [
        bucket_change(ctx, CROP_PREFIX, crop_keys(ctx, fp.tracks, list(best["best_crop_path"]))),
        table_change(
            wh,
            "face_performance",
            "face_id IN UNNEST(@face_ids) AND best_crop_path IS NOT NULL",
            ids,
            set_sql="best_crop_path = NULL",
        ),
        table_change(
            wh,
            "faces",
            "face_id IN UNNEST(@face_ids) AND (ARRAY_LENGTH(centroid) > 0 OR best_crop_path IS NOT NULL)",
            ids,
            set_sql="centroid = [], best_crop_path = NULL",
        ),
        table_change(
            wh,
            "face_detections",
            "face_id IN UNNEST(@face_ids) AND (ARRAY_LENGTH(embedding) > 0 OR crop_path IS NOT NULL)",
            ids,
            set_sql="embedding = [], crop_path = NULL",
        ),
    ]
    return [c for c in changes if c is not None]
