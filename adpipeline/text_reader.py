"""The one text reader: OCR of an image with rapidocr (its ONNX models ship in its wheel), shared by media's
near-duplicate check and the features' offline extractor, below both (it imports neither).

The engine is built once per process (:func:`ocr_engine`, counted in :data:`ENGINE_BUILDS`) and serves grouping and
the extractor alike. :func:`run_ocr` reads an RGB image into lines with their boxes in pixels (:class:`OcrResult`);
:func:`read_text` reads a whole image at :data:`READ_MAX_SIDE` into the stored record (``image_hashes.ocr_text``:
``[[text, confidence, x0, y0, x1, y1], ...]`` as JSON, boxes as shares of the image), and :func:`ocr_result` turns a
stored record back into an :class:`OcrResult`. Callers reach :func:`run_ocr` through this module's attribute, so one
patch of it counts every read (tests/media/test_text_reads.py).
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rapidocr_onnxruntime import RapidOCR

__all__ = [
    "ENGINE_BUILDS",
    "READ_MAX_SIDE",
    "OcrLine",
    "OcrResult",
    "ocr_engine",
    "ocr_record",
    "ocr_result",
    "read_text",
    "run_ocr",
]


@dataclass(frozen=True)
class OcrLine:
    """One detected text box: its text, confidence and axis-aligned box (x0, y0, x1, y1) in pixels."""

    text: str
    score: float
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class OcrResult:
    lines: tuple[OcrLine, ...]
    width: int
    height: int

    @property
    def text(self) -> str:
        """Lines in reading order: boxes on one row joined by spaces, rows by newlines."""
        rows: list[list[OcrLine]] = []
        for line in sorted(self.lines, key=lambda ln: (ln.box[1] + ln.box[3]) / 2):
            centre = (line.box[1] + line.box[3]) / 2
            if rows:
                last = rows[-1][0]
                last_centre, last_height = (last.box[1] + last.box[3]) / 2, last.box[3] - last.box[1]
                if abs(centre - last_centre) < last_height / 2:
                    rows[-1].append(line)
                    continue
            rows.append([line])
        return "\n".join(" ".join(ln.text for ln in sorted(row, key=lambda ln: ln.box[0])) for row in rows)

    @property
    def confidence(self) -> float | None:
        return round(float(np.mean([ln.score for ln in self.lines])), 4) if self.lines else None

    @property
    def area_share(self) -> float:
        if not self.lines:
            return 0.0
        mask = np.zeros((self.height, self.width), dtype=bool)
        for x0, y0, x1, y1 in (ln.box for ln in self.lines):
            mask[max(int(y0), 0) : max(int(math.ceil(y1)), 0), max(int(x0), 0) : max(int(math.ceil(x1)), 0)] = True
        return round(float(mask.mean()), 4)

    @property
    def position(self) -> str | None:
        """Vertical position of the text mass (area-weighted centre), or ``spread`` when it covers top and bottom."""
        if not self.lines:
            return None
        tops = [ln.box[1] / self.height for ln in self.lines]
        bottoms = [ln.box[3] / self.height for ln in self.lines]
        if min(tops) < 0.33 and max(bottoms) > 0.67 and len(self.lines) > 1:
            return "spread"
        weights = [(ln.box[2] - ln.box[0]) * (ln.box[3] - ln.box[1]) for ln in self.lines]
        centre = sum(w * (t + b) / 2 for w, t, b in zip(weights, tops, bottoms, strict=True)) / max(sum(weights), 1e-9)
        return "top" if centre < 1 / 3 else "middle" if centre < 2 / 3 else "bottom"


_ENGINES: dict[int, RapidOCR] = {}
_ENGINE_LOCK = threading.Lock()
ENGINE_BUILDS = 0  # engines built by this process (each loads the ONNX models, 3-4 s): the tests check it stays 1


def ocr_engine(threads: int = 0) -> RapidOCR:
    """The process-wide rapidocr engine (created on first use; its models load from the installed wheel)."""
    with _ENGINE_LOCK:
        engine = _ENGINES.get(threads)
        if engine is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as exc:  # pragma: no cover - a core dependency; the message says what to install
                raise ImportError("reading text needs `pip install rapidocr-onnxruntime`") from exc
            kwargs: dict[str, Any] = {"print_verbose": False}
            if threads > 0:
                kwargs["intra_op_num_threads"] = threads
            engine = _ENGINES[threads] = RapidOCR(**kwargs)
            global ENGINE_BUILDS
            ENGINE_BUILDS += 1
        return engine


def run_ocr(rgb: np.ndarray, *, max_side: int = 1280, threads: int = 0) -> OcrResult:
    """OCR one RGB image; boxes are reported in the input's pixel coordinates."""
    import cv2

    height, width = rgb.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    image = (
        rgb
        if scale == 1.0
        else cv2.resize(rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    )
    # rapidocr expects OpenCV's BGR order for arrays.
    result, _elapsed = ocr_engine(threads)(np.ascontiguousarray(image[:, :, ::-1]))
    lines = []
    for points, text, score in result or ():
        text = " ".join(str(text).split())
        if not text:
            continue
        xs = [p[0] / scale for p in points]
        ys = [p[1] / scale for p in points]
        box = (max(min(xs), 0.0), max(min(ys), 0.0), min(max(xs), float(width)), min(max(ys), float(height)))
        lines.append(OcrLine(text, float(score), box))
    return OcrResult(tuple(lines), width, height)


READ_MAX_SIDE = 640
"""The one resolution a whole image is read at (longest side, px), for grouping and the offline extractor alike: one
stored record per image serves both (media README, "What is read, when")."""


def read_text(rgb: np.ndarray, *, max_side: int = READ_MAX_SIDE, threads: int = 0) -> str:
    """OCR ``rgb`` (H x W x 3, uint8) scaled to ``max_side``: ``[[text, confidence, x0, y0, x1, y1], ...]`` as JSON,
    boxes as shares of the image (3 decimals). ``"[]"`` when there is no text. ``threads``: the process-wide engine's
    onnxruntime threads (``ocr_threads``; the offline extractor passes the same, so one engine serves both)."""
    return ocr_record(run_ocr(rgb, max_side=max_side, threads=threads))


def ocr_record(result: OcrResult) -> str:
    """An OCR result as the stored record (:func:`read_text`'s format)."""
    width, height = max(result.width, 1), max(result.height, 1)
    lines = [
        [
            line.text,
            round(line.score, 3),
            round(line.box[0] / width, 3),
            round(line.box[1] / height, 3),
            round(line.box[2] / width, 3),
            round(line.box[3] / height, 3),
        ]
        for line in result.lines
    ]
    return json.dumps(lines, ensure_ascii=False, separators=(",", ":"))


def ocr_result(record: str, width: int, height: int) -> OcrResult:
    """A stored record back as an OCR result for a ``width`` x ``height`` image (boxes in
    pixels): every line, whatever its confidence, as :func:`read_text` stored it. A record that does not parse reads as
    no lines."""
    lines = []
    try:
        for text, score, x0, y0, x1, y1 in json.loads(record):
            box = (float(x0) * width, float(y0) * height, float(x1) * width, float(y1) * height)
            lines.append(OcrLine(str(text), float(score), box))
    except (ValueError, TypeError):
        lines = []
    return OcrResult(tuple(lines), width, height)
