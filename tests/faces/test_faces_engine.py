"""Face engines: dlib on the public-domain photos; the InsightFace adapter's errors and wiring (tiny ONNX models)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from adpipeline.faces import engine as engine_mod
from adpipeline.faces.engine import FaceEngine, FaceEngineUnavailable, InsightFaceEngine, get_engine
from tests.locked import locked_import

ASSETS = Path(engine_mod.__file__).parents[1] / "demo" / "assets" / "faces"


def _photo(rel: str, max_side: int = 800) -> np.ndarray:
    image = Image.open(ASSETS / rel).convert("RGB")
    image.thumbnail((max_side, max_side))
    return np.asarray(image)


def test_dlib_same_person_close_different_person_far(dlib_engine):
    assert isinstance(dlib_engine, FaceEngine)
    vectors = {}
    for rel in ("obama/obama.jpg", "obama/obama2.jpg", "biden/biden.jpg", "grace_hopper/grace_hopper.jpg"):
        rgb = _photo(rel)
        faces = [f for f in dlib_engine.detect(rgb) if f.score >= dlib_engine.default_min_score]
        assert len(faces) == 1, rel
        assert faces[0].landmarks.shape == (5, 2)
        vectors[rel] = dlib_engine.embed(rgb, faces[0])
        assert vectors[rel].dtype == np.float32 and vectors[rel].shape == (128,)
        assert abs(float(np.linalg.norm(vectors[rel])) - 1) < 1e-5
    thr = dlib_engine.default_threshold
    assert np.linalg.norm(vectors["obama/obama.jpg"] - vectors["obama/obama2.jpg"]) < thr
    assert np.linalg.norm(vectors["obama/obama.jpg"] - vectors["biden/biden.jpg"]) > thr
    assert np.linalg.norm(vectors["grace_hopper/grace_hopper.jpg"] - vectors["biden/biden.jpg"]) > thr


def test_dlib_score_cut_drops_the_false_face_on_the_astronaut_suit(dlib_engine):
    faces = dlib_engine.detect(_photo("eileen_collins/astronaut.jpg"))
    kept = [f for f in faces if f.score >= dlib_engine.default_min_score]
    assert len(kept) == 1 and kept[0].box[1] < 200


def test_the_68_point_model_is_never_loaded():
    source = Path(engine_mod.__file__).read_text()
    assert "68_face" not in source and "shape_predictor_5_face_landmarks" in source


def test_get_engine_defaults_to_dlib(face_settings):
    engine = get_engine(face_settings())
    assert engine.name == "dlib" and engine.default_threshold == pytest.approx(0.40)


def test_insightface_missing_folder_or_files_say_where_and_the_licence(tmp_path):
    with pytest.raises(FaceEngineUnavailable, match="ADP_INSIGHTFACE_MODEL_DIR"):
        InsightFaceEngine(None)
    with pytest.raises(FaceEngineUnavailable) as info:
        InsightFaceEngine(tmp_path / "nope")
    message = str(info.value)
    assert str(tmp_path / "nope") in message and "det_10g.onnx" in message and "non-commercial" in message
    (tmp_path / "det_10g.onnx").write_bytes(b"")
    with pytest.raises(FaceEngineUnavailable, match="w600k_r50.onnx") as info:
        InsightFaceEngine(tmp_path)
    assert "det_10g.onnx," not in str(info.value)  # only the missing file is named as missing


# --- wiring with tiny generated ONNX models -------------------------------------------------------------------------
def _tiny_models(folder: Path) -> None:
    onnx = locked_import("onnx")
    from onnx import TensorProto, helper, numpy_helper

    size = 640
    outputs, nodes, names = [], [], []
    for kind, width in (("score", 1), ("bbox", 4), ("kps", 10)):
        for stride in (8, 16, 32):
            n = (size // stride) ** 2 * 2
            value = np.zeros((n, width), np.float32)
            if stride == 32:
                anchor = (5 * (size // 32) + 5) * 2  # grid cell (row 5, col 5): centre (160, 160)
                if kind == "score":
                    value[anchor] = 0.9
                elif kind == "bbox":
                    value[anchor] = 2.0  # 64 px each way: a 128 px box
                else:
                    value[anchor] = [-0.6, -0.4, 0.6, -0.4, 0.0, 0.1, -0.5, 0.6, 0.5, 0.6]
            name = f"{kind}_{stride}"
            names.append(name)
            nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name + "_v")))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, width]))
    det_in = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, size, size])
    det = helper.make_model(
        helper.make_graph(nodes, "scrfd_stub", [det_in], outputs), opset_imports=[helper.make_opsetid("", 13)]
    )
    det.ir_version = 8
    onnx.save(det, folder / "det_10g.onnx")

    weights = np.random.default_rng(0).normal(size=(3, 512)).astype(np.float32)
    rec = helper.make_model(
        helper.make_graph(
            [
                helper.make_node("ReduceMean", ["data"], ["pooled"], axes=[2, 3], keepdims=0),
                helper.make_node("MatMul", ["pooled", "w"], ["fc1"]),
            ],
            "arcface_stub",
            [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 112, 112])],
            [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 512])],
            initializer=[numpy_helper.from_array(weights, "w")],
        ),
        opset_imports=[helper.make_opsetid("", 13)],
    )
    rec.ir_version = 8
    onnx.save(rec, folder / "w600k_r50.onnx")


def test_insightface_adapter_wiring_with_tiny_models(tmp_path, face_settings):
    _tiny_models(tmp_path)
    engine = get_engine(face_settings(face_backend="insightface", insightface_model_dir=tmp_path))
    assert isinstance(engine, InsightFaceEngine) and isinstance(engine, FaceEngine) and engine.dim == 512
    image = np.zeros((640, 640, 3), np.uint8)
    image[:, :, 0] = 200
    faces = engine.detect(image)
    assert len(faces) == 1
    assert faces[0].box == (96, 96, 224, 224) and faces[0].score == pytest.approx(0.9)
    assert faces[0].landmarks[0] == pytest.approx([160 - 19.2, 160 - 12.8])
    # a frame twice as large: the detector input is letterboxed, results come back in frame pixels
    big = np.zeros((1280, 1280, 3), np.uint8)
    assert engine.detect(big)[0].box == (192, 192, 448, 448)
    red = engine.embed(image, faces[0])
    image[:, :, 2] = 200
    purple = engine.embed(image, faces[0])
    assert red.shape == (512,) and red.dtype == np.float32 and abs(float(np.linalg.norm(red)) - 1) < 1e-5
    assert float(np.linalg.norm(red - purple)) > 0.05
    assert engine.align(image, faces[0]).shape == (112, 112, 3)


# --- InsightFace's NMS and alignment are OpenCV calls: equal to the numpy code they replaced --------------------------
def _numpy_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """The adapter's former NMS (insightface's own: inclusive box ends, a box goes when its IoU > the threshold)."""
    order = scores.argsort()[::-1]
    keep: list[int] = []
    areas = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    while order.size:
        i = int(order[0])
        keep.append(i)
        xx0 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy0 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx1 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy1 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.maximum(0.0, xx1 - xx0 + 1) * np.maximum(0.0, yy1 - yy0 + 1)
        order = order[1:][inter / (areas[i] + areas[order[1:]] - inter) <= iou_threshold]
    return keep


def _umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The adapter's former alignment: Umeyama's closed-form least-squares similarity (scikit-image's estimate)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    src_c, dst_c = src - src.mean(0), dst - dst.mean(0)
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.array([1.0, -1.0 if np.linalg.det(cov) < 0 else 1.0])
    rotation = u @ np.diag(d) @ vt
    scale = (s * d).sum() / ((src_c**2).sum() / len(src))
    return np.c_[scale * rotation, dst.mean(0) - scale * rotation @ src.mean(0)]


def test_insightface_nms_equals_the_numpy_nms_it_replaced():
    rng = np.random.default_rng(11)
    kept = 0
    for k in range(600):
        n = int(rng.integers(1, 30))
        corner = rng.uniform(0, 600, (n, 2))
        boxes = np.c_[corner, corner + rng.uniform(4, 150, (n, 2))].astype(np.float32)
        if k % 2:  # near-duplicates around one face, as neighbouring anchors give
            boxes[1:] = boxes[0] + rng.normal(0, 6, (n - 1, 4)).astype(np.float32)
            boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 4)
        scores = rng.uniform(0.25, 1.0, n).astype(np.float32)
        iou = (0.3, 0.4, 0.5)[k % 3]
        assert engine_mod._nms(boxes, scores, iou) == _numpy_nms(boxes, scores, iou)
        kept += len(_numpy_nms(boxes, scores, iou))
    assert 600 < kept < 600 * 15  # suppression happened, and not everywhere
    assert engine_mod._nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.4) == []


def test_insightface_alignment_equals_the_umeyama_estimate_it_replaced():
    dst = engine_mod._ARCFACE_DST
    chip_grid = np.c_[np.mgrid[0:112, 0:112].reshape(2, -1).T, np.ones(112 * 112)]
    rng = np.random.default_rng(12)
    for k in range(300):
        angle, scale = rng.uniform(-np.pi, np.pi), rng.uniform(0.3, 5.0)
        turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        src = dst @ turn.T * scale + rng.uniform(0, 1500, 2) + rng.normal(0, 0.1 * 36 * scale, (5, 2))
        mirrored = k % 5 == 0
        if mirrored:  # left and right swapped (no detector gives that): the fit is poor, OpenCV's refinement looser
            src[:, 0] = 2000 - src[:, 0]
        src = src.astype(np.float32)
        new, old = engine_mod._similarity_transform(src, dst), _umeyama(src, dst)
        # where each chip pixel is read from in the frame, new vs old
        shift = np.abs(chip_grid @ cv2.invertAffineTransform(new).T - chip_grid @ cv2.invertAffineTransform(old).T)
        assert shift.max() < (1e-2 if mirrored else 1e-4)  # measured: 6e-3 and 2e-5 px
    same = np.full((5, 2), 40.0, np.float32)  # coinciding points: a pure shift
    assert engine_mod._similarity_transform(same, dst) == pytest.approx(
        np.c_[np.eye(2), dst.mean(0) - same.mean(0)], abs=1e-5
    )
