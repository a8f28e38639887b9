"""Join the detections of consecutive samples of one video into tracks (one person, one stretch of screen time).

Linking is by position (centre shift and size change gated between samples) and appearance (normalised correlation of
the aligned face chips, which costs microseconds); embeddings, the expensive part (~100 ms a face with dlib), are
computed only for a few samples per track and then verify it: when two embedded samples of one track are further apart
than the identity threshold, the track is split where the identity changes (found by bisection). Each track ends with
one quality-weighted embedding and one best crop.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import cv2
import numpy as np

from adpipeline.faces.engine import FaceEngine

__all__ = ["Detection", "Track", "Tracker", "chip_signature", "face_quality"]

# Gates between a track's last detection and a new one (measured on the synthetic and composited videos; README).
MAX_CENTRE_SHIFT = 1.0  # centre distance / face size
MAX_SIZE_RATIO = 1.8
MIN_CHIP_CORRELATION = 0.35


@dataclass
class Detection:
    """One face in one sampled frame. ``box`` is in the work frame; ``size_px`` in the video's own pixels."""

    sample_index: int
    time_s: float
    box: tuple[int, int, int, int]
    size_px: int
    video_box: tuple[int, int, int, int]
    score: float
    quality: float
    chip: np.ndarray = field(repr=False)
    crop: np.ndarray = field(repr=False)
    signature: np.ndarray = field(repr=False)
    embedding: np.ndarray | None = field(default=None, repr=False)

    @property
    def centre(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2.0, (y0 + y1) / 2.0

    @property
    def work_size(self) -> float:
        x0, y0, x1, y1 = self.box
        return float(max(1, min(x1 - x0, y1 - y0)))


@dataclass
class Track:
    """One person's stretch in one video: what the ``face_detections`` table stores (plus the crop bytes)."""

    track_id: str
    creative_id: str
    first_time_s: float
    last_time_s: float
    best_time_s: float
    n_frames: int
    det_score: float  # mean detector score over the track's samples
    box_size_px: int  # face size (shorter box side, video pixels) in the best sample
    quality: float  # quality of the best sample (0..1): the clustering keeps the crop of the best track
    embedding: np.ndarray  # unit float32, quality-weighted mean of the embedded samples
    crop_jpeg: bytes
    n_embedded: int = 0
    best_box: tuple[int, int, int, int] = (0, 0, 0, 0)  # (x0, y0, x1, y1) in video pixels, best sample

    def __repr__(self) -> str:  # never print embeddings into logs
        return (
            f"Track({self.track_id!r}, {self.first_time_s:.1f}-{self.last_time_s:.1f}s, "
            f"n_frames={self.n_frames}, size={self.box_size_px}px)"
        )


def chip_signature(chip: np.ndarray) -> np.ndarray:
    """A 24x24 zero-mean unit-norm grey thumbnail of an aligned chip: cheap appearance for linking."""
    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (24, 24), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    small -= small.mean()
    return small / max(float(np.linalg.norm(small)), 1e-6)


def face_quality(chip: np.ndarray, size_px: int, score: float, score_scale: float) -> float:
    """0..1: larger, sharper, more confidently detected faces score higher (used for weights and the best crop)."""
    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    sharpness = float(cv2.Laplacian(grey, cv2.CV_32F).var())
    size_term = min(1.0, size_px / 112.0)
    sharp_term = sharpness / (sharpness + 100.0)
    score_term = max(score, 0.0) / (max(score, 0.0) + score_scale)
    return float(size_term * sharp_term * score_term)


@dataclass
class _Tracklet:
    detections: list[Detection] = field(default_factory=list)

    @property
    def last(self) -> Detection:
        return self.detections[-1]


class Tracker:
    """Feed ``update`` with each sample's detections in time order, then call ``finish``."""

    def __init__(self, engine: FaceEngine, threshold: float, embeds_per_track: int = 3, max_gap: int = 1) -> None:
        self.engine = engine
        self.threshold = threshold
        self.embeds_per_track = max(1, embeds_per_track)
        self.max_gap = max_gap
        self._active: list[_Tracklet] = []
        self._done: list[_Tracklet] = []
        self.embeddings_computed = 0

    def update(self, sample_index: int, detections: list[Detection]) -> None:
        still_active = []
        for tracklet in self._active:
            if sample_index - tracklet.last.sample_index > self.max_gap + 1:
                self._done.append(tracklet)
            else:
                still_active.append(tracklet)
        self._active = still_active
        matched_dets: set[int] = set()
        if self._active and detections:
            cost = np.full((len(self._active), len(detections)), np.inf)
            for i, tracklet in enumerate(self._active):
                last = tracklet.last
                for j, det in enumerate(detections):
                    size = max(last.work_size, det.work_size)
                    shift = np.hypot(last.centre[0] - det.centre[0], last.centre[1] - det.centre[1]) / size
                    ratio = max(last.work_size, det.work_size) / min(last.work_size, det.work_size)
                    corr = float(last.signature @ det.signature)
                    if shift <= MAX_CENTRE_SHIFT and ratio <= MAX_SIZE_RATIO and corr >= MIN_CHIP_CORRELATION:
                        cost[i, j] = shift + (1.0 - corr)
            # Imported here, at the first frame with both open tracks and detections: once per process (~0.5 s).
            from scipy.optimize import linear_sum_assignment

            rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e6))
            for i, j in zip(rows, cols, strict=True):
                if np.isfinite(cost[i, j]):
                    self._active[i].detections.append(detections[j])
                    matched_dets.add(int(j))
        for j, det in enumerate(detections):
            if j not in matched_dets:
                self._active.append(_Tracklet([det]))

    # --- verification and summary ------------------------------------------------------------------------------------
    def _embed(self, detections: list[Detection]) -> None:
        todo = [d for d in detections if d.embedding is None]
        if not todo:
            return
        vectors = self.engine.embed_chips([d.chip for d in todo])
        self.embeddings_computed += len(todo)
        for det, vector in zip(todo, vectors, strict=True):
            det.embedding = vector

    def _distance(self, a: Detection, b: Detection) -> float:
        assert a.embedding is not None and b.embedding is not None
        return float(np.linalg.norm(a.embedding - b.embedding))

    def _split(self, detections: list[Detection], depth: int = 0) -> list[list[Detection]]:
        """Split a positional tracklet wherever the identity changes (first vs last, then bisection)."""
        if len(detections) == 1 or depth > 8:
            return [detections]
        first, last = detections[0], detections[-1]
        self._embed([first, last])
        if self._distance(first, last) <= self.threshold:
            return [detections]
        lo, hi = 0, len(detections) - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            self._embed([detections[mid]])
            if self._distance(detections[lo], detections[mid]) > self.threshold:
                hi = mid
            else:
                lo = mid
        return self._split(detections[: lo + 1], depth + 1) + self._split(detections[hi:], depth + 1)

    def finish(self, creative_id: str) -> list[Track]:
        """Close all tracks; number them by first appearance (then position) so ids are deterministic."""
        tracklets = self._done + self._active
        self._done, self._active = [], []
        parts: list[list[Detection]] = []
        for tracklet in tracklets:
            parts.extend(self._split(tracklet.detections))
        parts.sort(key=lambda dets: (dets[0].sample_index, dets[0].box[0], dets[0].box[1]))
        tracks = []
        for n, dets in enumerate(parts):
            by_quality = sorted(dets, key=lambda d: (-d.quality, d.sample_index))
            chosen = [d for d in dets if d.embedding is not None]
            for det in by_quality:
                if len(chosen) >= self.embeds_per_track:
                    break
                if det.embedding is None:
                    chosen.append(det)
            self._embed(chosen)
            embedded = [d for d in dets if d.embedding is not None]
            weights = np.array([max(d.quality, 1e-3) for d in embedded], dtype=np.float64)
            vectors = [d.embedding for d in embedded if d.embedding is not None]  # all of them: typed for mypy
            mean = (np.stack(vectors).astype(np.float64) * weights[:, None]).sum(0)
            mean /= max(float(np.linalg.norm(mean)), 1e-12)
            best = by_quality[0]
            ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(best.crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
            tracks.append(
                Track(
                    track_id=f"{creative_id}_t{n}",
                    creative_id=creative_id,
                    first_time_s=round(dets[0].time_s, 3),
                    last_time_s=round(dets[-1].time_s, 3),
                    best_time_s=round(best.time_s, 3),
                    n_frames=len(dets),
                    det_score=round(float(np.mean([d.score for d in dets])), 4),
                    box_size_px=int(best.size_px),
                    quality=round(best.quality, 4),
                    embedding=mean.astype(np.float32),
                    crop_jpeg=jpeg.tobytes() if ok else b"",
                    n_embedded=len(embedded),
                    best_box=best.video_box,
                )
            )
        return tracks


def embedding_digest(vector: np.ndarray) -> str:
    """A short digest of a vector, for logs and tests that must not print the vector itself."""
    return hashlib.sha256(np.asarray(vector, dtype=np.float32).tobytes()).hexdigest()[:12]
