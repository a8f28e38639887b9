"""Stored object references are bucket keys: a moved ADP_HOME keeps its face crops on the page, and rows written
with absolute paths before are rewritten to keys by ensure_tables."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from adpipeline.bucket import Bucket
from adpipeline.settings import Settings
from adpipeline.tables import TABLES
from adpipeline.warehouse.duckdb import DuckDBWarehouse
from tests.insights.conftest import ADMIN, read_dependency, run_dependency, seed_warehouse


def _crop_status(settings: Settings, face_id: str) -> tuple[int, bytes]:
    from adpipeline.insights import create_app

    app = create_app(read_dependency=read_dependency, run_dependency=run_dependency, settings=settings)
    with TestClient(app) as client:
        response = client.get(f"/faces/{face_id}/crop.jpg", headers=ADMIN)
    return response.status_code, response.content


def test_moved_home_still_shows_crops_and_old_paths_become_keys(tmp_path: Path) -> None:
    seeded = seed_warehouse(tmp_path / "old" / "home")  # rows as older versions wrote them: absolute crop paths
    old_home = seeded.settings.home.resolve()
    with DuckDBWarehouse(seeded.settings.resolved_duckdb_path) as wh:
        stored = list(wh.query("SELECT best_crop_path FROM {{ faces }} ORDER BY face_id")["best_crop_path"])
    assert all(str(old_home) in p for p in stored)

    new_home = tmp_path / "moved" / "home"
    new_home.parent.mkdir(parents=True)
    shutil.move(str(old_home), new_home)
    settings = Settings(home=new_home, allow_local_paths=True, feature_min_impressions=1000)
    status, body = _crop_status(settings, "face_a")  # before any migration: the page resolves the key's tail
    assert status == 200 and Image.open(io.BytesIO(body)).size == (64, 64)

    with DuckDBWarehouse(settings.resolved_duckdb_path) as wh:
        wh.ensure_tables()  # the migration: absolute paths -> bucket keys
        faces = list(wh.query("SELECT best_crop_path FROM {{ faces }} ORDER BY face_id")["best_crop_path"])
        perf = list(wh.query("SELECT best_crop_path FROM {{ face_performance }} ORDER BY face_id")["best_crop_path"])
        assert wh.migrate_bucket_keys(TABLES["faces"]) == 0  # idempotent: nothing absolute is left
    assert faces and all(p.startswith("faces/crops/") for p in faces)
    assert [p for p in perf if isinstance(p, str)] and all(
        p.startswith("faces/crops/") for p in perf if isinstance(p, str)
    )
    bucket = Bucket(settings.resolved_bucket_url)
    assert all(bucket.exists(p) for p in faces)
    assert _crop_status(settings, "face_a")[0] == 200
    assert _crop_status(settings, "nobody")[0] == 404


def test_key_of_stays_inside_the_bucket(tmp_path: Path) -> None:
    bucket = Bucket(str(tmp_path / "bucket"))
    assert bucket.key_of("faces/crops/t1.jpg") == "faces/crops/t1.jpg"
    assert bucket.key_of(bucket.uri("faces/crops/t1.jpg")) == "faces/crops/t1.jpg"
    for outside in ("/etc/passwd", "gs://other/faces/crops/t1.jpg", "faces/../../etc/passwd", "", None):
        assert bucket.key_of(outside) is None, outside


def test_gallery_references_become_output_bucket_keys(tmp_path: Path) -> None:
    from adpipeline.tables import CustomerAppearance, GalleryVideoRecord

    out = f"{tmp_path}/old-home/bucket/gallery_output"
    wh = DuckDBWarehouse(tmp_path / "wh.duckdb")
    wh.merge_rows(
        "customer_appearances",
        [
            CustomerAppearance(
                customer_id="c042",
                creative_id="v1",
                face_id="f1",
                backend="dlib",
                model_id="m",
                first_time_s=0.0,
                last_time_s=1.0,
                best_time_s=0.5,
                best_distance=0.3,
                best_similarity=0.9,
                threshold=0.5,
                copied_photo_urls=[f"{out}/customers/c042/abc.jpg", "customers/c042/def.jpg"],
            )
        ],
    )
    wh.merge_rows(
        "gallery_video_records",
        [
            GalleryVideoRecord(
                creative_id="v1",
                record_url="gs://bucket/out/20261001/v1.json",
                record_sha256="x",
                n_tracks=1,
                n_matched=1,
                model_id="m",
                run_id="r",
            )
        ],
    )
    fresh = DuckDBWarehouse(tmp_path / "wh.duckdb")  # a new process: ensure_tables migrates once per table
    fresh.ensure_tables(["customer_appearances", "gallery_video_records"])
    copies = fresh.query("SELECT copied_photo_urls FROM {{ customer_appearances }}")["copied_photo_urls"][0]
    assert list(copies) == ["customers/c042/abc.jpg", "customers/c042/def.jpg"]
    record = fresh.query("SELECT record_url FROM {{ gallery_video_records }}")["record_url"][0]
    assert record == "20261001/v1.json"
