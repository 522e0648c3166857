from __future__ import annotations

import numpy as np
import pytest

from inspection.model.calibration import calibrate, figures_at, frr_threshold


def test_frr_threshold_rejects_at_most_the_target():
    good = np.arange(1, 201, dtype=float)  # 200 good scores 1..200
    t = frr_threshold(good, 0.01)  # 2 may be rejected
    assert np.sum(good > t) == 2
    assert frr_threshold(good, 0.0) == 200.0


def test_small_holdout_notes_the_limit():
    c = calibrate(np.linspace(0, 1, 20), target_frr=0.01)
    assert c.threshold == 1.0
    assert c.notes and "cannot resolve" in c.notes[0]


def test_f1_threshold_and_escape_rate():
    good = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    defects = np.array([0.45, 0.7, 0.8, 0.9])
    c = calibrate(good, defects, target_frr=0.0, policy="f1")
    # FRR policy: highest good score; the defect at 0.45 escapes
    assert c.frr_threshold.threshold == 0.5
    assert c.frr_threshold.escape_rate == pytest.approx(0.25)
    # best F1 separates 0.4 | 0.45 (catches all defects, rejects only 0.5)
    f1 = c.f1_threshold
    assert 0.4 <= f1.threshold < 0.45
    assert f1.escape_rate == 0 and f1.false_reject_rate == pytest.approx(0.2)
    assert c.threshold == f1.threshold
    assert figures_at(c.threshold, good, defects).f1 == pytest.approx(f1.f1)


def test_bad_calibration_input():
    with pytest.raises(ValueError, match="at least one held-out good"):
        calibrate([])
    with pytest.raises(ValueError, match="needs labelled defect"):
        calibrate([0.1, 0.2], policy="f1")
    with pytest.raises(ValueError, match="must be in"):
        calibrate([0.1], target_frr=1.5)
