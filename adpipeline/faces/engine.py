"""Face engines: detect faces, align them, embed them. One Protocol, two backends.

Every engine returns **unit-length float32 embeddings** and the rest of the faces code compares them by Euclidean
distance (on unit vectors that is ``sqrt(2 - 2 cos)``). Vectors carry the engine's ``name`` and ``model_id``; vectors of
different engines live in different spaces and are never compared (each backend has its own threshold).

- :class:`DlibEngine` (default, offline, commercial-use weights): HOG detector, the **5-point** landmark model and the
  128-d ResNet from the ``face-recognition-models`` package (the ResNet run with numpy by ``dlib_resnet``: same
  outputs, ~7x faster than the BLAS-less dlib-bin wheel). The 68-point model in that package is not licensed for
  commercial use and is never loaded.
- :class:`InsightFaceEngine` (opt-in): the buffalo_l ONNX files (SCRFD ``det_10g.onnx`` + ArcFace ``w600k_r50.onnx``)
  from a folder the user fills, run with onnxruntime. Nothing is ever downloaded. The decoding mirrors insightface's
  ``RetinaFace``/``ArcFaceONNX`` model classes, so the ``insightface`` package itself (which drags in opencv-python and
  albumentations) is not needed.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import cv2
import numpy as np

from adpipeline.errors import FaceEngineUnavailable

if TYPE_CHECKING:
    from adpipeline.settings import Settings

__all__ = [
    "DlibEngine",
    "FaceBox",
    "FaceEngine",
    "FaceEngineUnavailable",
    "InsightFaceEngine",
    "get_engine",
]


@dataclass(frozen=True)
class FaceBox:
    """One detected face in the pixel coordinates of the image given to ``detect``.

    ``box`` is (x0, y0, x1, y1), clipped to the image; ``landmarks`` is an (5, 2) float32 array whose meaning is
    engine specific (dlib: eye corners and nose; InsightFace: eye centres, nose tip, mouth corners); ``score`` is the
    detector's confidence on the engine's own scale.
    """

    box: tuple[int, int, int, int]
    landmarks: np.ndarray
    score: float

    @property
    def size_px(self) -> int:
        """The shorter side of the box: what the minimum-face-size setting is compared with."""
        x0, y0, x1, y1 = self.box
        return int(min(x1 - x0, y1 - y0))

    def scaled(self, factor: float, width: int, height: int) -> FaceBox:
        """The same face in an image ``factor`` times larger (used to map detections back to the full frame)."""
        x0, y0, x1, y1 = (v * factor for v in self.box)
        return FaceBox(
            box=_clip_box((x0, y0, x1, y1), width, height),
            landmarks=(self.landmarks * factor).astype(np.float32),
            score=self.score,
        )


@runtime_checkable
class FaceEngine(Protocol):
    """What the video pipeline needs from a face backend."""

    name: str
    model_id: str
    default_threshold: float  # Euclidean distance between unit embeddings under which two faces are one person
    default_min_score: float  # detector score under which a detection is dropped
    dim: int

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        """Faces in an RGB uint8 image (H, W, 3), best score first."""
        ...

    def align(self, rgb: np.ndarray, face: FaceBox) -> np.ndarray:
        """The aligned face chip the embedder wants (RGB uint8), cheap compared with ``embed_chips``."""
        ...

    def embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        """Unit-length float32 embeddings (n, dim) of aligned chips."""
        ...

    def embed(self, rgb: np.ndarray, face: FaceBox) -> np.ndarray:
        """The unit-length float32 embedding (dim,) of one detected face."""
        ...


def _clip_box(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return (
        int(max(0, min(width, round(x0)))),
        int(max(0, min(height, round(y0)))),
        int(max(0, min(width, round(x1)))),
        int(max(0, min(height, round(y1)))),
    )


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def _contiguous_rgb(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}")
    return np.ascontiguousarray(rgb)


# --- dlib -----------------------------------------------------------------------------------------------------------
def dlib_model_dir() -> Path:
    """The folder with the face-recognition-models weights, found without importing that package.

    Importing ``face_recognition_models`` needs ``pkg_resources``, which current setuptools no longer ships.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceEngineUnavailable(
            "the dlib face backend needs the face-recognition-models package "
            "(pip install face-recognition-models==0.3.0)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _frontal_face_detector(dlib: Any) -> Any:
    """dlib's HOG face detector. ``get_frontal_face_detector`` parses the model from text embedded in the library
    (~0.4 s, paid by every worker process); a binary copy saved once in the user's cache folder loads in ~2 ms.
    Any problem with the cache (unwritable folder, damaged file) falls back to the embedded model."""
    import os
    import tempfile

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "adpipeline" / f"dlib_frontal_face_detector_{dlib.__version__}.svm"
    if path.is_file():
        try:
            detector = dlib.fhog_object_detector(str(path))
            if detector.num_detectors == 5:
                return detector
        except RuntimeError:
            pass
    detector = dlib.get_frontal_face_detector()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            detector.save(tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except (OSError, RuntimeError):
        pass
    return detector


class DlibEngine:
    """dlib HOG detector + 5-point landmarks + 128-d ResNet embedding (weights: face-recognition-models 0.3.0).

    ``upsample`` doubles the image that many times before HOG detection: the detector's window is about 80 px, so
    with no upsampling faces smaller than about 70 px (in the image given to ``detect``) are missed; each upsample
    costs about 4x the time. The video pipeline instead controls the detection resolution.
    """

    name = "dlib"
    model_id = "dlib_hog+sp5+resnet_v1"
    dim = 128
    # Chosen from the measurements in adpipeline/faces/README.md (unit-normalised vectors).
    default_threshold = 0.40
    default_min_score = 0.3
    chip_size = 150

    def __init__(self, upsample: int = 0, use_numpy_resnet: bool = True, detector: str = "blazeface") -> None:
        if detector not in ("blazeface", "hog"):
            raise ValueError(f"unknown face detector {detector!r} (blazeface or hog)")
        try:
            import dlib
        except ImportError as exc:  # pragma: no cover - dlib-bin is a core dependency
            raise FaceEngineUnavailable("the dlib face backend needs dlib (pip install dlib-bin)") from exc
        models = dlib_model_dir()
        self._dlib = dlib
        self.upsample = int(upsample)
        self._detector = _frontal_face_detector(dlib)
        # BlazeFace full-range (default): finds turned, covered and small faces HOG misses, at about HOG's cost
        # (bench/bench_face_detector.py); the 5-point predictor then runs from its box, so chips and vectors stay in
        # the same space (model_id unchanged). HOG is the photo fallback for faces that fill the whole picture.
        self.detector = detector
        self._blazeface: Any = None
        if detector == "blazeface":
            from adpipeline.faces.blazeface import BlazeFace

            self._blazeface = BlazeFace(threads=1, min_score=0.5)
            self.default_min_score = BLAZEFACE_MIN_SCORE
        self._shape = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self._resnet_path = models / "dlib_face_recognition_resnet_model_v1.dat"
        self._dlib_resnet: Any = None
        self._cnn: Any = None  # dlib's CNN detector, loaded on first use (photos where HOG finds nothing)
        # The same network run with numpy/BLAS (~7x faster than the BLAS-less dlib-bin wheel, equal outputs); dlib's
        # own implementation is the fallback when the file does not parse as expected.
        self._net: Any = None
        if use_numpy_resnet:
            from adpipeline.faces.dlib_resnet import DlibResNet

            try:
                self._net = DlibResNet.load(self._resnet_path)
            except (ValueError, OSError):
                self._net = None
        if self._net is None:
            self._dlib_resnet = dlib.face_recognition_model_v1(str(self._resnet_path))

    @property
    def detector_id(self) -> str:
        """The detector in use (``model_id`` names the embedding space, which both detectors share)."""
        return "blazeface_full_range" if self._blazeface is not None else "dlib_hog"

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        """Faces, best score first: BlazeFace (default) or HOG, with dlib's 5-point landmarks."""
        if self._blazeface is None:
            return self.detect_hog(rgb)
        rgb = _contiguous_rgb(rgb)
        height, width = rgb.shape[:2]
        faces = []
        for found in self._blazeface.detect(rgb):
            box = _clip_box(found.box, width, height)
            if box[2] - box[0] < 4 or box[3] - box[1] < 4:
                continue
            landmarks = self._landmarks_from_box(rgb, found.box, found.keypoints)
            faces.append(FaceBox(box=box, landmarks=landmarks, score=float(found.score)))
        return faces

    def _landmarks_from_box(
        self, rgb: np.ndarray, box: tuple[float, float, float, float], keypoints: np.ndarray
    ) -> np.ndarray:
        """dlib's 5 points from a BlazeFace box. The predictor was trained on HOG's boxes: same centre, side 0.94 of
        BlazeFace's width (fitted on 120 tuning faces; spread 3-5 % of the side). A face turned in plane by more than
        10 degrees (BlazeFace's eye keypoints) is turned upright in a local patch first, and the points turned back."""
        dlib = self._dlib
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = 0.94 * (box[2] - box[0])
        eye_a, eye_b = keypoints[0], keypoints[1]
        roll = float(np.degrees(np.arctan2(eye_b[1] - eye_a[1], eye_b[0] - eye_a[0])))
        if abs(roll) <= 10.0:
            rect = dlib.rectangle(
                round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2)
            )
            shape = self._shape(rgb, rect)
            return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)
        patch = max(8, int(round(2 * side)))
        matrix = cv2.getRotationMatrix2D((cx, cy), roll, 1.0)
        matrix[:, 2] += np.array([patch / 2 - cx, patch / 2 - cy])
        upright = cv2.warpAffine(rgb, matrix, (patch, patch), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        half = patch / 2
        rect = dlib.rectangle(
            round(half - side / 2), round(half - side / 2), round(half + side / 2), round(half + side / 2)
        )
        shape = self._shape(np.ascontiguousarray(upright), rect)
        points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
        back = cv2.invertAffineTransform(matrix)
        return (points @ back[:, :2].T + back[:, 2]).astype(np.float32)

    def detect_hog(self, rgb: np.ndarray) -> list[FaceBox]:
        """Faces found by dlib's HOG detector (the former default; the photo fallback), with the 5-point landmarks."""
        rgb = _contiguous_rgb(rgb)
        height, width = rgb.shape[:2]
        rects, scores, _ = self._detector.run(rgb, self.upsample, 0.0)
        faces = []
        for rect, score in zip(rects, scores, strict=True):
            shape = self._shape(rgb, rect)
            landmarks = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)
            box = _clip_box((rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1), width, height)
            if box[2] - box[0] < 4 or box[3] - box[1] < 4:
                continue
            faces.append(FaceBox(box=box, landmarks=landmarks, score=float(score)))
        faces.sort(key=lambda f: -f.score)
        return faces

    def detect_cnn(self, rgb: np.ndarray, min_confidence: float = 0.3) -> list[FaceBox]:
        """Faces found by dlib's CNN detector (``mmod_human_face_detector.dat``, face-recognition-models), with the
        same 5-point landmarks. It finds occluded and strongly turned faces HOG misses, at ~50x HOG's time (the
        dlib-bin wheel has no BLAS): used only on photos where HOG found nothing (README, bench detector)."""
        rgb = _contiguous_rgb(rgb)
        if self._cnn is None:
            self._cnn = self._dlib.cnn_face_detection_model_v1(str(dlib_model_dir() / "mmod_human_face_detector.dat"))
        height, width = rgb.shape[:2]
        faces = []
        for found in self._cnn(rgb, 0):
            if found.confidence < min_confidence:
                continue
            rect = found.rect
            shape = self._shape(rgb, rect)
            landmarks = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)
            box = _clip_box((rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1), width, height)
            if box[2] - box[0] >= 4 and box[3] - box[1] >= 4:
                # the CNN's confidence is on another scale than HOG's: report the score cut so callers keep it
                faces.append(
                    FaceBox(box=box, landmarks=landmarks, score=max(float(found.confidence), self.default_min_score))
                )
        faces.sort(key=lambda f: -f.score)
        return faces

    def align(self, rgb: np.ndarray, face: FaceBox) -> np.ndarray:
        dlib = self._dlib
        x0, y0, x1, y1 = face.box
        rect = dlib.rectangle(int(x0), int(y0), int(x1) - 1, int(y1) - 1)
        points = dlib.points()
        for x, y in face.landmarks:
            points.append(dlib.point(round(float(x)), round(float(y))))
        shape = dlib.full_object_detection(rect, points)
        return np.asarray(dlib.get_face_chip(_contiguous_rgb(rgb), shape, size=self.chip_size, padding=0.25))

    def embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._net is not None:
            return _unit(self._net([np.ascontiguousarray(c) for c in chips]))
        return self.reference_embed_chips(chips)

    def reference_embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        """``embed_chips`` computed by dlib itself (``compute_face_descriptor``): slow; the numpy ResNet's reference."""
        if not chips:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._dlib_resnet is None:
            self._dlib_resnet = self._dlib.face_recognition_model_v1(str(self._resnet_path))
        vectors = self._dlib_resnet.compute_face_descriptor([np.ascontiguousarray(c) for c in chips])
        return _unit(np.array([np.asarray(v) for v in vectors]))

    def embed(self, rgb: np.ndarray, face: FaceBox) -> np.ndarray:
        return self.embed_chips([self.align(rgb, face)])[0]


# BlazeFace's sigmoid score under which a detection is dropped (HOG's scale differs: 0.3); README, detector bench.
BLAZEFACE_MIN_SCORE = 0.5


# --- InsightFace (buffalo_l via onnxruntime) --------------------------------------------------------------------------
INSIGHTFACE_FILES = ("det_10g.onnx", "w600k_r50.onnx")
INSIGHTFACE_LICENCE = (
    "The InsightFace pretrained models (buffalo_l) are licensed for non-commercial research purposes only; "
    "using them is the operator's choice and responsibility."
)
# ArcFace's reference landmark positions in a 112x112 chip (insightface.utils.face_align.arcface_dst).
_ARCFACE_DST = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


def check_insightface_dir(model_dir: Path | str | None) -> Path:
    """The model folder, or :class:`FaceEngineUnavailable` naming the folder, the missing files and the licence."""
    if model_dir is None:
        raise FaceEngineUnavailable(
            "ADP_FACE_BACKEND=insightface needs ADP_INSIGHTFACE_MODEL_DIR: a folder holding "
            f"{' and '.join(INSIGHTFACE_FILES)} from the buffalo_l pack. {INSIGHTFACE_LICENCE}"
        )
    folder = Path(model_dir).expanduser()
    missing = [name for name in INSIGHTFACE_FILES if not (folder / name).is_file()]
    if missing:
        raise FaceEngineUnavailable(
            f"InsightFace model folder {str(folder)!r} lacks {', '.join(missing)}. Put det_10g.onnx and "
            "w600k_r50.onnx from the buffalo_l pack there (adpipeline never downloads models). " + INSIGHTFACE_LICENCE
        )
    return folder


def _similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The least-squares similarity (rotation, uniform scale, shift; 2x3) taking ``src`` onto ``dst``: the estimate
    of insightface's ``face_align`` (scikit-image's ``SimilarityTransform``, Umeyama's method), here from OpenCV.

    ``cv2.estimateAffinePartial2D`` with an infinite RANSAC threshold counts every point as an inlier and refines the
    model on all of them (Levenberg-Marquardt on a problem linear in its 4 parameters), which is that least-squares
    fit; it agrees with Umeyama's closed form to ~1e-4 source pixels over the chip (tested on seeded landmarks).
    Landmarks that all coincide have no scale or rotation: they get a pure shift, as the closed form gives."""
    src32 = np.asarray(src, dtype=np.float32).reshape(-1, 2)
    dst32 = np.asarray(dst, dtype=np.float32).reshape(-1, 2)
    matrix, _ = cv2.estimateAffinePartial2D(src32, dst32, ransacReprojThreshold=np.inf)
    if matrix is None:
        shift = dst32.astype(np.float64).mean(0) - src32.astype(np.float64).mean(0)
        return np.array([[1.0, 0.0, shift[0]], [0.0, 1.0, shift[1]]])
    return np.asarray(matrix, dtype=np.float64)


def _nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression, best score first (``cv2.dnn.NMSBoxes``): a box goes when its
    IoU with a kept one exceeds ``iou_threshold``. Boxes are (x0, y0, x1, y1) with inclusive ends, as insightface's
    SCRFD decoding measures them (width ``x1 - x0 + 1``); a box with no extent has area 0. OpenCV drops scores <= 0:
    the detector passes only scores >= half its minimum."""
    if len(scores) == 0:
        return []
    boxes = np.asarray(boxes, dtype=np.float64)
    sizes = np.maximum(boxes[:, 2:4] - boxes[:, 0:2] + 1.0, 0.0)
    keep = cv2.dnn.NMSBoxes(
        [[float(b[0]), float(b[1]), float(wh[0]), float(wh[1])] for b, wh in zip(boxes, sizes, strict=True)],
        [float(v) for v in scores],
        0.0,
        float(iou_threshold),
    )
    return [int(i) for i in np.asarray(keep, dtype=int).reshape(-1)]


class InsightFaceEngine:
    """InsightFace buffalo_l (SCRFD-10G detector + ArcFace R50 512-d) from ``model_dir``, on onnxruntime's CPU provider.

    The folder is checked before anything is imported or loaded; a missing folder, missing files or a missing
    onnxruntime raise :class:`FaceEngineUnavailable` with the fix. Models are never downloaded.
    """

    name = "insightface"
    dim = 512
    # ArcFace unit vectors: 1.0 Euclidean = cosine similarity 0.5 (see the faces README for the choice).
    default_threshold = 1.0
    default_min_score = 0.5
    chip_size = 112
    det_input = (640, 640)
    nms_threshold = 0.4

    def __init__(self, model_dir: Path | str | None, threads: int = 1) -> None:
        folder = check_insightface_dir(model_dir)
        try:
            import onnxruntime
        except ImportError as exc:
            raise FaceEngineUnavailable(
                "the insightface backend needs onnxruntime (pip install 'adpipeline[insightface]')"
            ) from exc
        options = onnxruntime.SessionOptions()
        # One process per core does the parallelism; onnxruntime's own thread pool would oversubscribe.
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        self.model_dir = folder
        self._det = onnxruntime.InferenceSession(str(folder / "det_10g.onnx"), options, providers=providers)
        self._rec = onnxruntime.InferenceSession(str(folder / "w600k_r50.onnx"), options, providers=providers)
        self.model_id = "buffalo_l:" + "+".join(INSIGHTFACE_FILES)
        self._init_detector()
        rec_input = self._rec.get_inputs()[0]
        self._rec_input = rec_input.name
        self.dim = int(self._rec.get_outputs()[0].shape[-1])

    def _init_detector(self) -> None:
        det_input = self._det.get_inputs()[0]
        self._det_input_name = det_input.name
        shape = det_input.shape
        if isinstance(shape[2], int) and isinstance(shape[3], int):
            self.det_input = (int(shape[3]), int(shape[2]))
        outputs = self._det.get_outputs()
        self._det_outputs = [o.name for o in outputs]
        self._batched = len(outputs[0].shape) == 3
        count = len(outputs)
        if count not in (6, 9, 10, 15):
            raise FaceEngineUnavailable(f"{self.model_dir / 'det_10g.onnx'} is not an SCRFD detector ({count} outputs)")
        self._fmc = 3 if count in (6, 9) else 5
        self._strides = [8, 16, 32] if self._fmc == 3 else [8, 16, 32, 64, 128]
        self._num_anchors = 2 if self._fmc == 3 else 1
        self._use_kps = count in (9, 15)
        self._anchor_cache: dict[tuple[int, int, int], np.ndarray] = {}

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        import cv2

        rgb = _contiguous_rgb(rgb)
        height, width = rgb.shape[:2]
        in_w, in_h = self.det_input
        if height / width > in_h / in_w:
            new_h, new_w = in_h, max(1, int(in_h * width / height))
        else:
            new_w, new_h = in_w, max(1, int(in_w * height / width))
        det_scale = new_h / height
        canvas = np.zeros((in_h, in_w, 3), dtype=np.uint8)
        canvas[:new_h, :new_w] = cv2.resize(rgb, (new_w, new_h))
        blob = ((canvas.astype(np.float32) - 127.5) / 128.0).transpose(2, 0, 1)[None]
        outs = self._det.run(self._det_outputs, {self._det_input_name: blob})
        all_scores, all_boxes, all_kps = [], [], []
        for idx, stride in enumerate(self._strides):
            scores = outs[idx][0] if self._batched else outs[idx]
            boxes = (outs[idx + self._fmc][0] if self._batched else outs[idx + self._fmc]) * stride
            key = (in_h // stride, in_w // stride, stride)
            centers = self._anchor_cache.get(key)
            if centers is None:
                grid = np.stack(list(np.mgrid[: key[0], : key[1]][::-1]), axis=-1).astype(np.float32)
                centers = (grid * stride).reshape(-1, 2)
                if self._num_anchors > 1:
                    centers = np.stack([centers] * self._num_anchors, axis=1).reshape(-1, 2)
                self._anchor_cache[key] = centers
            scores = scores.reshape(-1)
            positive = np.where(scores >= self.default_min_score * 0.5)[0]
            if positive.size == 0:
                continue
            c = centers[positive]
            b = boxes.reshape(-1, 4)[positive]
            all_boxes.append(np.stack([c[:, 0] - b[:, 0], c[:, 1] - b[:, 1], c[:, 0] + b[:, 2], c[:, 1] + b[:, 3]], 1))
            all_scores.append(scores[positive])
            if self._use_kps:
                k = (outs[idx + 2 * self._fmc][0] if self._batched else outs[idx + 2 * self._fmc]) * stride
                k = k.reshape(-1, 10)[positive].reshape(-1, 5, 2)
                all_kps.append(k + c[:, None, :])
        if not all_scores:
            return []
        scores = np.concatenate(all_scores)
        boxes = np.concatenate(all_boxes) / det_scale
        kps = np.concatenate(all_kps) / det_scale if all_kps else None
        faces = []
        for i in _nms(boxes, scores, self.nms_threshold):
            if kps is not None:
                landmarks = kps[i].astype(np.float32)
            else:  # detectors without keypoints: a crude frontal template inside the box
                x0, y0, x1, y1 = boxes[i]
                landmarks = (np.array([x0, y0]) + _ARCFACE_DST / 112.0 * np.array([x1 - x0, y1 - y0])).astype(
                    np.float32
                )
            box = _clip_box(tuple(boxes[i]), width, height)
            if box[2] - box[0] < 4 or box[3] - box[1] < 4:
                continue
            faces.append(FaceBox(box=box, landmarks=landmarks, score=float(scores[i])))
        return faces

    def align(self, rgb: np.ndarray, face: FaceBox) -> np.ndarray:
        import cv2

        matrix = _similarity_transform(face.landmarks, _ARCFACE_DST)
        return cv2.warpAffine(_contiguous_rgb(rgb), matrix, (self.chip_size, self.chip_size), borderValue=0.0)

    def embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, self.dim), dtype=np.float32)
        blob = (np.stack(chips).astype(np.float32) - 127.5) / 127.5
        out = [
            self._rec.run(None, {self._rec_input: blob[i : i + 1].transpose(0, 3, 1, 2)})[0] for i in range(len(blob))
        ]
        return _unit(np.concatenate(out, axis=0).reshape(len(chips), -1))

    def embed(self, rgb: np.ndarray, face: FaceBox) -> np.ndarray:
        return self.embed_chips([self.align(rgb, face)])[0]


def get_engine(settings: Settings) -> FaceEngine:
    """The engine named by ``settings.face_backend`` (raises :class:`FaceEngineUnavailable` with the fix)."""
    if settings.face_backend == "insightface":
        return InsightFaceEngine(settings.insightface_model_dir)
    return DlibEngine(
        upsample=getattr(settings, "face_detect_upsample", 0), detector=getattr(settings, "face_detector", "blazeface")
    )


def engine_info(engine: Any) -> tuple[str, str]:
    """(backend name, model id): what every stored vector is tagged with."""
    return str(engine.name), str(engine.model_id)
