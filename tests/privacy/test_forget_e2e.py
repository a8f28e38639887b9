"""End to end: the demo chain, a person forgotten, nothing of them left anywhere, and they do not come back."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from adpipeline.bucket import Bucket
from adpipeline.privacy.suppression import subject_digest
from adpipeline.stages import faces as faces_stage
from adpipeline.stages import final as final_stage
from adpipeline.stages import privacy
from adpipeline.stages.chain import run_direct
from adpipeline.stages.context import StageContext
from adpipeline.warehouse import get_warehouse
from adpipeline.window import Window
from tests.e2e.support import START, load_sample, make_settings, table_checksums
from tests.privacy.scan import face_traces, scan, table_names

pytestmark = pytest.mark.slow

DAY = dt.timedelta(days=1)


def _row_counts(settings) -> dict[str, int]:
    with get_warehouse(settings) as wh:
        names = table_names(wh)
        return {n: int(wh.query(f"SELECT COUNT(*) AS n FROM {{{{ {n} }}}}").iloc[0]["n"]) for n in names}


def _objects(settings, prefix: str) -> set[str]:
    return set(Bucket(settings.resolved_bucket_url).list(prefix))


def _video_only_face(settings) -> str:
    """A face matched to no customer; one that shares a video with another face when the demo has one."""
    with get_warehouse(settings) as wh:
        frame = wh.query(
            "SELECT d.face_id, COUNT(DISTINCT d.creative_id) AS n, "
            "MAX(CASE WHEN o.face_id IS NOT NULL THEN 1 ELSE 0 END) AS shared "
            "FROM {{ face_detections }} AS d LEFT JOIN {{ face_detections }} AS o "
            "ON o.creative_id = d.creative_id AND o.face_id <> d.face_id "
            "WHERE d.face_id IS NOT NULL AND d.face_id NOT IN (SELECT face_id FROM {{ customer_appearances }}) "
            "GROUP BY d.face_id ORDER BY shared DESC, n DESC, d.face_id"
        )
    assert len(frame) >= 1, "the demo slice has a face no customer matches"
    return str(frame.iloc[0]["face_id"])


def _gallery(settings, root) -> None:
    """A customer base of one person in the demo slice's videos (which show Obama and Grace Hopper) and one who is in
    no video; Grace Hopper's face stays video-only."""
    from adpipeline.demo.sample import ASSETS_DIR

    root.mkdir(parents=True)
    for customer, photo in (
        ("cust_obama", "obama/obama.jpg"),
        ("cust_collins", "eileen_collins/astronaut.jpg"),
    ):
        (root / f"{customer}.jpg").write_bytes((ASSETS_DIR / photo).read_bytes())


def _identity_steps(settings, window, gallery_dir) -> None:
    from adpipeline.stages import gallery

    with StageContext(settings, window, run_id="test") as ctx:
        gallery.enrol(ctx, str(gallery_dir))
        gallery.match(ctx)
        final_stage.run(ctx)


def _customer_traces(settings, customer_id: str):
    import numpy as np

    from tests.privacy.scan import Traces

    with get_warehouse(settings) as wh:
        photos = wh.query("SELECT * FROM {{ gallery_photos }} WHERE customer_id = @c", {"c": customer_id})
        templates = wh.query("SELECT * FROM {{ gallery }} WHERE customer_id = @c", {"c": customer_id})
        faces = wh.query(
            "SELECT DISTINCT face_id FROM {{ customer_appearances }} WHERE customer_id = @c", {"c": customer_id}
        )
    traces = Traces(ids={customer_id})
    traces.vectors += [np.asarray(e, dtype=np.float64) for e in photos["embedding"] if len(e)]
    traces.vectors += [np.asarray(t, dtype=np.float64) for t in templates["template"]]
    traces.blob_hashes |= set(photos["sha256"])
    assert traces.vectors and len(faces), "the customer is enrolled and found in a video"
    for face_id in faces["face_id"]:
        traces = traces.merge(face_traces(settings, face_id))
    return traces, sorted(faces["face_id"])


def test_forget_a_customer_and_a_face_everywhere_and_they_stay_forgotten(small_sample, tmp_path) -> None:
    settings = make_settings(tmp_path / "home", small_sample.out_dir, tmp_path)
    load_sample(settings, small_sample)
    window = Window(START, START + 2 * DAY)
    run_direct(settings, window)
    gallery_dir = tmp_path / "customers"
    _gallery(settings, gallery_dir)
    _identity_steps(settings, window, gallery_dir)
    with get_warehouse(settings) as wh:
        found = wh.query(
            "SELECT customer_id, COUNT(*) AS n FROM {{ customer_appearances }} GROUP BY customer_id "
            "ORDER BY n DESC, customer_id"
        )
    assert len(found), "the gallery finds customers in the demo videos"
    customer = str(found.iloc[0]["customer_id"])
    customer_traces, customer_faces = _customer_traces(settings, customer)
    face_id = _video_only_face(settings)
    assert face_id not in customer_faces
    face = face_traces(settings, face_id)
    # One verification of the customer's own photo against a video they are in.
    from adpipeline.stages.verify import verify_urls

    with get_warehouse(settings) as wh:
        video = wh.query(
            "SELECT c.url FROM {{ customer_appearances }} AS a JOIN {{ creatives }} AS c USING (creative_id) "
            "WHERE a.customer_id = @c ORDER BY c.url LIMIT 1",
            {"c": customer},
        ).iloc[0]["url"]
    with StageContext(settings, window, run_id="test") as ctx:
        verify_urls(ctx, str(gallery_dir / f"{customer}.jpg"), video)
    with get_warehouse(settings) as wh:
        assert len(wh.read_table("face_verifications")) == 1
    traces = customer_traces.merge(face)
    assert scan(settings, customer_traces, raw_file=False) and scan(settings, face, raw_file=False)

    with get_warehouse(settings) as wh:
        enriched_with = int(
            wh.query("SELECT COUNT(*) AS n FROM {{ ads_enriched }} WHERE @f IN UNNEST(face_ids)", {"f": face_id}).iloc[
                0
            ]["n"]
        )
        videos = sorted(
            wh.query(
                "SELECT DISTINCT creative_id FROM {{ face_detections }} WHERE face_id IN UNNEST(@f)",
                {"f": [face_id, *customer_faces]},
            )["creative_id"]
        )
    today = Window(START + 2 * DAY, START + 2 * DAY)
    settings.gallery_url = str(gallery_dir)
    for subject in ({"customer_id": customer}, {"face_id": face_id}):
        # Dry run: lists, changes nothing but the audit table.
        before_rows = _row_counts(settings)
        before = {p: _objects(settings, p) for p in ("faces/crops/", "gallery_output/", "")}
        with StageContext(settings, today, run_id="test") as ctx:
            dry = privacy.forget_person(ctx, dry_run=True, triggered_by="test", **subject)
        assert {k: v for k, v in _row_counts(settings).items() if not k.startswith("privacy_")} == {
            k: v for k, v in before_rows.items() if not k.startswith("privacy_")
        }
        assert {p: _objects(settings, p) for p in before} == before
        assert dry["counts"]["table:faces (delete)"] >= 1
        assert dry["counts"]["bucket:faces/crops/ (delete)"] >= 1
        if "customer_id" in subject:
            assert dry["counts"]["table:gallery (delete)"] == 1
            assert dry["counts"]["table:gallery_photos (delete)"] == 1
            assert dry["counts"]["table:customer_appearances (delete)"] >= 1
            assert dry["counts"]["table:face_verifications (delete)"] == 1
            assert dry["counts"]["bucket:output customers/ (delete)"] == 1
            assert dry["counts"]["bucket:blobs/sha256/ (delete)"] == 1, "the photo the verification cached"
            assert dry["counts"]["table:ads_enriched[customer_ids] (update)"] >= 1
            assert "remain in the customer base bucket" in dry["note"]
        else:
            assert dry["counts"]["table:ads_enriched[face_ids] (update)"] == enriched_with > 0
        # The real run deletes exactly what the dry run listed.
        with StageContext(settings, today, run_id="test") as ctx:
            done = privacy.forget_person(ctx, triggered_by="test", **subject)
        assert done["counts"] == dry["counts"]
        after_rows = _row_counts(settings)
        for key, count in dry["counts"].items():
            target, action = key.split(" (")
            if target.startswith("table:") and action == "delete)":
                table = target[len("table:") :]
                assert before_rows[table] - after_rows[table] == count, key
        assert (
            len(before["faces/crops/"] - _objects(settings, "faces/crops/"))
            == dry["counts"]["bucket:faces/crops/ (delete)"]
        )
        gone_output = before["gallery_output/"] - _objects(settings, "gallery_output/")
        assert len(gone_output) == dry["counts"].get("bucket:output customers/ (delete)", 0)
        deleted = [n for k, n in dry["counts"].items() if k.startswith("bucket:") and k.endswith("(delete)")]
        assert len(before[""] - _objects(settings, "")) == sum(deleted)
    assert (tmp_path / "customers" / f"{customer}.jpg").exists(), "the customer's own bucket is never touched"
    assert scan(settings, traces) == []

    # Recomputed without them: a rebuild of the derived tables gives what the DML left.
    derived = ("face_performance", "ads_enriched")
    left = {t: v for t, v in table_checksums(settings).items() if t in derived}
    with StageContext(settings, today, run_id="test") as ctx:
        faces_stage.performance(ctx)
        final_stage.run(ctx)
    assert {t: v for t, v in table_checksums(settings).items() if t in derived} == left

    # The audit: one row per request, counts, who; no ids, no vectors.
    with get_warehouse(settings) as wh:
        audit = wh.query("SELECT * FROM {{ privacy_requests }} ORDER BY requested_at")
        suppressions = wh.query("SELECT * FROM {{ privacy_suppressions }}")
    assert list(audit["status"]) == ["listed", "done", "listed", "done"]
    assert list(audit["dry_run"]) == [True, False, True, False]
    assert audit["counts_json"].iloc[0] == audit["counts_json"].iloc[1]
    assert audit["counts_json"].iloc[2] == audit["counts_json"].iloc[3]
    assert set(audit["triggered_by"]) == {"test"}
    assert list(audit["subject_digest"])[1::2] == [
        subject_digest("customer_id", customer),
        subject_digest("face_id", face_id),
    ]
    assert set(suppressions["kind"]) == {"customer", "photo", "face", "track"}
    assert json.loads(audit["counts_json"].iloc[1])

    # The next daily runs (new days too), a re-enrolment of the customer base, a re-match and a re-detection of
    # the person's videos do not bring them back.
    run_direct(settings, Window(START, START + 4 * DAY))
    _identity_steps(settings, Window(START, START + 4 * DAY), gallery_dir)
    assert scan(settings, traces) == []
    with get_warehouse(settings) as wh:
        for creative_id in videos:  # as a model change or a refresh would: analyse the videos again
            wh.delete_where("face_video_status", "creative_id = @c", {"c": creative_id})
    with StageContext(settings, today, run_id="test") as ctx:
        faces_stage.detect(ctx)
        faces_stage.cluster(ctx)
        faces_stage.performance(ctx)
    _identity_steps(settings, today, gallery_dir)
    assert scan(settings, traces) == []
    with get_warehouse(settings) as wh:
        redone = wh.query(
            "SELECT COUNT(*) AS n FROM {{ face_video_status }} WHERE creative_id IN UNNEST(@v)", {"v": videos}
        )
        enrolled = set(wh.query("SELECT customer_id FROM {{ gallery }}")["customer_id"])
    assert int(redone.iloc[0]["n"]) == len(videos), "the videos were analysed again"
    assert customer not in enrolled

    # Withdrawn: the customer's suppression goes (audited), and the next enrolment takes them in again.
    with StageContext(settings, today, run_id="test") as ctx:
        back = privacy.forget_person(ctx, customer_id=customer, withdraw=True, triggered_by="test")
    customer_request = audit["request_id"].iloc[1]
    withdrawn = int((suppressions["request_id"] == customer_request).sum())
    assert back["counts"]["table:privacy_suppressions (delete)"] == withdrawn > 0
    _identity_steps(settings, today, gallery_dir)
    with get_warehouse(settings) as wh:
        assert customer in set(wh.query("SELECT customer_id FROM {{ gallery }}")["customer_id"])
