"""Calibrated confidence for face comparisons: distance -> probability of "same person", and FAR thresholds.

The constants below were fitted offline by ``bench/bench_face_identity.py calibrate`` on the *tuning* part of the
labelled set (``bench/face_labelled.py``) and belong to one model id each: a vector of another model gets no
calibrated confidence (``calibration_for`` returns None) rather than a number fitted for a different space.

- ``confidence(d) = 1 / (1 + exp(-(a + b * d)))`` is a logistic fit of same (1) / different (0) pairs on the
  Euclidean distance between unit embeddings (photo vs. track mean), with classes weighted equally, so 50 % is
  where a same pair and a different pair are equally likely (a prior of one half).
- ``thresholds[far]`` is the largest distance at which the share of *different* pairs accepted on the tuning set
  stays at or under ``far`` (with a floor of one accepted pair per 1/far pairs, so the quantile is not the minimum of
  a small sample).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["CALIBRATIONS", "CALIBRATION_FILE", "Calibration", "calibration_for", "fit_calibration", "to_json"]


@dataclass(frozen=True)
class Calibration:
    """A fitted distance -> confidence map and FAR thresholds for one embedding model."""

    model_id: str
    a: float
    b: float
    thresholds: dict[float, float] = field(default_factory=dict)  # target FAR -> distance threshold
    n_same: int = 0
    n_different: int = 0
    fitted_on: str = ""

    def confidence(self, distance: float) -> float:
        """Probability (0..1) that the two faces are one person."""
        z = self.a + self.b * float(distance)
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)

    def distance_at(self, confidence: float) -> float:
        """The distance at which ``confidence`` (0..1) is reached; nearer pairs have more (``b`` < 0)."""
        if self.b >= 0:
            raise ValueError(f"calibration of {self.model_id} does not fall with distance (b = {self.b})")
        p = min(max(float(confidence), 1e-9), 1 - 1e-9)
        return (math.log(p / (1 - p)) - self.a) / self.b

    def decision_threshold(self, far: float, min_confidence: float) -> float:
        """What a match is decided with: the FAR threshold, tightened so that nothing under ``min_confidence``
        (0..1) is called a match. A pair is matched exactly when distance <= this, so the answer and its confidence
        always agree."""
        return min(self.threshold(far), self.distance_at(min_confidence))

    def threshold(self, far: float) -> float:
        """The distance threshold for a false-accept rate: the fitted one, else interpolated on log(FAR)."""
        if far in self.thresholds:
            return self.thresholds[far]
        fars = sorted(self.thresholds)
        if not fars:
            raise ValueError(f"no thresholds fitted for {self.model_id}")
        if far <= fars[0]:
            return self.thresholds[fars[0]]
        if far >= fars[-1]:
            return self.thresholds[fars[-1]]
        logs = [math.log(f) for f in fars]
        return float(np.interp(math.log(far), logs, [self.thresholds[f] for f in fars]))


CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


def _load(path: Path) -> dict[str, Calibration]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return {
        model_id: Calibration(
            model_id=model_id,
            a=float(entry["a"]),
            b=float(entry["b"]),
            thresholds={float(k): float(v) for k, v in entry["thresholds"].items()},
            n_same=int(entry.get("n_same", 0)),
            n_different=int(entry.get("n_different", 0)),
            fitted_on=str(entry.get("fitted_on", "")),
        )
        for model_id, entry in data.items()
    }


def to_json(calibration: Calibration) -> dict[str, object]:
    """The JSON entry ``bench/bench_face_identity.py calibrate --write`` stores for one model id."""
    return {
        "a": calibration.a,
        "b": calibration.b,
        "thresholds": {str(k): v for k, v in sorted(calibration.thresholds.items(), reverse=True)},
        "n_same": calibration.n_same,
        "n_different": calibration.n_different,
        "fitted_on": calibration.fitted_on,
    }


# Fitted by `bench/bench_face_identity.py calibrate --write` on the tuning part of the labelled set, one entry per
# model id (adpipeline/faces/README.md has the figures).
CALIBRATIONS: dict[str, Calibration] = _load(CALIBRATION_FILE)


def calibration_for(model_id: str) -> Calibration | None:
    """The calibration fitted for this model id, or None (no calibrated confidence for an unfitted model)."""
    return CALIBRATIONS.get(model_id)


def _threshold_at_far(different: np.ndarray, far: float) -> float:
    ordered = np.sort(np.asarray(different, dtype=np.float64))
    allowed = int(math.floor(far * len(ordered)))  # accepted different pairs at this FAR
    if allowed == 0:
        return float(ordered[0]) - 1e-6 if len(ordered) else 0.0
    # accept distances <= t: the first `allowed` different pairs; the threshold sits just under the next one
    return float((ordered[allowed - 1] + ordered[allowed]) / 2.0)


def fit_calibration(
    model_id: str,
    same: np.ndarray,
    different: np.ndarray,
    fars: tuple[float, ...] = (0.01, 0.001),
    fitted_on: str = "",
    ridge: float = 1e-4,
) -> Calibration:
    """Logistic fit (classes weighted equally, Newton iterations) and FAR thresholds from labelled distances."""
    same = np.asarray(same, dtype=np.float64)
    different = np.asarray(different, dtype=np.float64)
    if len(same) < 2 or len(different) < 2:
        raise ValueError("need at least two same and two different pairs")
    x = np.concatenate([same, different])
    y = np.concatenate([np.ones(len(same)), np.zeros(len(different))])
    w = np.concatenate([np.full(len(same), 0.5 / len(same)), np.full(len(different), 0.5 / len(different))])
    features = np.stack([np.ones_like(x), x], axis=1)
    theta = np.zeros(2)
    # ``ridge`` keeps the slope finite when the tuning pairs separate perfectly
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(features @ theta, -500, 500)))
        grad = features.T @ (w * (p - y)) + ridge * theta
        hess = (features * (w * p * (1 - p))[:, None]).T @ features + ridge * np.eye(2)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if float(np.abs(step).max()) < 1e-10:
            break
    thresholds = {far: round(_threshold_at_far(different, far), 4) for far in fars}
    return Calibration(
        model_id=model_id,
        a=round(float(theta[0]), 4),
        b=round(float(theta[1]), 4),
        thresholds=thresholds,
        n_same=len(same),
        n_different=len(different),
        fitted_on=fitted_on,
    )
