"""What a person is made of, and the lines of a plan: :class:`Footprint` (the ids a request resolved to),
:func:`resolve`, :class:`Change` (one table or bucket prefix, with its count) and the helpers that build changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from adpipeline.faces.crops import crop_key
from adpipeline.privacy.suppression import PrivacyContext, query, tables_exist
from adpipeline.warehouse.base import Warehouse

TRACK_COLUMNS = [
    "track_id",
    "creative_id",
    "first_time_s",
    "last_time_s",
    "backend",
    "model_id",
    "crop_path",
    "video_sha256",
]


@dataclass
class Footprint:
    """Everything a request resolved to (ids only; never vectors)."""

    customer_ids: list[str] = field(default_factory=list)
    face_ids: list[str] = field(default_factory=list)
    tracks: pd.DataFrame = field(default_factory=pd.DataFrame)
    """track_id, creative_id, first_time_s, last_time_s, backend, model_id, crop_path, video_sha256"""
    matched_customers: list[str] = field(default_factory=list)
    """Customers matched to a forgotten face (reported, not deleted, when the request named a face)."""

    @property
    def track_ids(self) -> list[str]:
        return sorted(self.tracks["track_id"]) if not self.tracks.empty else []

    @property
    def empty(self) -> bool:
        return not (self.customer_ids or self.face_ids or self.track_ids)


@dataclass
class Change:
    """One line of a plan: a table (DML) or a bucket prefix (object deletes/rewrites), with its count."""

    target: str
    action: Literal["delete", "update", "rewrite", "report"]
    count: int
    table: str | None = None
    condition: str | None = None
    set_sql: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    bucket: Any = None
    rewrites: dict[str, bytes | None] = field(default_factory=dict)
    """rewrite: key -> new bytes (None: delete the object)."""
    rows: list[Any] = field(default_factory=list)
    """update by MERGE: the changed rows (``table`` from ``target``)."""

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "action": self.action, "count": self.count}


def resolve(ctx: PrivacyContext, *, customer_ids: Sequence[str] = (), face_ids: Sequence[str] = ()) -> Footprint:
    """The person's ids: the named customers and faces, the faces matched to those customers, and their tracks."""
    wh = ctx.warehouse
    customers = sorted(set(customer_ids))
    faces = set(face_ids)
    matched: set[str] = set()
    track_ids: set[str] = set()
    if tables_exist(wh, "customer_appearances"):
        if customers:
            got = query(
                wh,
                "SELECT face_id, track_ids FROM {{ customer_appearances }} WHERE customer_id IN UNNEST(@ids)",
                {"ids": customers},
            )
            faces |= {f for f in got["face_id"] if isinstance(f, str) and f}  # '' = tracks not clustered yet
            track_ids |= {t for ids in got["track_ids"] for t in list(ids)}
        if faces:
            got = query(
                wh,
                "SELECT DISTINCT customer_id FROM {{ customer_appearances }} WHERE face_id IN UNNEST(@ids)",
                {"ids": sorted(faces)},
            )
            matched = set(got["customer_id"]) - set(customers)
    tracks = pd.DataFrame(columns=TRACK_COLUMNS)
    if (faces or track_ids) and tables_exist(wh, "face_detections"):
        join = tables_exist(wh, "media_fetches")
        sha = "m.sha256" if join else "CAST(NULL AS STRING)"
        from_media = "LEFT JOIN {{ media_fetches }} AS m ON m.creative_id = d.creative_id" if join else ""
        tracks = query(
            wh,
            "SELECT d.track_id, d.creative_id, d.first_time_s, d.last_time_s, d.backend, d.model_id, d.crop_path, "
            f"{sha} AS video_sha256 FROM {{{{ face_detections }}}} AS d {from_media} "
            "WHERE d.face_id IN UNNEST(@ids) OR d.track_id IN UNNEST(@tracks) ORDER BY d.track_id",
            {"ids": sorted(faces), "tracks": sorted(track_ids)},
        )
    return Footprint(customers, sorted(faces), tracks, sorted(matched))


# --- building the lines of a plan -----------------------------------------------------------------
def count_rows(wh: Warehouse, table: str, condition: str, params: dict[str, Any]) -> int:
    """Rows of ``table`` matching ``condition`` (0 when the table does not exist)."""
    if not wh.table_exists(table):
        return 0
    frame = query(wh, f"SELECT COUNT(*) AS n FROM {{{{ {table} }}}} WHERE {condition}", params)
    return int(frame.iloc[0]["n"])


def table_change(
    wh: Warehouse,
    table: str,
    condition: str,
    params: dict[str, Any],
    set_sql: str | None = None,
    column: str | None = None,
) -> Change | None:
    """A DELETE (or, with ``set_sql``, an UPDATE) of the rows matching ``condition``; None when the table does not
    exist or every list parameter is empty."""
    lists = [v for v in params.values() if isinstance(v, list)]
    if not wh.table_exists(table) or (lists and not any(lists)):
        return None
    return Change(
        target=f"table:{table}[{column}]" if column else f"table:{table}",
        action="update" if set_sql else "delete",
        count=count_rows(wh, table, condition, params),
        table=table,
        condition=condition,
        set_sql=set_sql,
        params=params,
    )


def bucket_change(ctx: PrivacyContext, target: str, keys: list[str]) -> Change:
    """Deleting ``keys`` from the task's bucket, labelled by their prefix ``target``."""
    return Change(target=f"bucket:{target}", action="delete", count=len(keys), keys=keys, bucket=ctx.bucket)


def crop_keys(ctx: PrivacyContext, tracks: pd.DataFrame, extra_paths: Sequence[str] = ()) -> list[str]:
    """Bucket keys of the tracks' crops that exist (the key from the stored path, else the track's default key)."""
    keys = set()
    for record in tracks.itertuples(index=False):
        keys.add(crop_key(record.track_id))
        if isinstance(record.crop_path, str):
            keys.add(_key_of(ctx, record.crop_path))
    keys |= {_key_of(ctx, p) for p in extra_paths if isinstance(p, str)}
    return sorted(k for k in keys if k and ctx.bucket.exists(k))


def _key_of(ctx: PrivacyContext, path: str) -> str:
    return ctx.bucket.key_of(path) or ""
