"""End to end: the gallery and verify DAGs through Airflow after the chain, on the 4-video sample slice.

The slice's videos show Grace Hopper and Obama; the demo customer base also holds Biden and Eileen Collins (in no
video of the slice: they must not be matched) and two photos enrolment must reject.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from adpipeline.window import Window
from tests.e2e.support import START, load_sample

pytestmark = [pytest.mark.slow, pytest.mark.airflow]


def _run(dag_id: str, conf: dict) -> str:
    from airflow.dag_processing.dagbag import DagBag

    from adpipeline.paths import DAGS

    bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(dag_id)
    return str(dag.test(run_conf=conf).state)


def test_dag_shapes(airflow_db) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from adpipeline.paths import DAGS

    bag = DagBag(dag_folder=str(DAGS))
    gallery = bag.get_dag("adp_gallery")
    assert [t.task_id for t in gallery.topological_sort()] == ["enrol_customers", "match_customers_in_videos"]
    assert "AssetOrTimeSchedule" in type(gallery.timetable).__name__
    assets = {getattr(a, "name", None) or a[0].name for a in gallery.timetable.asset_condition.iter_assets()}
    assert assets == {"adpipeline.faces"}
    assert [o.name for o in gallery.get_task("match_customers_in_videos").outlets] == ["adpipeline.gallery"]
    assert gallery.doc_md.startswith("###") and "gallery_url" in gallery.params
    verify = bag.get_dag("adp_face_verify")
    assert type(verify.timetable).__name__ == "NullTimetable"  # manual only
    assert {"image_url", "video_url"} <= set(verify.params.keys())


def test_gallery_and_verify_dags(small_sample, tmp_path, airflow_db, monkeypatch) -> None:
    from adpipeline.demo.identity import verification_pair, write_customer_base
    from adpipeline.settings import get_settings
    from adpipeline.stages.chain import run_direct
    from adpipeline.warehouse import get_warehouse

    customers = write_customer_base(tmp_path / "customers")
    monkeypatch.setenv("ADP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ADP_ALLOW_LOCAL_PATHS", "true")
    monkeypatch.setenv("ADP_LOCAL_MEDIA_ROOTS", json.dumps([str(small_sample.out_dir), str(tmp_path)]))
    monkeypatch.setenv("ADP_GALLERY_URL", str(customers))
    get_settings.cache_clear()
    settings = get_settings()
    load_sample(settings, small_sample)
    window = Window(START, START + dt.timedelta(days=4))
    run_direct(settings, window)

    assert _run("adp_gallery", window.to_json()) == "success"
    with get_warehouse(settings) as wh:
        photos = wh.read_table("gallery_photos", order_by="customer_id, photo_key")
        found = wh.read_table("customer_appearances", order_by="customer_id, creative_id")
    status = dict(zip(photos["photo_key"], photos["status"] + ":" + photos["reason"].fillna(""), strict=True))
    assert status["cust_0005.jpg"] == "rejected:more_than_one_face"
    assert status["cust_0006.png"] == "rejected:no_face"
    assert sum(s == "enrolled:" for s in status.values()) == 5
    # Hopper (cust_0002) and Obama (cust_0001) are in the slice; Biden and Collins are in no video of it.
    assert set(found["customer_id"]) == {"cust_0001", "cust_0002"}
    assert (found["confidence_pct"] > 50).all()
    out = Path(settings.resolved_bucket_url) / "gallery_output"
    records = sorted(out.glob("2026*/*.json"))
    assert len(records) == 4
    names = {f["name"] for r in records for f in json.loads(r.read_text())["faces"]}
    assert names <= {"cust_0001", "cust_0002", "unknown"} and {"cust_0001", "cust_0002"} <= names
    assert len(list((out / "customers").rglob("*.*"))) == 3  # Obama's photo and Hopper's two
    # ads_enriched carries the matched customers once the final stage rebuilds it.
    from adpipeline.stages import final
    from adpipeline.stages.context import StageContext

    with StageContext(settings, window) as ctx:
        final.run(ctx)
        enriched = ctx.warehouse.query(
            "SELECT DISTINCT creative_id, customer_ids, n_customers FROM {{ ads_enriched }} WHERE n_customers > 0"
        )
    assert {c for ids in enriched["customer_ids"] for c in ids} == {"cust_0001", "cust_0002"}
    assert set(enriched["creative_id"]) == set(found["creative_id"])

    photo, video = verification_pair(small_sample.out_dir)
    conf = {**window.to_json(), "image_url": str(photo), "video_url": str(video)}
    assert _run("adp_face_verify", conf) == "success"
    with get_warehouse(settings) as wh:
        rows = wh.read_table("face_verifications")
    assert len(rows) == 1
    row = rows.iloc[0]
    assert row["status"] == "ok" and bool(row["matched"]) and row["confidence_pct"] > 50
    assert row["frames_checked"] > 0 and row["model_id"] == "dlib_hog+sp5+resnet_v1"
    get_settings.cache_clear()


def test_cli_enroll_then_run_finds_the_customers(small_sample, tmp_path, monkeypatch) -> None:
    """`adpipeline enroll FOLDER` then `adpipeline run --direct`: the chain's gallery step matches the customers."""
    from typer.testing import CliRunner

    from adpipeline.cli import app
    from adpipeline.demo.identity import write_customer_base
    from adpipeline.settings import get_settings
    from adpipeline.warehouse import get_warehouse

    customers = write_customer_base(tmp_path / "customers")
    monkeypatch.setenv("ADP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ADP_ALLOW_LOCAL_PATHS", "true")
    monkeypatch.setenv("ADP_LOCAL_MEDIA_ROOTS", json.dumps([str(small_sample.out_dir), str(tmp_path)]))
    monkeypatch.setenv("ADP_GALLERY_URL", str(customers))
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    load_sample(get_settings(), small_sample)
    runner = CliRunner()
    enrolled = runner.invoke(app, ["enroll", str(customers)])
    assert enrolled.exit_code == 0, enrolled.output
    day = START.isoformat()
    out = runner.invoke(app, ["run", "--start", day, "--end", (START + dt.timedelta(days=4)).isoformat(), "--direct"])
    assert out.exit_code == 0, out.output
    assert "DAGs covered: adp_import → adp_media → adp_features → adp_feature_batches → adp_faces → adp_gallery" in (
        out.output
    )
    assert "adp_gallery.match_customers_in_videos" in out.output
    with get_warehouse(get_settings()) as wh:
        found = set(wh.query("SELECT DISTINCT customer_id FROM {{ customer_appearances }}")["customer_id"])
        in_ads = wh.query("SELECT COUNT(*) AS n FROM {{ ads_enriched }} WHERE ARRAY_LENGTH(customer_ids) > 0")
    assert found, "the chain's gallery step should find the slice's customers"
    assert int(in_ads.iloc[0]["n"]) > 0  # the final rebuild ran after the match
    get_settings.cache_clear()
