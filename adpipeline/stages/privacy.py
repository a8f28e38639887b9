"""privacy: the DAG-facing privacy tasks (``adp_forget_person``, ``adp_privacy``) and ``adpipeline forget``.

:func:`forget_person` resolves a customer id or a face id to everything that holds that person (their unique faces,
tracks, crops, gallery vectors, appearances, verifications, output copies and JSON records), lists it by table and
bucket prefix with counts (the dry run stops there), writes the suppression rows that stop the pipeline from
recreating the person, deletes with DML (bucket objects first, the tracks last, so a retry still finds what is left),
checks that nothing matches any more, rewrites the DuckDB file when that backend is used, and writes one audit row
(``privacy_requests``).

:func:`retention` (daily, ``adp_privacy``) removes the crops and vectors of faces that were in no ad for
``face_retention_days``; :func:`enforce` (same DAG) deletes anything that matches an active suppression, a backstop
for a detection or clustering task that ran while a forget did. The work is done by the ``adpipeline.privacy``
package (which never imports the stages); see adpipeline/faces/README.md, "Privacy".
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from adpipeline.privacy.apply import run_plan, suppression_rows
from adpipeline.privacy.audit import PrivacyResult, cli_user
from adpipeline.privacy.footprint import Footprint, resolve, table_change
from adpipeline.privacy.plan import ROOT_TABLES, customer_photos, plan_forget
from adpipeline.privacy.retention import expired_faces, plan_retention
from adpipeline.privacy.suppression import (
    PRIVACY_TABLES,
    drop_forgotten_tracks,
    query,
    subject_digest,
    suppressed_digests,
)
from adpipeline.stages.context import StageContext, summary

SubjectKind = Literal["customer_id", "face_id"]


def forget_person(
    ctx: StageContext,
    *,
    customer_id: str | None = None,
    face_id: str | None = None,
    dry_run: bool = False,
    withdraw: bool = False,
    triggered_by: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """Forget one person (a customer id or a face id) everywhere; ``dry_run`` only lists what would go;
    ``withdraw`` lifts the suppressions of earlier requests for that id instead. Returns the summary the DAG task
    and the CLI print; the same figures are in the audit row."""
    if bool(customer_id) == bool(face_id):
        from adpipeline.errors import ConfigurationError

        raise ConfigurationError("name exactly one of customer_id and face_id")
    kind: SubjectKind = "customer_id" if customer_id else "face_id"
    value = str(customer_id or face_id)
    who = triggered_by or cli_user()
    rid = request_id or f"{'withdraw' if withdraw else 'forget'}_{uuid.uuid4().hex[:16]}"
    ctx.warehouse.ensure_tables(PRIVACY_TABLES)
    if withdraw:
        return _withdraw(ctx, kind, value, dry_run=dry_run, triggered_by=who, request_id=rid)
    fp = resolve(ctx, customer_ids=[value] if customer_id else [], face_ids=[value] if face_id else [])
    changes = plan_forget(ctx, fp)
    note = _source_note(ctx, fp)
    photos = [p for p in customer_photos(ctx.warehouse, fp.customer_ids)["sha256"] if isinstance(p, str)]
    result = PrivacyResult(rid, "forget", dry_run, changes, note=note)
    run_plan(ctx, result, triggered_by=who, subject=(kind, value), suppressions=suppression_rows(rid, fp, photos))
    return summary("privacy.forget", ctx.window, **result.as_summary())


def _source_note(ctx: StageContext, fp: Footprint) -> str | None:
    """What is reported and never deleted: the customer's own photos in the customer base bucket."""
    notes = []
    base = ctx.settings.gallery_url
    if fp.customer_ids and base:
        from adpipeline.bucket import Bucket
        from adpipeline.faces.gallery import gallery_entries

        entries = gallery_entries(list(Bucket(base).list()))
        n = sum(1 for e in entries if e.customer_id in set(fp.customer_ids))
        notes.append(
            f"{n} photo(s) of this customer remain in the customer base bucket {base}: the customer's own, reported "
            "and not deleted (re-enrolment skips them while the request stands)"
        )
    if fp.matched_customers:
        notes.append(
            f"{len(fp.matched_customers)} enrolled customer(s) were matched to this face; their enrolment is kept "
            "(forget them by customer id to remove it)"
        )
    return "; ".join(notes) or None


def _withdraw(
    ctx: StageContext, kind: SubjectKind, value: str, *, dry_run: bool, triggered_by: str, request_id: str
) -> dict[str, Any]:
    """Lift the suppressions of every earlier forget of this id. Deleted data does not come back by itself: it is
    recreated when its source is processed again (the customer's photos at the next enrolment; videos when they are
    analysed again)."""
    wh = ctx.warehouse
    requests = query(
        wh,
        "SELECT request_id FROM {{ privacy_requests }} WHERE action = 'forget' AND NOT dry_run "
        "AND subject_kind = @kind AND subject_digest = @digest",
        {"kind": kind, "digest": subject_digest(kind, value)},
    )
    ids = sorted(requests["request_id"])
    change = table_change(wh, "privacy_suppressions", "request_id IN UNNEST(@ids)", {"ids": ids})
    result = PrivacyResult(request_id, "withdraw", dry_run, [change] if change else [])
    run_plan(ctx, result, triggered_by=triggered_by, subject=(kind, value))
    return summary("privacy.withdraw", ctx.window, **result.as_summary())


# --- scheduled: enforcement and retention ---------------------------------------------------------
def enforce(ctx: StageContext, *, triggered_by: str | None = None) -> dict[str, Any]:
    """Delete whatever matches an active suppression (a face or customer id that came back, unassigned tracks in a
    forgotten segment): the daily backstop for a task that wrote while a forget ran. Audited when it finds any."""
    wh = ctx.warehouse
    wh.ensure_tables(PRIVACY_TABLES)
    dropped = drop_forgotten_tracks(ctx)  # noqa: F841 - counted in the log line
    face_digests = suppressed_digests(wh, "face")
    faces = []
    if face_digests and wh.table_exists("faces"):
        faces = [
            f
            for f in query(wh, "SELECT face_id FROM {{ faces }}")["face_id"]
            if subject_digest("face_id", f) in face_digests
        ]
    customers = _customers_back(ctx)
    fp = resolve(ctx, customer_ids=customers, face_ids=faces)
    if fp.empty:
        return summary("privacy.enforce", ctx.window, found=0)
    rid = f"enforce_{uuid.uuid4().hex[:16]}"
    result = PrivacyResult(rid, "enforce", False, plan_forget(ctx, fp))
    run_plan(ctx, result, triggered_by=triggered_by or cli_user(), subject=None, suppressions=suppression_rows(rid, fp))
    return summary("privacy.enforce", ctx.window, found=len(fp.face_ids) + len(fp.customer_ids), **result.counts)


def _customers_back(ctx: StageContext) -> list[str]:
    """Suppressed customers that hold rows again (identity tables), found without their plain ids."""
    wh = ctx.warehouse
    digests = suppressed_digests(wh, "customer")
    found: set[str] = set()
    for table in ROOT_TABLES:
        if digests and wh.table_exists(table):
            ids = query(wh, f"SELECT DISTINCT customer_id FROM {{{{ {table} }}}}")["customer_id"]
            found |= {c for c in ids if subject_digest("customer_id", c) in digests}
    return sorted(found)


def retention(ctx: StageContext, *, dry_run: bool = False, triggered_by: str | None = None) -> dict[str, Any]:
    """Remove the crops and vectors of faces in no ad for ``face_retention_days`` (scheduled daily; audited)."""
    ctx.warehouse.ensure_tables(PRIVACY_TABLES)
    faces = expired_faces(ctx)
    rid = f"retention_{uuid.uuid4().hex[:16]}"
    result = PrivacyResult(
        rid,
        "retention",
        dry_run,
        plan_retention(ctx, faces),
        note=f"cutoff {ctx.window.end - dt.timedelta(days=ctx.settings.face_retention_days)}"
        if ctx.settings.face_retention_days
        else "retention off (face_retention_days = 0)",
    )
    run_plan(ctx, result, triggered_by=triggered_by or cli_user(), subject=None)
    return summary("privacy.retention", ctx.window, faces=len(faces), **result.as_summary())
