"""The speed work keeps results: numpy ResNet == dlib's, cached HOG model == embedded one, the tracker's assignment
(scipy) == the exhaustive search it replaced, keyframe snapping stays within half a sample interval, and the
caller-plus-pool runner == one process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adpipeline.faces import engine as engine_mod
from adpipeline.faces import video
from adpipeline.faces.dlib_resnet import DlibResNet
from adpipeline.faces.engine import DlibEngine, FaceEngineUnavailable, dlib_model_dir

ASSETS = Path(engine_mod.__file__).parents[1] / "demo" / "assets" / "faces"


def _chips(engine: DlibEngine) -> list[np.ndarray]:
    chips = []
    for path in sorted(ASSETS.glob("*/*.jpg")):
        image = Image.open(path).convert("RGB")
        image.thumbnail((800, 800))
        rgb = np.asarray(image)
        chips += [engine.align(rgb, face) for face in engine.detect(rgb)]
    return chips


def test_numpy_resnet_equals_dlibs_own(dlib_engine):
    chips = _chips(dlib_engine)
    assert len(chips) >= 6
    ours = dlib_engine.embed_chips(chips)
    reference = dlib_engine.reference_embed_chips(chips)
    assert ours.dtype == np.float32 and ours.shape == (len(chips), 128)
    assert float(np.abs(ours - reference).max()) < 1e-5
    # batches larger than the internal batch size, and one at a time, give the same vectors
    many = dlib_engine.embed_chips(chips * 3)
    assert float(np.abs(many - np.concatenate([ours] * 3)).max()) < 1e-6
    assert float(np.abs(dlib_engine.embed_chips(chips[:1])[0] - ours[0]).max()) < 1e-6


def test_numpy_resnet_rejects_other_files_and_the_engine_falls_back(tmp_path, monkeypatch):
    other = tmp_path / "not_a_resnet.dat"
    other.write_bytes((dlib_model_dir() / "shape_predictor_5_face_landmarks.dat").read_bytes()[:4096])
    with pytest.raises(ValueError):
        DlibResNet.load(other)
    net = DlibResNet.load(dlib_model_dir() / "dlib_face_recognition_resnet_model_v1.dat")
    with pytest.raises(ValueError, match="150x150"):
        net([np.zeros((10, 10, 3), np.uint8)])
    engine = DlibEngine(use_numpy_resnet=False)
    chips = _chips(engine)[:2]
    assert engine.embed_chips(chips).shape == (2, 128)


def test_hog_model_cache_gives_the_same_detections(tmp_path, monkeypatch, dlib_engine):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = DlibEngine()  # writes the cache
    cached = list((tmp_path / "adpipeline").glob("dlib_frontal_face_detector_*.svm"))
    assert len(cached) == 1
    second = DlibEngine()  # reads it
    rgb = np.asarray(Image.open(ASSETS / "obama" / "obama.jpg").convert("RGB"))
    boxes = [[(f.box, round(f.score, 6)) for f in e.detect(rgb)] for e in (first, second, dlib_engine)]
    assert boxes[0] == boxes[1] == boxes[2] and boxes[0]
    cached[0].write_bytes(b"damaged")
    assert [f.box for f in DlibEngine().detect(rgb)] == [b for b, _ in boxes[0]]  # falls back and rewrites


def _exhaustive_assignment(cost: np.ndarray) -> set[tuple[int, int]]:
    """The tracker's former assignment: every way of pairing the smaller side, the cheapest kept."""
    from itertools import permutations

    matrix = cost if cost.shape[0] <= cost.shape[1] else cost.T
    best = min(
        permutations(range(matrix.shape[1]), matrix.shape[0]), key=lambda c: sum(matrix[i, j] for i, j in enumerate(c))
    )
    pairs = {(i, j) for i, j in enumerate(best)}
    return pairs if cost.shape[0] <= cost.shape[1] else {(j, i) for i, j in pairs}


def test_tracker_assignment_equals_the_exhaustive_search_it_replaced():
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(3)
    for _ in range(300):
        rows, cols = (int(v) for v in rng.integers(1, 7, 2))
        cost = rng.random((rows, cols))
        cost[rng.random((rows, cols)) < 0.3] = 1e6  # gated pairs, as the tracker passes them
        r_new, c_new = linear_sum_assignment(cost)
        new = {(int(r), int(c)) for r, c in zip(r_new, c_new, strict=True)}
        old = _exhaustive_assignment(cost)
        assert sum(cost[p] for p in new) == pytest.approx(sum(cost[p] for p in old))
        assert {p for p in new if cost[p] < 1e6} == {p for p in old if cost[p] < 1e6}  # the links the tracker makes


@pytest.mark.parametrize(("fps", "gop"), [(25, 12), (25, 25), (30, 60), (8, 40)])
def test_samples_are_within_half_an_interval_of_the_requested_times(tmp_path, synth, fps, gop):
    path = synth.write_video(tmp_path / "k.mp4", [], 6.0, (160, 120), fps=fps, gop=gop)
    info: dict[str, object] = {}
    times = [t for t, _, _ in video.sample_frames(str(path), 1.0, 120, 1280, info)]
    assert len(times) == 6 and times == sorted(set(times))
    for k, t in enumerate(times):
        assert abs(t - (k + 0.5)) <= 0.5 + 1e-6, (k, t)
    if gop % fps == 0 and gop // fps == 1:
        assert times == pytest.approx([float(k) for k in range(6)])  # keyframes every second: taken exactly


def test_parallel_runner_equals_one_process(two_people_video, tmp_path, synth, face_settings):
    path, _ = two_people_video
    rotated = synth.write_video(
        tmp_path / "rot.mp4",
        [synth.Appearance("obama", "obama/obama.jpg", 0, 2, (320, 180), (320, 180), 130)],
        2.0,
        (640, 360),
        fps=5,
        rotate=True,
    )
    one = synth.write_video(
        tmp_path / "one.mp4",
        [synth.Appearance("obama", "obama/obama2.jpg", 0, 1, (320, 180), (320, 180), 140)],
        0.04,
        (640, 360),
        fps=25,
    )
    items = [("a", str(path)), ("r", str(rotated)), ("o", str(one)), ("m", str(tmp_path / "missing.mp4"))]
    together = video.process_videos(items, face_settings())
    alone = [video.process_videos([item], face_settings())[0] for item in items]  # as separate mapped chunks
    assert [r.status for r in alone] == [r.status for r in together] == ["ok", "ok", "ok", "missing"]
    assert (alone[1].width, alone[1].height) == (640, 360)
    assert alone[2].frames_sampled == 1 and len(alone[2].tracks) == 1
    for a, b in zip(together, alone, strict=True):
        assert [t.track_id for t in a.tracks] == [t.track_id for t in b.tracks]
        for ta, tb in zip(a.tracks, b.tracks, strict=True):
            assert float(np.abs(ta.embedding - tb.embedding).max()) < 1e-5


def test_runner_raises_a_missing_backend(tmp_path, face_settings):
    settings = face_settings(face_backend="insightface", insightface_model_dir=tmp_path)
    with pytest.raises(FaceEngineUnavailable):
        video.process_videos([("a", "x.mp4"), ("b", "y.mp4")], settings)
