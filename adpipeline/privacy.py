"""Privacy: forget one person everywhere, keep them forgotten, and retire old face data.

One function, :func:`forget_person`, sits behind the ``adp_forget_person`` DAG and ``adpipeline forget``. It resolves a
customer id or a face id to everything that holds that person (their unique faces, tracks, crops, gallery vectors,
appearances, verifications, output copies and JSON records), lists it by table and bucket prefix with counts (the dry
run stops there), writes the suppression rows that stop the pipeline from recreating the person, deletes with DML
(bucket objects first, the tracks last, so a retry still finds what is left), checks that nothing matches any more,
rewrites the DuckDB file when that backend is used, and writes one audit row (``privacy_requests``).

:func:`retention` (daily, ``adp_privacy``) removes the crops and vectors of faces that were in no ad for
``face_retention_days``; :func:`enforce` (same DAG) deletes anything that matches an active suppression, a backstop
for a detection or clustering task that ran while a forget did. See adpipeline/faces/README.md, "Privacy".
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pandas as pd

from adpipeline.stages.context import StageContext, summary
from adpipeline.tables import PrivacyRequest, PrivacySuppression
from adpipeline.warehouse.base import Warehouse

log = logging.getLogger("adpipeline")

PRIVACY_TABLES = ["privacy_requests", "privacy_suppressions"]
SubjectKind = Literal["customer_id", "face_id"]
_SALT = "adpipeline-privacy"
CROP_PREFIX = "faces/crops/"
_KEPT_FACES = "ARRAY(SELECT x FROM UNNEST(face_ids) AS x WHERE x NOT IN UNNEST(@face_ids) ORDER BY x)"


def subject_digest(kind: str, value: str) -> str:
    """The salted sha256 the audit and suppression tables hold instead of an id (or a photo's sha256). Whoever holds
    the id can compute it to check a request; the tables alone name nobody."""
    return hashlib.sha256(f"{_SALT}:{kind}:{value}".encode()).hexdigest()


def cli_user() -> str:
    """Who triggered a CLI request: the OS user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid {os.getuid()}"


def airflow_trigger(user: str | None, run_id: str | None) -> str:
    """Who triggered a DAG request: Airflow's triggering user and the run id."""
    return f"airflow:{user or 'unknown user'} run {run_id or '?'}"


# --- what a person is made of -------------------------------------------------------------------
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


def _query(wh: Warehouse, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    return wh.query(sql, params or {})


def _exists(wh: Warehouse, *tables: str) -> bool:
    return all(wh.table_exists(t) for t in tables)


def resolve(ctx: StageContext, *, customer_ids: Sequence[str] = (), face_ids: Sequence[str] = ()) -> Footprint:
    """The person's ids: the named customers and faces, the faces matched to those customers, and their tracks."""
    wh = ctx.warehouse
    customers = sorted(set(customer_ids))
    faces = set(face_ids)
    matched: set[str] = set()
    track_ids: set[str] = set()
    if _exists(wh, "customer_appearances"):
        if customers:
            got = _query(
                wh,
                "SELECT face_id, track_ids FROM {{ customer_appearances }} WHERE customer_id IN UNNEST(@ids)",
                {"ids": customers},
            )
            faces |= {f for f in got["face_id"] if isinstance(f, str) and f}  # '' = tracks not clustered yet
            track_ids |= {t for ids in got["track_ids"] for t in list(ids)}
        if faces:
            got = _query(
                wh,
                "SELECT DISTINCT customer_id FROM {{ customer_appearances }} WHERE face_id IN UNNEST(@ids)",
                {"ids": sorted(faces)},
            )
            matched = set(got["customer_id"]) - set(customers)
    tracks = pd.DataFrame(
        columns=[
            "track_id",
            "creative_id",
            "first_time_s",
            "last_time_s",
            "backend",
            "model_id",
            "crop_path",
            "video_sha256",
        ]
    )
    if (faces or track_ids) and _exists(wh, "face_detections"):
        join = _exists(wh, "media_fetches")
        sha = "m.sha256" if join else "CAST(NULL AS STRING)"
        from_media = "LEFT JOIN {{ media_fetches }} AS m ON m.creative_id = d.creative_id" if join else ""
        tracks = _query(
            wh,
            "SELECT d.track_id, d.creative_id, d.first_time_s, d.last_time_s, d.backend, d.model_id, d.crop_path, "
            f"{sha} AS video_sha256 FROM {{{{ face_detections }}}} AS d {from_media} "
            "WHERE d.face_id IN UNNEST(@ids) OR d.track_id IN UNNEST(@tracks) ORDER BY d.track_id",
            {"ids": sorted(faces), "tracks": sorted(track_ids)},
        )
    return Footprint(customers, sorted(faces), tracks, sorted(matched))


# --- the plan: what goes, by table and bucket prefix ----------------------------------------------
def _count(wh: Warehouse, table: str, condition: str, params: dict[str, Any]) -> int:
    if not wh.table_exists(table):
        return 0
    frame = _query(wh, f"SELECT COUNT(*) AS n FROM {{{{ {table} }}}} WHERE {condition}", params)
    return int(frame.iloc[0]["n"])


def _table_change(
    wh: Warehouse,
    table: str,
    condition: str,
    params: dict[str, Any],
    set_sql: str | None = None,
    column: str | None = None,
) -> Change | None:
    lists = [v for v in params.values() if isinstance(v, list)]
    if not wh.table_exists(table) or (lists and not any(lists)):
        return None
    return Change(
        target=f"table:{table}[{column}]" if column else f"table:{table}",
        action="update" if set_sql else "delete",
        count=_count(wh, table, condition, params),
        table=table,
        condition=condition,
        set_sql=set_sql,
        params=params,
    )


def _crop_keys(ctx: StageContext, tracks: pd.DataFrame, extra_paths: Sequence[str] = ()) -> list[str]:
    """Bucket keys of the tracks' crops that exist (the key from the stored path, else the track's default key)."""
    from adpipeline.stages.faces import crop_key

    keys = set()
    for record in tracks.itertuples(index=False):
        keys.add(crop_key(record.track_id))
        if isinstance(record.crop_path, str):
            keys.add(_key_of(ctx, record.crop_path))
    keys |= {_key_of(ctx, p) for p in extra_paths if isinstance(p, str)}
    return sorted(k for k in keys if k and ctx.bucket.exists(k))


def _key_of(ctx: StageContext, path: str) -> str:
    return ctx.bucket.key_of(path) or ""


def _bucket_change(ctx: StageContext, target: str, keys: list[str]) -> Change:
    return Change(target=f"bucket:{target}", action="delete", count=len(keys), keys=keys, bucket=ctx.bucket)


def plan_forget(ctx: StageContext, fp: Footprint) -> list[Change]:
    """Every change that forgetting ``fp`` makes, in the order they run: bucket objects, derived tables, then the
    faces and their tracks (the rows everything else is found from, so a retry after a crash finds what is left)."""
    wh = ctx.warehouse
    faces, tracks = fp.face_ids, fp.track_ids
    changes: list[Change | None] = []
    best_paths: list[str] = []
    if faces and wh.table_exists("faces"):
        frame = _query(wh, "SELECT best_crop_path FROM {{ faces }} WHERE face_id IN UNNEST(@ids)", {"ids": faces})
        best_paths = [p for p in frame["best_crop_path"] if isinstance(p, str)]
    changes.append(_bucket_change(ctx, CROP_PREFIX, _crop_keys(ctx, fp.tracks, best_paths)))
    identity = _identity_changes(ctx, fp)
    roots = [c for c in identity if c is not None and c.table in _ROOTS]
    changes += [c for c in identity if c not in roots]
    in_faces = {"face_ids": faces}
    changes.append(
        _table_change(
            wh,
            "ads_enriched",
            "EXISTS (SELECT 1 FROM UNNEST(face_ids) AS x WHERE x IN UNNEST(@face_ids))",
            in_faces,
            set_sql=f"face_ids = {_KEPT_FACES}, n_faces = ARRAY_LENGTH({_KEPT_FACES})",
            column="face_ids",
        )
    )
    changes.append(_table_change(wh, "face_performance", "face_id IN UNNEST(@face_ids)", in_faces))
    # feature_performance (rebuilt by adp_final) names faces and customers as feature values.
    changes.append(
        _table_change(
            wh,
            "feature_performance",
            "(feature = 'face' AND value IN UNNEST(@faces)) OR (feature = 'customer' AND value IN UNNEST(@customers))",
            {"faces": faces, "customers": list(fp.customer_ids)},
        )
    )
    # feature_effects (rebuilt by adp_final) too.
    changes.append(
        _table_change(
            wh,
            "feature_effects",
            "(feature = 'face' AND value IN UNNEST(@faces)) OR (feature = 'customer' AND value IN UNNEST(@customers))",
            {"faces": faces, "customers": list(fp.customer_ids)},
        )
    )
    changes.append(_table_change(wh, "faces", "face_id IN UNNEST(@face_ids)", in_faces))
    if tracks:
        changes.append(_table_change(wh, "face_detections", "track_id IN UNNEST(@track_ids)", {"track_ids": tracks}))
    changes += roots
    return [c for c in changes if c is not None]


_ROOTS = ("customer_appearances", "gallery", "gallery_photos")
"""The tables a customer's faces and photos are found from: deleted last."""


def _identity_changes(ctx: StageContext, fp: Footprint) -> list[Change | None]:
    """Gallery photos' vectors and templates, appearances, verifications, the output bucket's photo copies and JSON
    records (the face identity tables), where they exist."""
    wh = ctx.warehouse
    customers, faces, tracks = fp.customer_ids, fp.face_ids, fp.track_ids
    out: list[Change | None] = []
    photos = _customer_photos(wh, customers)
    output = _output_bucket(ctx)
    # The output bucket: the customers' photo copies, then the JSON records rewritten without the person.
    copies: set[str] = set()
    for customer in customers:
        copies |= set(output.list(f"customers/{customer}/"))
    if customers and wh.table_exists("customer_appearances"):
        got = _query(
            wh,
            "SELECT copied_photo_urls FROM {{ customer_appearances }} WHERE customer_id IN UNNEST(@ids)",
            {"ids": customers},
        )
        for urls in got["copied_photo_urls"]:
            copies |= {k for k in (_key_in(output, u) for u in list(urls)) if k and output.exists(k)}
    if customers:
        out.append(Change("bucket:output customers/", "delete", len(copies), keys=sorted(copies), bucket=output))
    out += _record_changes(ctx, fp, output)
    verification, verified_images = _verification_change(ctx, fp, photos)
    out.append(_photo_blob_change(ctx, {*photos["sha256"], *verified_images}))
    out.append(verification)
    pairs = _appearance_pairs_gone(wh, fp)
    out.append(
        _table_change(
            wh,
            "ads_enriched",
            f"EXISTS (SELECT 1 FROM UNNEST(customer_ids) AS x WHERE {_GONE_CUSTOMER})",
            {"customers": customers, "pairs": pairs},
            set_sql=f"customer_ids = {_KEPT_CUSTOMERS}, n_customers = ARRAY_LENGTH({_KEPT_CUSTOMERS})",
            column="customer_ids",
        )
        if _has_column(wh, "ads_enriched", "customer_ids")
        else None
    )
    out.append(
        _table_change(
            wh,
            "customer_appearances",
            "customer_id IN UNNEST(@customers) OR face_id IN UNNEST(@faces) OR EXISTS "
            "(SELECT 1 FROM UNNEST(track_ids) AS t WHERE t IN UNNEST(@tracks))",
            {"customers": customers, "faces": faces, "tracks": tracks},
        )
    )
    out.append(_table_change(wh, "gallery", "customer_id IN UNNEST(@ids)", {"ids": customers}))
    out.append(_table_change(wh, "gallery_photos", "customer_id IN UNNEST(@ids)", {"ids": customers}))
    return out


_GONE_CUSTOMER = "(x IN UNNEST(@customers) OR CONCAT(creative_id, '|', x) IN UNNEST(@pairs))"
_KEPT_CUSTOMERS = f"ARRAY(SELECT x FROM UNNEST(customer_ids) AS x WHERE NOT {_GONE_CUSTOMER} ORDER BY x)"


def _has_column(wh: Warehouse, table: str, column: str) -> bool:
    if not wh.table_exists(table):
        return False
    return column in _query(wh, f"SELECT * FROM {{{{ {table} }}}} LIMIT 0").columns


def _customer_photos(wh: Warehouse, customers: list[str]) -> pd.DataFrame:
    """photo_url, sha256 of the customers' gallery photos (every model)."""
    if not customers or not wh.table_exists("gallery_photos"):
        return pd.DataFrame(columns=["photo_url", "sha256"])
    return _query(
        wh,
        "SELECT DISTINCT photo_url, sha256 FROM {{ gallery_photos }} WHERE customer_id IN UNNEST(@ids)",
        {"ids": customers},
    )


def _output_bucket(ctx: StageContext) -> Any:
    from adpipeline.bucket import Bucket

    return Bucket(ctx.settings.gallery_output_url or ctx.bucket.uri("gallery_output"))


def _key_in(bucket: Any, url: str) -> str:
    return bucket.key_of(url) or ""


def _appearance_pairs_gone(wh: Warehouse, fp: Footprint) -> list[str]:
    """``creative|customer`` pairs of appearances that all go with this person (by face or track), so the customer
    leaves that video's row in ads_enriched too, as a rebuild would do."""
    if not (fp.face_ids or fp.track_ids) or not wh.table_exists("customer_appearances"):
        return []
    rows = _query(wh, "SELECT customer_id, creative_id, face_id, track_ids FROM {{ customer_appearances }}")
    faces, tracks = set(fp.face_ids), set(fp.track_ids)
    kept: set[tuple[str, str]] = set()
    gone: set[tuple[str, str]] = set()
    for r in rows.itertuples(index=False):
        pair = (r.creative_id, r.customer_id)
        (gone if r.face_id in faces or tracks & set(list(r.track_ids)) else kept).add(pair)
    return sorted(f"{c}|{x}" for c, x in gone - kept)


def _record_changes(ctx: StageContext, fp: Footprint, output: Any) -> list[Change | None]:
    """The per-video JSON records that mention the person, rewritten without them (a video where nobody remains
    keeps a record with no faces, as the gallery stage writes for such videos), and their rows."""
    wh = ctx.warehouse
    if not wh.table_exists("gallery_video_records") or fp.empty:
        return []
    rows = _query(wh, "SELECT * FROM {{ gallery_video_records }} ORDER BY creative_id")
    creatives = set(fp.tracks["creative_id"]) if not fp.tracks.empty else set()
    customers, faces, tracks = set(fp.customer_ids), set(fp.face_ids), set(fp.track_ids)
    rewrites: dict[str, bytes | None] = {}
    updated = []
    from adpipeline.tables import GalleryVideoRecord
    from adpipeline.warehouse.schema import rows_from_frame

    for row in rows_from_frame(GalleryVideoRecord, rows):
        if row.creative_id not in creatives and not customers & set(row.customer_ids):
            continue
        key = _key_in(output, row.record_url)
        if not key or not output.exists(key):
            continue
        record = json.loads(output.get_bytes(key))
        before = record.get("faces", [])
        after = [
            f
            for f in before
            if f.get("track_id") not in tracks
            and f.get("face_id") not in faces
            and f.get("customer_id") not in customers
        ]
        if len(after) == len(before):
            continue
        record["faces"] = after
        data = json.dumps(record, indent=1, sort_keys=True).encode()  # the gallery stage's format
        rewrites[key] = data
        row.record_sha256 = hashlib.sha256(data).hexdigest()
        row.n_tracks = len(after)
        row.n_matched = sum(1 for f in after if f.get("customer_id"))
        row.customer_ids = sorted({f["customer_id"] for f in after if f.get("customer_id")})
        updated.append(row)
    return [
        Change(
            "bucket:output YYYYMMDD/*.json",
            "rewrite",
            len(rewrites),
            keys=sorted(rewrites),
            bucket=output,
            rewrites=rewrites,
        ),
        Change("table:gallery_video_records", "update", len(updated), table="gallery_video_records", rows=updated),
    ]


def _photo_blob_change(ctx: StageContext, shas: set[Any]) -> Change | None:
    """The person's photos in the media cache (a verification fetched them into ``blobs/sha256/``), unless an ad
    creative has the same bytes."""
    wh = ctx.warehouse
    shas = {x for x in shas if isinstance(x, str) and x}
    if not shas:
        return None
    if wh.table_exists("media_fetches"):
        used = _query(
            wh, "SELECT DISTINCT sha256 FROM {{ media_fetches }} WHERE sha256 IN UNNEST(@s)", {"s": sorted(shas)}
        )
        shas -= set(used["sha256"])
    keys = sorted(k for k in (ctx.bucket.blob_key(x) for x in shas) if ctx.bucket.exists(k))
    return _bucket_change(ctx, "blobs/sha256/", keys)


def _verification_change(ctx: StageContext, fp: Footprint, photos: pd.DataFrame) -> tuple[Change | None, set[str]]:
    """Verifications of the person: their gallery photo (same bytes or URL), or a match inside one of their tracks
    (same video bytes, best frame within the track's seconds). Also returns those verifications' photo hashes."""
    wh = ctx.warehouse
    if not wh.table_exists("face_verifications") or fp.empty:
        return None, set()
    rows = _query(
        wh,
        "SELECT verification_id, image_url, image_sha256, video_sha256, matched, best_frame_time_s "
        "FROM {{ face_verifications }}",
    )
    shas = {s for s in photos["sha256"] if isinstance(s, str)}
    urls = {u for u in photos["photo_url"] if isinstance(u, str)}
    spans: dict[str, list[tuple[float, float]]] = {}
    for t in fp.tracks.itertuples(index=False):
        if isinstance(t.video_sha256, str):
            spans.setdefault(t.video_sha256, []).append((float(t.first_time_s), float(t.last_time_s)))
    tol = 0.5 / ctx.settings.face_sample_fps
    ids, images = [], set()
    for r in rows.itertuples(index=False):
        by_photo = r.image_sha256 in shas or r.image_url in urls
        when = r.best_frame_time_s
        in_track = (
            bool(r.matched)
            and when is not None
            and when == when
            and any(a - tol <= when <= b + tol for a, b in spans.get(r.video_sha256, []))
        )
        if by_photo or in_track:
            ids.append(r.verification_id)
            images.add(r.image_sha256)
    change = _table_change(wh, "face_verifications", "verification_id IN UNNEST(@ids)", {"ids": sorted(ids)})
    return change, images


# --- running a plan -------------------------------------------------------------------------------
def _apply(ctx: StageContext, change: Change) -> None:
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
        left = _count(wh, change.table, change.condition, change.params)
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


def _audit(
    ctx: StageContext,
    result: PrivacyResult,
    *,
    status: str,
    triggered_by: str,
    subject: tuple[str, str] | None,
    requested_at: dt.datetime,
    finished: bool,
) -> None:
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


def _run_plan(
    ctx: StageContext,
    result: PrivacyResult,
    *,
    triggered_by: str,
    subject: tuple[str, str] | None,
    suppressions: Sequence[PrivacySuppression] = (),
) -> PrivacyResult:
    """Audit row (started), suppressions, the changes in order, compaction, audit row (done); a dry run only lists."""
    requested_at = dt.datetime.now(dt.UTC)
    earlier = _query(
        ctx.warehouse,
        "SELECT requested_at FROM {{ privacy_requests }} WHERE request_id = @r AND status = 'started'",
        {"r": result.request_id},
    )
    if len(earlier):  # a retry of a task that stopped half-way: this attempt counts what was left
        requested_at = pd.Timestamp(earlier.iloc[0]["requested_at"]).to_pydatetime()
        result.note = "; ".join(n for n in (result.note, "retry: counts are what the earlier attempt left") if n)
    if result.dry_run:
        _audit(
            ctx,
            result,
            status="listed",
            triggered_by=triggered_by,
            subject=subject,
            requested_at=requested_at,
            finished=True,
        )
        return result
    _audit(
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
        _apply(ctx, change)
    if any(c.count for c in result.changes if c.action != "report"):
        compact(ctx)
    _audit(
        ctx, result, status="done", triggered_by=triggered_by, subject=subject, requested_at=requested_at, finished=True
    )
    log.info("privacy %s %s: %s", result.action, result.request_id, result.counts)
    return result


def _suppressions(request_id: str, fp: Footprint, photo_sha256s: Sequence[str] = ()) -> list[PrivacySuppression]:
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


# --- the public entry points ----------------------------------------------------------------------
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
    photos = [p for p in _customer_photos(ctx.warehouse, fp.customer_ids)["sha256"] if isinstance(p, str)]
    result = PrivacyResult(rid, "forget", dry_run, changes, note=note)
    _run_plan(ctx, result, triggered_by=who, subject=(kind, value), suppressions=_suppressions(rid, fp, photos))
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
    requests = _query(
        wh,
        "SELECT request_id FROM {{ privacy_requests }} WHERE action = 'forget' AND NOT dry_run "
        "AND subject_kind = @kind AND subject_digest = @digest",
        {"kind": kind, "digest": subject_digest(kind, value)},
    )
    ids = sorted(requests["request_id"])
    change = _table_change(wh, "privacy_suppressions", "request_id IN UNNEST(@ids)", {"ids": ids})
    result = PrivacyResult(request_id, "withdraw", dry_run, [change] if change else [])
    _run_plan(ctx, result, triggered_by=triggered_by, subject=(kind, value))
    return summary("privacy.withdraw", ctx.window, **result.as_summary())


# --- keeping them forgotten: the hooks the faces and gallery stages call --------------------------
@dataclass
class ForgottenSegments:
    """Where forgotten people were on screen: video (creative id or sha256 of its bytes) -> [(start_s, end_s)]."""

    spans: dict[str, list[tuple[float, float]]]
    tolerance_s: float

    def matches(self, creative_id: str, video_sha256: str | None, first_s: float, last_s: float) -> bool:
        spans = self.spans.get(creative_id, []) + (self.spans.get(video_sha256, []) if video_sha256 else [])
        tol = self.tolerance_s
        return any(first_s <= end + tol and last_s >= start - tol for start, end in spans)

    def drop_from(self, result: Any, video_sha256: str | None) -> Any:
        """A video's face result without the tracks that overlap a forgotten person's screen time (their crops and
        vectors are then never written)."""
        if not self.spans:
            return result
        kept = [
            t
            for t in result.tracks
            if not self.matches(result.creative_id, video_sha256, t.first_time_s, t.last_time_s)
        ]
        if len(kept) == len(result.tracks):
            return result
        log.info(
            "privacy: %d track(s) of %s dropped (forgotten person)", len(result.tracks) - len(kept), result.creative_id
        )
        return replace(result, tracks=kept)


def forgotten_segments(ctx: StageContext) -> ForgottenSegments:
    """The suppression list's screen-time segments, loaded once per detection task."""
    wh = ctx.warehouse
    wh.ensure_tables(["privacy_suppressions"])
    frame = _query(
        wh,
        "SELECT creative_id, video_sha256, start_s, end_s FROM {{ privacy_suppressions }} "
        "WHERE kind = 'track' AND start_s IS NOT NULL",
    )
    spans: dict[str, list[tuple[float, float]]] = {}
    for r in frame.itertuples(index=False):
        for key in (r.creative_id, r.video_sha256):
            if isinstance(key, str):
                spans.setdefault(key, []).append((float(r.start_s), float(r.end_s)))
    # Half a sample interval: a re-detection samples the same times, a track's ends can move by one sample.
    return ForgottenSegments(spans, 0.5 / ctx.settings.face_sample_fps)


def _suppressed_digests(wh: Warehouse, kind: str) -> set[str]:
    if not wh.table_exists("privacy_suppressions"):
        return set()
    frame = _query(wh, "SELECT DISTINCT digest FROM {{ privacy_suppressions }} WHERE kind = @kind", {"kind": kind})
    return set(frame["digest"])


def forgotten_tracks(ctx: StageContext) -> list[str]:
    """Tracks not placed in a face yet (face_id NULL) that belong to a forgotten person: a suppressed track id, or a
    track overlapping a forgotten segment of the same video (same creative, or the same bytes under another URL)."""
    wh = ctx.warehouse
    if not _exists(wh, "privacy_suppressions", "face_detections"):
        return []
    tol = 0.5 / ctx.settings.face_sample_fps
    media = _exists(wh, "media_fetches")
    join_media = "LEFT JOIN {{ media_fetches }} AS m ON m.creative_id = d.creative_id" if media else ""
    by_sha = "OR (s.video_sha256 IS NOT NULL AND s.video_sha256 = m.sha256)" if media else ""
    frame = _query(
        wh,
        f"SELECT DISTINCT d.track_id FROM {{{{ face_detections }}}} AS d {join_media} "
        "JOIN {{ privacy_suppressions }} AS s "
        f"ON s.kind = 'track' AND (s.creative_id = d.creative_id {by_sha}) "
        "AND d.first_time_s <= s.end_s + @tol AND d.last_time_s >= s.start_s - @tol "
        "WHERE d.face_id IS NULL",
        {"tol": tol},
    )
    found = set(frame["track_id"])
    digests = _suppressed_digests(wh, "track")
    if digests:
        unassigned = _query(wh, "SELECT track_id FROM {{ face_detections }} WHERE face_id IS NULL")
        found |= {t for t in unassigned["track_id"] if subject_digest("track_id", t) in digests}
    return sorted(found)


def drop_forgotten_tracks(ctx: StageContext, frame: pd.DataFrame | None = None) -> pd.DataFrame | None:
    """Clustering hook: delete unassigned tracks of forgotten people (rows and crops) and return ``frame`` (the
    pending tracks) without them. Catches tracks a detection task wrote while a forget ran."""
    gone = forgotten_tracks(ctx)
    if gone:
        from adpipeline.stages.faces import crop_key

        for track_id in gone:
            ctx.bucket.delete(crop_key(track_id))
        ctx.warehouse.delete_where("face_detections", "track_id IN UNNEST(@ids)", {"ids": gone})
        log.info("privacy: %d unassigned track(s) of forgotten people deleted", len(gone))
    if frame is None or not gone:
        return frame
    return frame[~frame["track_id"].isin(set(gone))]


def is_suppressed(wh: Warehouse, *, customer_id: str | None = None, photo_sha256: str | None = None) -> bool:
    """Gallery hook: whether a customer (or one source photo, by the sha256 of its bytes) must not be enrolled."""
    if customer_id is not None and subject_digest("customer_id", customer_id) in _suppressed_digests(wh, "customer"):
        return True
    return photo_sha256 is not None and subject_digest("photo", photo_sha256) in _suppressed_digests(wh, "photo")


def suppressed_customers(wh: Warehouse, customer_ids: Sequence[str]) -> set[str]:
    """Gallery hook, many at once: the customer ids among ``customer_ids`` that are forgotten."""
    digests = _suppressed_digests(wh, "customer")
    return {c for c in customer_ids if subject_digest("customer_id", c) in digests}


# --- scheduled: enforcement and retention ---------------------------------------------------------
def enforce(ctx: StageContext, *, triggered_by: str | None = None) -> dict[str, Any]:
    """Delete whatever matches an active suppression (a face or customer id that came back, unassigned tracks in a
    forgotten segment): the daily backstop for a task that wrote while a forget ran. Audited when it finds any."""
    wh = ctx.warehouse
    wh.ensure_tables(PRIVACY_TABLES)
    dropped = drop_forgotten_tracks(ctx)  # noqa: F841 - counted in the log line
    face_digests = _suppressed_digests(wh, "face")
    faces = []
    if face_digests and wh.table_exists("faces"):
        faces = [
            f
            for f in _query(wh, "SELECT face_id FROM {{ faces }}")["face_id"]
            if subject_digest("face_id", f) in face_digests
        ]
    customers = _customers_back(ctx)
    fp = resolve(ctx, customer_ids=customers, face_ids=faces)
    if fp.empty:
        return summary("privacy.enforce", ctx.window, found=0)
    rid = f"enforce_{uuid.uuid4().hex[:16]}"
    result = PrivacyResult(rid, "enforce", False, plan_forget(ctx, fp))
    _run_plan(ctx, result, triggered_by=triggered_by or cli_user(), subject=None, suppressions=_suppressions(rid, fp))
    return summary("privacy.enforce", ctx.window, found=len(fp.face_ids) + len(fp.customer_ids), **result.counts)


def _customers_back(ctx: StageContext) -> list[str]:
    """Suppressed customers that hold rows again (identity tables), found without their plain ids."""
    wh = ctx.warehouse
    digests = _suppressed_digests(wh, "customer")
    found: set[str] = set()
    for table in _ROOTS:
        if digests and wh.table_exists(table):
            ids = _query(wh, f"SELECT DISTINCT customer_id FROM {{{{ {table} }}}}")["customer_id"]
            found |= {c for c in ids if subject_digest("customer_id", c) in digests}
    return sorted(found)


@dataclass
class GalleryBlock:
    """Gallery hook: the forgotten customers and source photos (digests only), loaded once per enrolment."""

    customers: set[str]
    photos: set[str]

    def customer(self, customer_id: str) -> bool:
        return subject_digest("customer_id", customer_id) in self.customers

    def photo(self, sha256: str) -> bool:
        return subject_digest("photo", sha256) in self.photos


def gallery_block(wh: Warehouse) -> GalleryBlock:
    """What enrolment must skip: customers and photo bytes of standing forget requests."""
    wh.ensure_tables(["privacy_suppressions"])
    return GalleryBlock(_suppressed_digests(wh, "customer"), _suppressed_digests(wh, "photo"))


def expired_faces(ctx: StageContext) -> list[str]:
    """Faces that still hold a vector and whose videos were in no ad on or after the retention cutoff (the run's
    window end minus ``face_retention_days``; never the wall clock)."""
    days = ctx.settings.face_retention_days
    wh = ctx.warehouse
    if not days or not _exists(wh, "faces", "face_detections", "creatives"):
        return []
    cutoff = ctx.window.end - dt.timedelta(days=days)
    frame = _query(
        wh,
        "SELECT f.face_id FROM {{ faces }} AS f WHERE ARRAY_LENGTH(f.centroid) > 0 AND NOT EXISTS ("
        "SELECT 1 FROM {{ face_detections }} AS d JOIN {{ creatives }} AS c ON c.creative_id = d.creative_id "
        "WHERE d.face_id = f.face_id AND c.last_seen_date >= @cutoff) ORDER BY f.face_id",
        {"cutoff": cutoff},
    )
    return list(frame["face_id"])


def plan_retention(ctx: StageContext, face_ids: list[str]) -> list[Change]:
    """Crops deleted; track embeddings and face centroids emptied; crop paths cleared. Ids and counts stay, so
    face_performance and ads_enriched keep their history; an emptied face is never compared again."""
    wh = ctx.warehouse
    if not face_ids:
        return []
    fp = resolve(ctx, face_ids=face_ids)
    best = _query(wh, "SELECT best_crop_path FROM {{ faces }} WHERE face_id IN UNNEST(@ids)", {"ids": face_ids})
    ids = {"face_ids": face_ids}
    changes = [
        _bucket_change(ctx, CROP_PREFIX, _crop_keys(ctx, fp.tracks, list(best["best_crop_path"]))),
        _table_change(
            wh,
            "face_performance",
            "face_id IN UNNEST(@face_ids) AND best_crop_path IS NOT NULL",
            ids,
            set_sql="best_crop_path = NULL",
        ),
        _table_change(
            wh,
            "faces",
            "face_id IN UNNEST(@face_ids) AND (ARRAY_LENGTH(centroid) > 0 OR best_crop_path IS NOT NULL)",
            ids,
            set_sql="centroid = [], best_crop_path = NULL",
        ),
        _table_change(
            wh,
            "face_detections",
            "face_id IN UNNEST(@face_ids) AND (ARRAY_LENGTH(embedding) > 0 OR crop_path IS NOT NULL)",
            ids,
            set_sql="embedding = [], crop_path = NULL",
        ),
    ]
    return [c for c in changes if c is not None]


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
    _run_plan(ctx, result, triggered_by=triggered_by or cli_user(), subject=None)
    return summary("privacy.retention", ctx.window, faces=len(faces), **result.as_summary())


# --- the embedded warehouse keeps deleted bytes until its file is rewritten -------------------------
def compact(ctx: StageContext) -> bool:
    """Rewrite the DuckDB file (``privacy_compact_duckdb``): DuckDB marks deleted rows and reuses their blocks later,
    so until then their bytes stay in the file (measured: a deleted id is still found in the file after CHECKPOINT).
    The tables are copied into a new file while this process holds the old one, which then replaces it.
    BigQuery needs nothing here (time travel and fail-safe: see the faces README)."""
    from adpipeline.warehouse.duckdb import DuckDBWarehouse

    wh = ctx.warehouse
    if not isinstance(wh, DuckDBWarehouse) or not ctx.settings.privacy_compact_duckdb:
        return False
    path = wh.path
    fresh = path.with_name(path.name + ".compact")
    for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
        leftover.unlink(missing_ok=True)
    with wh.session() as con:
        con.execute("CHECKPOINT")
        (db,) = con.execute("SELECT current_database()").fetchone()  # type: ignore[misc]
        con.execute(f"ATTACH '{fresh}' AS adp_compact")
        try:
            con.execute(f'COPY FROM DATABASE "{db}" TO adp_compact')
        finally:
            con.execute("DETACH adp_compact")
        # Replaced while this connection still holds the old file: a writer waiting for the lock opens the new one.
        os.replace(fresh, path)
    return True
