"""Planning a forget: every change that removes one person, by table and bucket prefix, in the order they run.

The faces and tracks (:func:`plan_forget`) and the identity tables around them: gallery photos and templates,
appearances, verifications, the output bucket's photo copies and JSON records, the photos fetched into the media
cache. Nothing here writes; :mod:`adpipeline.privacy.apply` runs a plan.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pandas as pd

from adpipeline.bucket import Bucket
from adpipeline.faces.crops import CROP_PREFIX
from adpipeline.privacy.footprint import Change, Footprint, bucket_change, crop_keys, table_change
from adpipeline.privacy.suppression import PrivacyContext, query, segment_tolerance_s
from adpipeline.tables import GalleryVideoRecord
from adpipeline.warehouse.base import Warehouse
from adpipeline.warehouse.schema import rows_from_frame

ROOT_TABLES = ("customer_appearances", "gallery", "gallery_photos")
"""The tables a customer's faces and photos are found from: deleted last."""
_KEPT_FACES = "ARRAY(SELECT x FROM UNNEST(face_ids) AS x WHERE x NOT IN UNNEST(@face_ids) ORDER BY x)"


def plan_forget(ctx: PrivacyContext, fp: Footprint) -> list[Change]:
    """Every change that forgetting ``fp`` makes, in the order they run: bucket objects, derived tables, then the
    faces and their tracks (the rows everything else is found from, so a retry after a crash finds what is left)."""
    wh = ctx.warehouse
    faces, tracks = fp.face_ids, fp.track_ids
    changes: list[Change | None] = []
    best_paths: list[str] = []
    if faces and wh.table_exists("faces"):
        frame = query(wh, "SELECT best_crop_path FROM {{ faces }} WHERE face_id IN UNNEST(@ids)", {"ids": faces})
        best_paths = [p for p in frame["best_crop_path"] if isinstance(p, str)]
    changes.append(bucket_change(ctx, CROP_PREFIX, crop_keys(ctx, fp.tracks, best_paths)))
    identity = _identity_changes(ctx, fp)
    roots = [c for c in identity if c is not None and c.table in ROOT_TABLES]
    changes += [c for c in identity if c not in roots]
    in_faces = {"face_ids": faces}
    changes.append(
        table_change(
            wh,
            "ads_enriched",
            "EXISTS (SELECT 1 FROM UNNEST(face_ids) AS x WHERE x IN UNNEST(@face_ids))",
            in_faces,
            set_sql=f"face_ids = {_KEPT_FACES}, n_faces = ARRAY_LENGTH({_KEPT_FACES})",
            column="face_ids",
        )
    )
    changes.append(table_change(wh, "face_performance", "face_id IN UNNEST(@face_ids)", in_faces))
    # feature_performance (rebuilt by adp_final) names faces and customers as feature values.
    changes.append(
        table_change(
            wh,
            "feature_performance",
            "(feature = 'face' AND value IN UNNEST(@faces)) OR (feature = 'customer' AND value IN UNNEST(@customers))",
            {"faces": faces, "customers": list(fp.customer_ids)},
        )
    )
    # feature_effects (rebuilt by adp_final) too.
    changes.append(
        table_change(
            wh,
            "feature_effects",
            "(feature = 'face' AND value IN UNNEST(@faces)) OR (feature = 'customer' AND value IN UNNEST(@customers))",
            {"faces": faces, "customers": list(fp.customer_ids)},
        )
    )
    changes.append(table_change(wh, "faces", "face_id IN UNNEST(@face_ids)", in_faces))
    if tracks:
        changes.append(table_change(wh, "face_detections", "track_id IN UNNEST(@track_ids)", {"track_ids": tracks}))
    changes += roots
    return [c for c in changes if c is not None]


def _identity_changes(ctx: PrivacyContext, fp: Footprint) -> list[Change | None]:
    """Gallery photos' vectors and templates, appearances, verifications, the output bucket's photo copies and JSON
    records (the face identity tables), where they exist."""
    wh = ctx.warehouse
    customers, faces, tracks = fp.customer_ids, fp.face_ids, fp.track_ids
    out: list[Change | None] = []
    photos = customer_photos(wh, customers)
    output = _output_bucket(ctx)
    # The output bucket: the customers' photo copies, then the JSON records rewritten without the person.
    copies: set[str] = set()
    for customer in customers:
        copies |= set(output.list(f"customers/{customer}/"))
    if customers and wh.table_exists("customer_appearances"):
        got = query(
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
        table_change(
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
        table_change(
            wh,
            "customer_appearances",
            "customer_id IN UNNEST(@customers) OR face_id IN UNNEST(@faces) OR EXISTS "
            "(SELECT 1 FROM UNNEST(track_ids) AS t WHERE t IN UNNEST(@tracks))",
            {"customers": customers, "faces": faces, "tracks": tracks},
        )
    )
    out.append(table_change(wh, "gallery", "customer_id IN UNNEST(@ids)", {"ids": customers}))
    out.append(table_change(wh, "gallery_photos", "customer_id IN UNNEST(@ids)", {"ids": customers}))
    return out


_GONE_CUSTOMER = "(x IN UNNEST(@customers) OR CONCAT(creative_id, '|', x) IN UNNEST(@pairs))"
_KEPT_CUSTOMERS = f"ARRAY(SELECT x FROM UNNEST(customer_ids) AS x WHERE NOT {_GONE_CUSTOMER} ORDER BY x)"


def _has_column(wh: Warehouse, table: str, column: str) -> bool:
    if not wh.table_exists(table):
        return False
    return column in query(wh, f"SELECT * FROM {{{{ {table} }}}} LIMIT 0").columns


def customer_photos(wh: Warehouse, customers: list[str]) -> pd.DataFrame:
    """photo_url, sha256 of the customers' gallery photos (every model)."""
    if not customers or not wh.table_exists("gallery_photos"):
        return pd.DataFrame(columns=["photo_url", "sha256"])
    return query(
        wh,
        "SELECT DISTINCT photo_url, sha256 FROM {{ gallery_photos }} WHERE customer_id IN UNNEST(@ids)",
        {"ids": customers},
    )


def _output_bucket(ctx: PrivacyContext) -> Bucket:
    """Where the gallery stage copies matched customers' photos and writes the JSON records."""
    return Bucket(ctx.settings.gallery_output_url or ctx.bucket.uri("gallery_output"))


def _key_in(bucket: Bucket, url: str) -> str:
    return bucket.key_of(url) or ""


def _appearance_pairs_gone(wh: Warehouse, fp: Footprint) -> list[str]:
    """``creative|customer`` pairs of appearances that all go with this person (by face or track), so the customer
    leaves that video's row in ads_enriched too, as a rebuild would do."""
    if not (fp.face_ids or fp.track_ids) or not wh.table_exists("customer_appearances"):
        return []
    rows = query(wh, "SELECT customer_id, creative_id, face_id, track_ids FROM {{ customer_appearances }}")
    faces, tracks = set(fp.face_ids), set(fp.track_ids)
    kept: set[tuple[str, str]] = set()
    gone: set[tuple[str, str]] = set()
    for r in rows.itertuples(index=False):
        pair = (r.creative_id, r.customer_id)
        (gone if r.face_id in faces or tracks & set(list(r.track_ids)) else kept).add(pair)
    return sorted(f"{c}|{x}" for c, x in gone - kept)


def _record_changes(ctx: PrivacyContext, fp: Footprint, output: Bucket) -> list[Change | None]:
    """The per-video JSON records that mention the person, rewritten without them (a video where nobody remains
    keeps a record with no faces, as the gallery stage writes for such videos), and their rows."""
    wh = ctx.warehouse
    if not wh.table_exists("gallery_video_records") or fp.empty:
        return []
    rows = query(wh, "SELECT * FROM {{ gallery_video_records }} ORDER BY creative_id")
    creatives = set(fp.tracks["creative_id"]) if not fp.tracks.empty else set()
    customers, faces, tracks = set(fp.customer_ids), set(fp.face_ids), set(fp.track_ids)
    rewrites: dict[str, bytes | None] = {}
    updated = []
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


def _photo_blob_change(ctx: PrivacyContext, shas: set[Any]) -> Change | None:
    """The person's photos in the media cache (a verification fetched them into ``blobs/sha256/``), unless an ad
    creative has the same bytes."""
    wh = ctx.warehouse
    shas = {x for x in shas if isinstance(x, str) and x}
    if not shas:
        return None
    if wh.table_exists("media_fetches"):
        used = query(
            wh, "SELECT DISTINCT sha256 FROM {{ media_fetches }} WHERE sha256 IN UNNEST(@s)", {"s": sorted(shas)}
        )
        shas -= set(used["sha256"])
    keys = sorted(k for k in (ctx.bucket.blob_key(x) for x in shas) if ctx.bucket.exists(k))
    return bucket_change(ctx, "blobs/sha256/", keys)


def _verification_change(ctx: PrivacyContext, fp: Footprint, photos: pd.DataFrame) -> tuple[Change | None, set[str]]:
    """Verifications of the person: their gallery photo (same bytes or URL), or a match inside one of their tracks
    (same video bytes, best frame within the track's seconds). Also returns those verifications' photo hashes."""
    wh = ctx.warehouse
    if not wh.table_exists("face_verifications") or fp.empty:
        return None, set()
    rows = query(
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
    tol = segment_tolerance_s(ctx.settings)
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
    change = table_change(wh, "face_verifications", "verification_id IN UNNEST(@ids)", {"ids": sorted(ids)})
    return change, images
