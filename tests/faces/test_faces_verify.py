"""Photo-vs-video verification: answers, statuses for bad input, orientation, size and several faces."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adpipeline.faces.verify import Verification, verify

ASSETS = Path(__file__).resolve().parents[2] / "adpipeline" / "demo" / "assets" / "faces"


def _jpeg(rgb: np.ndarray, exif_orientation: int | None = None, quality: int = 90) -> bytes:
    img = Image.fromarray(rgb)
    out = io.BytesIO()
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        img.save(out, "JPEG", quality=quality, exif=exif.tobytes())
    else:
        img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _photo(name: str) -> np.ndarray:
    return np.asarray(Image.open(ASSETS / name).convert("RGB"))


@pytest.fixture(scope="module")
def obama_video(tmp_path_factory, synth) -> Path:
    apps = [synth.Appearance("obama", "obama/obama.jpg", 0, 4, (200, 180), (240, 170), 120)]
    return synth.write_video(tmp_path_factory.mktemp("verify") / "obama.mp4", apps, 4.0, (640, 360), fps=5)


def test_same_person_other_photo_matches(obama_video, face_settings, dlib_engine):
    result = verify((ASSETS / "obama/obama2.jpg").read_bytes(), obama_video, face_settings(), engine=dlib_engine)
    assert isinstance(result, Verification)
    assert result.status == "ok" and result.face_in_image and result.face_in_video
    assert result.matched and result.distance is not None and result.distance <= result.threshold
    assert result.confidence_pct is not None and result.confidence_pct > 90
    assert result.frames_checked == 4 and result.best_frame_time_s is not None
    assert result.backend == "dlib" and result.model == dlib_engine.model_id and result.far == 0.01


def test_other_person_does_not_match(obama_video, face_settings, dlib_engine):
    result = verify(ASSETS / "grace_hopper/grace_hopper.jpg", obama_video, face_settings(), engine=dlib_engine)
    assert result.status == "ok" and not result.matched
    assert result.distance > result.threshold and result.confidence_pct < 10


def test_exif_orientation_and_sideways_photo(obama_video, face_settings, dlib_engine, hog_engine):
    rgb = _photo("obama/obama2.jpg")
    # Stored turned a quarter, with EXIF orientation 6 (display: rotate 90 clockwise) that turns it back.
    turned = np.ascontiguousarray(np.rot90(rgb, k=1))
    with_exif = verify(_jpeg(turned, exif_orientation=6), obama_video, face_settings(), engine=dlib_engine)
    assert with_exif.matched and with_exif.image_rotation == 0
    assert with_exif.image_size == (rgb.shape[1], rgb.shape[0])
    # The same pixels without the EXIF tag: found by turning the photo.
    # BlazeFace finds the sideways face as it is (its eye keypoints turn it upright for the landmarks); HOG only
    # after the photo is turned.
    sideways = verify(_jpeg(turned), obama_video, face_settings(), engine=dlib_engine)
    assert sideways.matched and sideways.image_rotation == 0
    sideways = verify(_jpeg(turned), obama_video, face_settings(face_detector="hog"), engine=hog_engine)
    assert sideways.matched and sideways.image_rotation in (90, 270)


def test_very_large_photo_is_downscaled(obama_video, face_settings, dlib_engine):
    import cv2

    rgb = _photo("obama/obama2.jpg")
    big = cv2.resize(rgb, (rgb.shape[1] * 6, rgb.shape[0] * 6), interpolation=cv2.INTER_LINEAR)  # ~27 Mpx
    result = verify(_jpeg(big, quality=70), obama_video, face_settings(), engine=dlib_engine)
    assert result.matched
    assert max(result.image_size) <= face_settings().verify_image_max_side


def test_several_faces_uses_the_largest_and_counts(obama_video, face_settings, dlib_engine):
    import cv2

    obama = _photo("obama/obama2.jpg")
    hopper = cv2.resize(_photo("grace_hopper/grace_hopper.jpg"), (256, 300))
    canvas = np.full((obama.shape[0], obama.shape[1] + 300, 3), 200, np.uint8)
    canvas[:, : obama.shape[1]] = obama
    canvas[50:350, obama.shape[1] + 22 : obama.shape[1] + 278] = hopper
    result = verify(_jpeg(canvas), obama_video, face_settings(), engine=dlib_engine)
    assert result.faces_in_image == 2 and result.matched


def test_no_face_and_bad_inputs_are_statuses(obama_video, tmp_path, face_settings, dlib_engine, synth):
    settings = face_settings()
    blank = _jpeg(np.full((400, 400, 3), 128, np.uint8))
    no_face = verify(blank, obama_video, settings, engine=dlib_engine)
    assert no_face.status == "no_face_in_image" and not no_face.face_in_image and no_face.face_in_video
    assert not no_face.matched and no_face.confidence_pct is None

    photo = (ASSETS / "obama/obama2.jpg").read_bytes()
    for content, status in [(b"", "bad_image"), (b"GIF89a garbage", "bad_image"), (photo[: len(photo) // 3], None)]:
        result = verify(content, obama_video, settings, engine=dlib_engine)
        if status:
            assert result.status == status and result.reason
        else:  # a truncated JPEG decodes partly (grey bottom) or fails with a status; it never raises
            assert result.status in ("ok", "bad_image", "no_face_in_image")

    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(5000))
    bad = verify(photo, corrupt, settings, engine=dlib_engine)
    assert bad.status == "bad_video" and bad.face_in_image and not bad.face_in_video
    missing = verify(photo, tmp_path / "nope.mp4", settings, engine=dlib_engine)
    assert missing.status == "bad_video" and "missing" in missing.reason

    empty_video = synth.write_video(tmp_path / "empty.mp4", [], 2.0, (320, 180), fps=5)
    nobody = verify(photo, empty_video, settings, engine=dlib_engine)
    assert nobody.status == "no_face_in_video" and nobody.frames_checked == 2 and not nobody.matched


def test_rotated_and_sideways_videos(tmp_path, synth, face_settings, dlib_engine):
    apps = [synth.Appearance("obama", "obama/obama.jpg", 0, 2, (200, 180), (200, 180), 120)]
    photo = (ASSETS / "obama/obama2.jpg").read_bytes()
    rotated = synth.write_video(tmp_path / "rot.mp4", apps, 2.0, (640, 360), fps=5, rotate=True)
    sideways = synth.write_video(tmp_path / "side.mp4", apps, 2.0, (640, 360), fps=5, rotate=True, display_matrix=False)
    for path in (rotated, sideways):
        result = verify(photo, path, face_settings(), engine=dlib_engine)
        assert result.status == "ok" and result.matched, (path.name, result)


def test_cnn_fallback_finds_a_masked_face_hog_misses(face_settings, hog_engine, dlib_engine, synth) -> None:
    """A mask over mouth and chin (the labelled set's occlusion family, seed 0): HOG finds nothing, upright or
    turned; with ``photo_cnn_fallback`` dlib's CNN detector finds it; BlazeFace (the default) finds it alone."""
    import cv2

    from adpipeline.faces.verify import photo_face

    crop, frac = synth.portrait("obama/obama2.jpg")
    masked = crop.copy()
    h, w = masked.shape[:2]
    face_w, cx, cy = frac * w, w / 2, 0.42 * h
    cv2.rectangle(
        masked, (int(cx - 0.45 * face_w), int(cy + 0.12 * face_w)), (int(cx + 0.45 * face_w), int(cy + 0.6 * face_w)),
        (230, 230, 235), -1,
    )  # fmt: skip
    hog = face_settings(face_detector="hog", photo_cnn_fallback=False)
    assert photo_face(hog_engine, masked, hog) is None
    for engine, settings in (
        (hog_engine, face_settings(face_detector="hog", photo_cnn_fallback=True)),
        (dlib_engine, face_settings()),
    ):
        found = photo_face(engine, masked, settings)
        assert found is not None and found.faces == 1 and found.rotation == 0
        x0, y0, x1, y1 = found.box
        assert x0 < cx < x1 and y0 < cy < y1
