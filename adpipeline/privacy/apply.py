"""Applying a plan: the audit row (started), the suppression rows, each change in order with a check that nothing
matches any more, the storage rewrite (:func:`compact`), the audit row (done). A dry run writes only the audit row.
A retry of a request that stopped half-way finds what is left (bucket objects go first, the tracks last).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import pandas as pd

from adpipeline.privacy.audit import PrivacyResult, write_audit
from adpipeline.privacy.footprint import Change, Footprint, count_rows
from adpipeline.privacy.suppression import PrivacyContext, query, subject_digest
from adpipeline.tables import PrivacySuppression

log = logging.getLogger("adpipeline")


def apply_change(ctx: PrivacyContext, change: Change) -> None:
    """Run one change (DML, a MERGE of rewritten rows, or bucket deletes/rewrites) and check that it took."""
    wh = ctx.warehouse
    if change.action == "report" or change.count == 0:
        return
    if change.rows:
        wh.merge_rows(change.target.split(":", 1)[1], change.rows)
        return
    if change.table is not None:
        assert change.condition is not None
        if change.set_sql:
            wh.query(f"UPDATE {{{{ {change.table} }}}} SET {change.set_sql} WHERE {change.condition}", change.params)
        else:
            wh.delete_where(change.table, change.condition, change.params)
        left = count_rows(wh, change.table, change.condition, change.params)
        if left:
            raise RuntimeError(f"privacy: {left} rows of {change.table} still match after the {change.action}")
        return
    for key in change.keys:
        if change.action == "rewrite" and change.rewrites.get(key) is not None:
            change.bucket.put_bytes(key, change.rewrites[key])
        else:
            change.bucket.delete(key)
        if change.action == "delete" and change.bucket.exists(key):
            raise RuntimeError(f"privacy: bucket object {key} still exists after the delete")


def run_plan(
    ctx: PrivacyContext,
    result: PrivacyResult,
    *,
    triggered_by: str,
    subject: tuple[str, str] | None,
    suppressions: Sequence[PrivacySuppression] = (),
) -> PrivacyResult:
    """Audit row (started), suppressions, the changes in order, compaction, audit row (done); a dry run only lists."""
    requested_at = dt.datetime.now(dt.UTC)
    earlier = query(
        ctx.warehouse,
        "SELECT requested_at FROM {{ privacy_requests }} WHERE request_id = @r AND status = 'started'",
        {"r": result.request_id},
    )
    if len(earlier):  # a retry of a task that stopped half-way: this attempt counts what was left
        requested_at = pd.Timestamp(earlier.iloc[0]["requested_at"]).to_pydatetime()
        result.note = "; ".join(n for n in (result.note, "retry: counts are what the earlier attempt left") if n)
    if result.dry_run:
        write_audit(
            ctx,
            result,
            status="listed",
            triggered_by=triggered_by,
            subject=subject,
            requested_at=requested_at,
            finished=True,
        )
        return result
    write_audit(
        ctx,
        result,
        status="started",
        triggered_by=triggered_by,
        subject=subject,
        requested_at=requested_at,
        finished=False,
    )
    if suppressions:
        # Written before anything is deleted: a detection or clustering task that starts from now on skips the person.
        ctx.warehouse.merge_rows("privacy_suppressions", list(suppressions))
        result.suppressions = len(suppressions)
    for change in result.changes:
        apply_change(ctx, change)
    if any(c.count for c in result.changes if c.action != "report"):
        compact(ctx)
    write_audit(
        ctx, result, status="done", triggered_by=triggered_by, subject=subject, requested_at=requested_at, finished=True
    )
    log.info("privacy %s %s: %s", result.action, result.request_id, result.counts)
    return result


def suppression_rows(request_id: str, fp: Footprint, photo_sha256s: Sequence[str] = ()) -> list[PrivacySuppression]:
    """The rows that keep ``fp`` from coming back: digests of its customers, faces, source photos and tracks (a
    track row also names its video and the seconds the person was on screen)."""
    now = dt.datetime.now(dt.UTC)
    rows = [
        PrivacySuppression(
            request_id=request_id, kind="customer", digest=subject_digest("customer_id", c), created_at=now
        )
        for c in fp.customer_ids
    ]
    rows += [
        PrivacySuppression(request_id=request_id, kind="face", digest=subject_digest("face_id", f), created_at=now)
        for f in fp.face_ids
    ]
    rows += [
        PrivacySuppression(request_id=request_id, kind="photo", digest=subject_digest("photo", s), created_at=now)
        for s in photo_sha256s
    ]
    for t in fp.tracks.itertuples(index=False):
        rows.append(
            PrivacySuppression(
                request_id=request_id,
                kind="track",
                digest=subject_digest("track_id", t.track_id),
                creative_id=t.creative_id,
                video_sha256=t.video_sha256 if isinstance(t.video_sha256, str) else None,
                start_s=float(t.first_time_s),
                end_s=float(t.last_time_s),
                backend=t.backend,
                model_id=t.model_id,
                created_at=now,
            )
        )
    return rows


def compact(ctx: PrivacyContext) -> bool:
    """Rewrite the warehouse's storage so deleted rows leave no bytes behind (``privacy_compact_duckdb``; see
    ``Warehouse.compact``: DuckDB rewrites its file, BigQuery needs nothing). Whether anything was rewritten."""
    if not ctx.settings.privacy_compact_duckdb:
        return False
    return ctx.warehouse.compact()
