"""The audit trail: who asked (:func:`cli_user`, :func:`airflow_trigger`), what a request did
(:class:`PrivacyResult`) and its row in ``privacy_requests`` (:func:`write_audit`; no biometric data, no plain ids).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from dataclasses import dataclass
from typing import Any

from adpipeline.privacy.footprint import Change
from adpipeline.privacy.suppression import PRIVACY_TABLES, PrivacyContext, subject_digest
from adpipeline.tables import PrivacyRequest


def cli_user() -> str:
    """Who triggered a CLI request: the OS user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid {os.getuid()}"


def airflow_trigger(user: str | None, run_id: str | None) -> str:
    """Who triggered a DAG request: Airflow's triggering user and the run id."""
    return f"airflow:{user or 'unknown user'} run {run_id or '?'}"


@dataclass
class PrivacyResult:
    """What a request did (or, for a dry run, would do)."""

    request_id: str
    action: str
    dry_run: bool
    changes: list[Change]
    note: str | None = None
    suppressions: int = 0

    @property
    def counts(self) -> dict[str, int]:
        """``"table:faces (delete)" -> n``: the figures the audit row holds."""
        counts = {f"{c.target} ({c.action})": c.count for c in self.changes}
        if len(counts) != len(self.changes):
            raise ValueError(f"two changes share a label: {[c.as_dict() for c in self.changes]}")
        return counts

    def as_summary(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "action": self.action,
            "dry_run": self.dry_run,
            "counts": self.counts,
            "note": self.note,
            "suppressions": self.suppressions,
        }


def write_audit(
    ctx: PrivacyContext,
    result: PrivacyResult,
    *,
    status: str,
    triggered_by: str,
    subject: tuple[str, str] | None,
    requested_at: dt.datetime,
    finished: bool,
) -> None:
    """Write (or update: keyed by request id) the request's audit row."""
    ctx.warehouse.ensure_tables(PRIVACY_TABLES)
    ctx.warehouse.merge_rows(
        "privacy_requests",
        [
            PrivacyRequest(
                request_id=result.request_id,
                action=result.action,
                subject_kind=subject[0] if subject else None,
                subject_digest=subject_digest(*subject) if subject else None,
                dry_run=result.dry_run,
                status=status,
                triggered_by=triggered_by,
                run_id=ctx.run_id,
                requested_at=requested_at,
                finished_at=dt.datetime.now(dt.UTC) if finished else None,
                counts_json=json.dumps([c.as_dict() for c in result.changes]),
                note=result.note,
            )
        ],
    )
