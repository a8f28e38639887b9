"""The gallery: enrolment statuses, templates, open-set matching, idempotent copies and JSON records."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from adpipeline.faces.gallery import gallery_entries, match_vectors, template_of

ASSETS = Path(__file__).resolve().parents[2] / "adpipeline" / "demo" / "assets" / "faces"


def _jpeg(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=90)
    return out.getvalue()


def _rgb(name: str) -> np.ndarray:
    return np.asarray(Image.open(ASSETS / name).convert("RGB"))


def test_gallery_entries_layouts() -> None:
    keys = ["c1.jpg", "c2/front.png", "c2/side.webp", ".DS_Store", "c3/.hidden.jpg", "a/b/c.jpg", "notes.txt"]
    got = [(e.customer_id, e.photo_key) for e in gallery_entries(keys)]
    assert got == [("c1", "c1.jpg"), ("c2", "c2/front.png"), ("c2", "c2/side.webp"), ("notes", "notes.txt")]


def test_open_set_never_forces_a_nearest_neighbour() -> None:
    rng = np.random.default_rng(0)
    templates = rng.normal(size=(3, 128))
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    near = templates[1] + 0.01 * rng.normal(size=128)
    far = rng.normal(size=128)
    vectors = np.stack([near / np.linalg.norm(near), far / np.linalg.norm(far)])
    matches = match_vectors(vectors, ["a", "b", "c"], templates, threshold=0.4)
    assert matches[0].customer_id == "b" and matches[0].distance < 0.4
    assert matches[1].customer_id is None and matches[1].nearest_customer_id is not None
    assert all(m.customer_id is None for m in match_vectors(vectors, [], np.zeros((0, 128)), 0.4))
    t = template_of([templates[0], templates[0]])
    assert abs(float(np.linalg.norm(t)) - 1) < 1e-6


@pytest.fixture
def customer_base(tmp_path: Path) -> Path:
    base = tmp_path / "customers"
    base.mkdir()
    (base / "c_obama.jpg").write_bytes((ASSETS / "obama/obama2.jpg").read_bytes())
    (base / "c_hopper.jpg").write_bytes((ASSETS / "grace_hopper/grace_hopper.jpg").read_bytes())
    (base / "c_biden").mkdir()
    (base / "c_biden" / "a.jpg").write_bytes((ASSETS / "biden/biden.jpg").read_bytes())
    (base / "c_biden" / "mirror.png").write_bytes(_png(np.ascontiguousarray(_rgb("biden/biden.jpg")[:, ::-1])))
    (base / "c_blank.png").write_bytes(_png(np.full((300, 300, 3), 90, np.uint8)))
    (base / "c_text.jpg").write_bytes(b"this is not a photo")
    obama = _rgb("obama/obama.jpg")
    (base / "c_small.jpg").write_bytes(_jpeg(cv2.resize(obama, (obama.shape[1] // 6, obama.shape[0] // 6))))
    (base / "c_blur.jpg").write_bytes(_jpeg(cv2.GaussianBlur(obama, (0, 0), 8)))
    hopper = cv2.resize(_rgb("grace_hopper/grace_hopper.jpg"), (300, 352))
    pair = np.full((352, 620, 3), 128, np.uint8)
    pair[:, :300], pair[:, 320:] = hopper, cv2.resize(_rgb("eileen_collins/astronaut.jpg"), (300, 352))
    (base / "c_two.jpg").write_bytes(_jpeg(pair))
    return base


def _png(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "PNG")
    return out.getvalue()


def _seed_videos(ctx, engine) -> None:
    """Two analysed videos: one with Obama (a different photo than the enrolled one) and an unknown person, one
    with nobody. Tracks are embedded from the photos, as the faces stage would store them."""
    from adpipeline.faces.verify import photo_face
    from adpipeline.tables import Creative, FaceDetection, FaceVideoStatus

    def vector(name: str) -> list[float]:
        face = photo_face(engine, _rgb(name), ctx.settings)
        return [float(x) for x in face.embedding]

    day = dt.date(2026, 10, 2)
    ctx.warehouse.merge_rows(
        "creatives",
        [
            Creative(
                creative_id=c, url=f"https://x/{c}.mp4", media_type="video", first_seen_date=day, last_seen_date=day
            )
            for c in ("vid1", "vid2")
        ],
    )
    ident = {"backend": engine.name, "model_id": engine.model_id}
    ctx.warehouse.merge_rows(
        "face_video_status",
        [
            FaceVideoStatus(creative_id="vid1", status="ok", frames_sampled=5, tracks=2, **ident),
            FaceVideoStatus(creative_id="vid2", status="no_faces", frames_sampled=5, tracks=0, **ident),
        ],
    )
    common = {"n_frames": 3, "det_score": 1.0, "box_size_px": 120, **ident}
    ctx.warehouse.merge_rows(
        "face_detections",
        [
            FaceDetection(track_id="vid1_t0", creative_id="vid1", face_id="f_obama", first_time_s=0.5, last_time_s=2.5,
                          best_time_s=1.5, embedding=vector("obama/obama3.jpg"), best_box=[10, 20, 130, 140], **common),
            FaceDetection(track_id="vid1_t1", creative_id="vid1", face_id="f_astro", first_time_s=1.5, last_time_s=3.5,
                          best_time_s=2.5, embedding=vector("eileen_collins/astronaut.jpg"), **common),
        ],
    )  # fmt: skip


def test_enrol_match_copy_and_records(customer_base, tmp_path, face_settings, dlib_engine) -> None:
    from adpipeline.stages import gallery
    from adpipeline.stages.context import StageContext
    from adpipeline.window import Window

    settings = face_settings(home=tmp_path / "home", gallery_url=str(customer_base))
    window = Window(dt.date(2026, 10, 1), dt.date(2026, 10, 3))
    with StageContext(settings, window, run_id="r1") as ctx:
        first = gallery.enrol(ctx)
        photos = ctx.warehouse.read_table("gallery_photos", order_by="customer_id, photo_key")
        status = {
            (r.customer_id, r.photo_key): (r.status, r.reason if isinstance(r.reason, str) else None)
            for r in photos.itertuples()
        }
        assert status == {
            ("c_biden", "c_biden/a.jpg"): ("enrolled", None),
            ("c_biden", "c_biden/mirror.png"): ("enrolled", None),
            ("c_blank", "c_blank.png"): ("rejected", "no_face"),
            ("c_blur", "c_blur.jpg"): ("rejected", "too_blurred"),
            ("c_hopper", "c_hopper.jpg"): ("enrolled", None),
            ("c_obama", "c_obama.jpg"): ("enrolled", None),
            ("c_small", "c_small.jpg"): ("rejected", "face_too_small"),
            ("c_text", "c_text.jpg"): ("rejected", "not_an_image"),
            ("c_two", "c_two.jpg"): ("rejected", "more_than_one_face"),
        }
        assert set(photos["model_id"]) == {dlib_engine.model_id} and set(photos["backend"]) == {"dlib"}
        templates = ctx.warehouse.read_table("gallery", order_by="customer_id")
        assert list(templates["customer_id"]) == ["c_biden", "c_hopper", "c_obama"]
        assert list(templates["n_photos"]) == [2, 1, 1]
        assert first["processed"] == 9 and first["templates_updated"] == 3

        _seed_videos(ctx, dlib_engine)
        result = gallery.match(ctx)
        appearances = ctx.warehouse.read_table("customer_appearances")
        assert list(
            zip(appearances["customer_id"], appearances["creative_id"], appearances["face_id"], strict=True)
        ) == [("c_obama", "vid1", "f_obama")]
        row = appearances.iloc[0]
        assert row["first_time_s"] == 0.5 and row["last_time_s"] == 2.5
        assert 0 < row["best_distance"] <= row["threshold"] and row["confidence_pct"] > 50
        assert result["records_written"] == 2

        out = Path(settings.resolved_bucket_url) / "gallery_output"
        record = json.loads((out / "20261002" / "vid1.json").read_text())
        names = {f["track_id"]: (f["name"], f["box"]) for f in record["faces"]}
        assert names == {"vid1_t0": ("c_obama", [10, 20, 130, 140]), "vid1_t1": ("unknown", None)}
        assert json.loads((out / "20261002" / "vid2.json").read_text())["faces"] == []
        copies = sorted(p.relative_to(out).as_posix() for p in (out / "customers").rglob("*"))
        assert len(copies) == 2 and copies[0] == "customers/c_obama"
        copied = out / copies[1]
        assert copied.read_bytes() == (customer_base / "c_obama.jpg").read_bytes()
        stamp = copied.stat().st_mtime_ns

    # A second run changes nothing: no photo re-enrolled, no record rewritten, no copy made again.
    with StageContext(settings, window, run_id="r2") as ctx:
        again = gallery.enrol(ctx)
        assert again["processed"] == 0 and again["templates_updated"] == 0
        assert gallery.match(ctx)["records_written"] == 0
        assert copied.stat().st_mtime_ns == stamp

    # Changed bytes are re-enrolled; a removed customer disappears from the gallery and the appearances.
    (customer_base / "c_hopper.jpg").write_bytes(_jpeg(_rgb("grace_hopper/grace_hopper.jpg")[::2, ::2]))
    (customer_base / "c_obama.jpg").unlink()
    with StageContext(settings, window, run_id="r3") as ctx:
        third = gallery.enrol(ctx)
        assert third["processed"] == 1 and third["removed"] == 1 and third["templates_dropped"] == 1
        gallery.match(ctx)
        assert ctx.warehouse.read_table("customer_appearances").empty
        record = json.loads((out / "20261002" / "vid1.json").read_text())
        assert {f["name"] for f in record["faces"]} == {"unknown"}
