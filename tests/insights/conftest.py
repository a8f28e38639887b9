"""A small warehouse written through the row models (faces, duplicate groups, ads, model calls), and the insights app
over it with test auth dependencies that behave like Airflow's (no user: 401; a viewer may read but not run)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import Header, HTTPException
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from adpipeline import tables as t
from adpipeline.bucket import Bucket
from adpipeline.settings import Settings
from adpipeline.stages.final import rebuild_feature_performance
from adpipeline.warehouse.duckdb import DuckDBWarehouse

DAY0 = dt.date(2026, 10, 1)
USERS = {"admin-token": "op", "viewer-token": "viewer"}
ADMIN = {"Authorization": "Bearer admin-token"}
VIEWER = {"Authorization": "Bearer viewer-token"}


def _user(authorization: str | None = Header(None)) -> str:
    token = (authorization or "").removeprefix("Bearer ").strip()
    if token not in USERS:
        raise HTTPException(401, "Not authenticated")
    return USERS[token]


def read_dependency(authorization: str | None = Header(None)) -> None:
    _user(authorization)


def run_dependency(authorization: str | None = Header(None)) -> None:
    if _user(authorization) != "op":
        raise HTTPException(403, "Forbidden")


def png(colour: tuple[int, int, int], size: tuple[int, int] = (120, 90), text: str = "") -> bytes:
    image = Image.new("RGB", size, colour)
    ImageDraw.Draw(image).rectangle((10, 10, size[0] // 2, size[1] // 2), fill=(255, 255, 255))
    if text:
        ImageDraw.Draw(image).text((12, 60), text, fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@dataclass
class Seeded:
    settings: Settings
    bucket: Bucket
    image_sha: dict[str, str]
    face_ids: list[str]


def seed_warehouse(home: Path) -> Seeded:
    settings = Settings(home=home, allow_local_paths=True, feature_min_impressions=1000)
    bucket = Bucket(settings.resolved_bucket_url)
    wh = DuckDBWarehouse(settings.resolved_duckdb_path)
    wh.ensure_tables()
    images = {f"img{i}": png((40 * i, 80, 200 - 30 * i), text=f"#{i}") for i in range(6)}
    image_sha = {cid: bucket.put_blob(data)[0] for cid, data in images.items()}
    wh.merge_rows(
        "creatives",
        [
            t.Creative(
                creative_id=cid,
                url=f"https://ads.example/{cid}.png",
                media_type="image",
                first_seen_date=DAY0,
                last_seen_date=DAY0 + dt.timedelta(days=3),
            )
            for cid in images
        ]
        + [
            t.Creative(
                creative_id=f"vid{i}",
                url=f"https://ads.example/vid{i}.mp4",
                media_type="video",
                first_seen_date=DAY0,
                last_seen_date=DAY0 + dt.timedelta(days=3),
            )
            for i in range(3)
        ],
    )
    wh.merge_rows(
        "image_hashes",
        [
            t.ImageHash(
                creative_id=cid,
                sha256=sha,
                dhash=i,
                dhash_hex=f"{i:016x}",
                width=120,
                height=90,
                aspect_ratio=1.3333,
                orientation="landscape",
            )
            for i, (cid, sha) in enumerate(image_sha.items())
        ],
    )
    groups = {
        "img0": ("g_img0", 0),
        "img1": ("g_img0", 3),
        "img2": ("g_img0", 5),
        "img3": ("g_img3", 0),
        "img4": ("g_img3", 2),
        "img5": ("g_img5", 0),
    }
    sizes = {"g_img0": 3, "g_img3": 2, "g_img5": 1}
    wh.merge_rows(
        "duplicate_groups",
        [
            t.DuplicateGroup(
                creative_id=cid,
                group_id=gid,
                canonical_creative_id=gid[2:],
                hamming_to_canonical=d,
                is_canonical=d == 0,
                group_size=sizes[gid],
            )
            for cid, (gid, d) in groups.items()
        ],
    )
    face_ids = ["face_a", "face_b"]
    crops = {}
    for n, fid in enumerate(face_ids):
        key = f"faces/crops/track_{fid}.jpg"
        jpeg = io.BytesIO()
        Image.new("RGB", (64, 64), (200, 150 - 60 * n, 120)).save(jpeg, format="JPEG")
        crops[fid] = bucket.put_bytes(key, jpeg.getvalue())
    wh.merge_rows(
        "faces",
        [
            t.Face(
                face_id=fid,
                backend="dlib",
                model_id="m",
                centroid=[0.0, 1.0],
                n_tracks=1,
                n_videos=1,
                first_creative_id=f"vid{n}",
                best_track_id=f"track_{fid}",
                best_crop_path=crops[fid],
            )
            for n, fid in enumerate(face_ids)
        ],
    )
    wh.merge_rows(
        "face_performance",
        [
            t.FacePerformance(
                face_id="face_a",
                n_videos=1,
                n_ads=2,
                impressions=20000,
                clicks=600,
                spend=50.0,
                conversions=12,
                ctr=0.03,
                avg_ad_ctr=0.03,
                median_ad_ctr=0.03,
                stddev_ad_ctr=0.004,
                best_crop_path=crops["face_a"],
            ),
            t.FacePerformance(
                face_id="face_b",
                n_videos=1,
                n_ads=2,
                impressions=20000,
                clicks=200,
                spend=40.0,
                conversions=2,
                ctr=0.01,
                avg_ad_ctr=0.01,
                median_ad_ctr=0.01,
                stddev_ad_ctr=0.002,
                best_crop_path=crops["face_b"],
            ),
            t.FacePerformance(
                face_id="__no_face__",
                n_videos=1,
                n_ads=2,
                impressions=20000,
                clicks=400,
                spend=45.0,
                conversions=5,
                ctr=0.02,
                avg_ad_ctr=0.02,
                stddev_ad_ctr=0.001,
            ),
        ],
    )
    # ads: two ads per creative over two days; the canonical images carry the features.
    feats = {
        "img0": dict(cta_kind="shop_now", promotions=["percent_off"], dominant_colors=["red"], has_text=True),
        "img3": dict(cta_kind="learn_more", promotions=[], dominant_colors=["blue"], has_text=True),
        "img5": dict(cta_kind=None, promotions=[], dominant_colors=["red", "white"], has_text=False),
    }
    rows = []
    rates = {
        "img0": 0.04,
        "img1": 0.035,
        "img2": 0.045,
        "img3": 0.01,
        "img4": 0.012,
        "img5": 0.02,
        "vid0": 0.03,
        "vid1": 0.01,
        "vid2": 0.02,
    }
    for cid, rate in rates.items():
        canonical = groups[cid][0][2:] if cid in groups else cid
        f = feats.get(canonical, {})
        for ad in range(2):
            for day in range(2):
                impressions = 5000
                rows.append(
                    t.AdEnriched(
                        ad_id=f"ad_{cid}_{ad}",
                        date=DAY0 + dt.timedelta(days=day),
                        media_type="video" if cid.startswith("vid") else "image",
                        creative_id=cid,
                        url=f"https://ads.example/{cid}",
                        canonical_creative_id=canonical,
                        duplicate_group_id=groups[cid][0] if cid in groups else None,
                        impressions=impressions,
                        clicks=round(impressions * rate),
                        spend=10.0 + ad,
                        face_ids=["face_a"] if cid == "vid0" else ["face_b"] if cid == "vid1" else [],
                        n_faces=1 if cid in ("vid0", "vid1") else 0,
                        **f,
                    )
                )
    wh.merge_rows("ads_enriched", rows)
    wh.merge_rows(
        "customer_appearances",
        [
            t.CustomerAppearance(
                customer_id="c042",
                creative_id="vid0",
                face_id="face_a",
                backend="dlib",
                model_id="m",
                first_time_s=0.0,
                last_time_s=3.0,
                best_time_s=1.0,
                best_distance=0.3,
                best_similarity=0.9,
                confidence_pct=97.6,
                threshold=0.4,
            ),
        ],
    )
    rebuild_feature_performance(wh, settings.feature_min_impressions)
    called = dt.datetime(2026, 10, 1, 12, tzinfo=dt.UTC)
    wh.merge_rows(
        "genai_usage",
        [
            t.GenAIUsage(
                call_id=f"c{i}",
                creative_id=f"img{i % 6}",
                modality="image" if i % 3 else "video",
                provider="gemini",
                model="gemini-2.5-flash" if i % 2 else "gemini-2.5-pro",
                mode="online",
                prompt_version="v1",
                input_text_tokens=300,
                input_image_tokens=258 * (i % 3 != 0),
                input_video_tokens=5000 * (i % 3 == 0),
                output_tokens=200,
                cost_usd=0.01 * (i + 1),
                status="ok",
                run_id=f"run{i // 4}",
                called_at=called + dt.timedelta(days=i // 4),
            )
            for i in range(12)
        ],
    )
    wh.close()
    return Seeded(settings, bucket, image_sha, face_ids)


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return seed_warehouse(tmp_path_factory.mktemp("insights") / "home")


@pytest.fixture
def client(seeded: Seeded) -> Iterator[TestClient]:
    from adpipeline.insights import create_app

    app = create_app(read_dependency=read_dependency, run_dependency=run_dependency, settings=seeded.settings)
    with TestClient(app) as test_client:
        yield test_client
