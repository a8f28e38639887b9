"""Calibration: the logistic fit, thresholds at a false-accept rate, and the committed constants."""

from __future__ import annotations

import numpy as np
import pytest

from adpipeline.faces.calibration import CALIBRATIONS, calibration_for, fit_calibration


def test_fit_on_overlapping_distances() -> None:
    rng = np.random.default_rng(0)
    same = rng.normal(0.30, 0.05, 4000)
    different = rng.normal(0.60, 0.05, 8000)
    cal = fit_calibration("m", same, different, fars=(0.01, 0.001))
    # the 50 % point sits between the two means (equal priors), confidence falls with distance
    midpoint = -cal.a / cal.b
    assert 0.42 < midpoint < 0.48
    assert cal.confidence(0.2) > 0.99 and cal.confidence(0.7) < 0.01
    assert cal.confidence(0.3) > cal.confidence(0.4) > cal.confidence(0.5)
    # thresholds hold their FAR on the data they were fitted on, and a stricter FAR gives a lower threshold
    for far, t in cal.thresholds.items():
        assert (different <= t).mean() <= far
        assert (different <= t + 0.02).mean() > far * 0.5
    assert cal.thresholds[0.001] < cal.thresholds[0.01]
    # interpolation between fitted FARs stays between their thresholds
    assert cal.thresholds[0.001] <= cal.threshold(0.003) <= cal.thresholds[0.01]


def test_too_few_pairs_is_an_error() -> None:
    with pytest.raises(ValueError):
        fit_calibration("m", np.array([0.1]), np.array([0.5, 0.6]))


def test_committed_calibration_belongs_to_the_dlib_model(dlib_engine) -> None:
    cal = calibration_for(dlib_engine.model_id)
    assert cal is not None and cal.n_same > 1000 and cal.n_different > 1000
    assert set(cal.thresholds) == {0.01, 0.001} and cal.b < 0
    assert calibration_for("some_other_model") is None  # never a confidence fitted for another space
    assert set(CALIBRATIONS) == {dlib_engine.model_id}


def test_a_match_never_has_a_confidence_under_the_floor() -> None:
    """The decision threshold is the FAR threshold tightened to the confidence floor: matched <=> confidence >= floor
    whenever the floor is what binds, and the FAR threshold still applies when it is the stricter one."""
    from adpipeline.faces.calibration import Calibration

    # 50 % at 0.42, 90 % at ~0.398: a FAR threshold of 0.44 would call 30 %-confidence pairs matches
    cal = Calibration("m", a=21.0, b=-50.0, thresholds={0.01: 0.44, 0.001: 0.30})
    floor = 0.9
    decision = cal.decision_threshold(0.01, floor)
    assert decision < 0.44 and abs(cal.confidence(decision) - floor) < 1e-9
    for d in np.linspace(0.2, 0.6, 401):
        assert (d <= decision) == (cal.confidence(d) >= floor - 1e-9) or abs(d - decision) < 1e-9
    assert cal.decision_threshold(0.001, floor) == 0.30  # the FAR threshold is stricter here
    assert cal.decision_threshold(0.01, 0.0) == 0.44  # no floor: the FAR threshold
