"""Choosing a model's threshold: a target false-reject rate on good parts, and, given labelled defects, the
F1-optimal threshold with the escape rate each threshold implies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel

from inspection.model.metadata import ScoreStats

Policy = Literal["frr", "f1"]
QUANTILE_PROBS = np.linspace(0, 1, 21)  # the good-score quantiles recorded in the model (ScoreStats.quantiles)


class ThresholdFigures(BaseModel):
    threshold: float
    false_reject_rate: float  # good parts scored above the threshold (rejected)
    escape_rate: float | None = None  # defective parts scored at or below it (passed); None without defects
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None


class Calibration(BaseModel):
    policy: Policy
    target_frr: float
    threshold: float
    good_count: int
    defect_count: int
    frr_threshold: ThresholdFigures
    f1_threshold: ThresholdFigures | None = None
    good_scores: ScoreStats
    defect_scores: ScoreStats | None = None
    notes: list[str] = []

    def summary(self) -> dict:
        return {"policy": self.policy, "target_frr": self.target_frr, "good_count": self.good_count,
                "defect_count": self.defect_count, "escape_rate": self.chosen.escape_rate,
                "false_reject_rate": self.chosen.false_reject_rate}

    @property
    def chosen(self) -> ThresholdFigures:
        return self.f1_threshold if self.policy == "f1" and self.f1_threshold else self.frr_threshold


def score_stats(scores: np.ndarray) -> ScoreStats:
    s = np.asarray(scores, np.float64)
    return ScoreStats(count=len(s), mean=float(s.mean()), std=float(s.std()), min=float(s.min()),
                      p50=float(np.percentile(s, 50)), p99=float(np.percentile(s, 99)), max=float(s.max()),
                      quantiles=[float(q) for q in np.quantile(s, QUANTILE_PROBS)])


def figures_at(threshold: float, good: np.ndarray, defects: np.ndarray | None) -> ThresholdFigures:
    """Verdict rule everywhere: FAIL when score > threshold."""
    frr = float(np.mean(good > threshold))
    if defects is None or len(defects) == 0:
        return ThresholdFigures(threshold=threshold, false_reject_rate=frr)
    tp = int(np.sum(defects > threshold))
    fp = int(np.sum(good > threshold))
    fn = len(defects) - tp
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / len(defects)
    f1 = 2 * tp / (2 * tp + fp + fn)
    return ThresholdFigures(threshold=threshold, false_reject_rate=frr, escape_rate=fn / len(defects),
                            precision=precision, recall=recall, f1=f1)


def frr_threshold(good: np.ndarray, target_frr: float) -> float:
    """The lowest threshold that rejects at most target_frr of the good scores."""
    s = np.sort(np.asarray(good, np.float64))
    allowed = int(np.floor(target_frr * len(s) + 1e-9))
    return float(s[len(s) - 1 - allowed])


def f1_threshold(good: np.ndarray, defects: np.ndarray) -> float:
    """The threshold with the best F1 (defects positive); among ties, the one halfway into the widest gap."""
    candidates = np.unique(np.concatenate([good, defects]))
    best, best_f1 = float(candidates[0]), -1.0
    for i, t in enumerate(candidates):
        f1 = figures_at(float(t), good, defects).f1 or 0.0
        if f1 > best_f1 + 1e-12:
            nxt = candidates[i + 1] if i + 1 < len(candidates) else t
            best, best_f1 = float((t + nxt) / 2) if nxt > t else float(t), f1
    return best


def calibrate(good_scores, defect_scores=None, target_frr: float = 0.01, policy: Policy = "frr"
              ) -> Calibration:
    if not 0 <= target_frr < 1:
        raise ValueError(f"target false-reject rate {target_frr} must be in [0, 1)")
    good = np.asarray(good_scores, np.float64)
    if len(good) == 0:
        raise ValueError("calibration needs at least one held-out good image")
    defects = None if defect_scores is None or len(defect_scores) == 0 else np.asarray(defect_scores, np.float64)
    if policy == "f1" and defects is None:
        raise ValueError("the f1 policy needs labelled defect images (--defects)")
    notes = []
    if len(good) * target_frr < 1:
        notes.append(f"{len(good)} held-out good images cannot resolve a {target_frr:.1%} false-reject rate; "
                     f"the threshold is the highest good score (measured FRR 0 of {len(good)})")
    frr = figures_at(frr_threshold(good, target_frr), good, defects)
    f1 = figures_at(f1_threshold(good, defects), good, defects) if defects is not None else None
    chosen = f1 if policy == "f1" and f1 is not None else frr
    return Calibration(policy=policy, target_frr=target_frr, threshold=chosen.threshold, good_count=len(good),
                       defect_count=0 if defects is None else len(defects), frr_threshold=frr,
                       f1_threshold=f1, good_scores=score_stats(good),
                       defect_scores=score_stats(defects) if defects is not None else None, notes=notes)


def report_path(model_path: str | Path) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".calibration.json")


def save_report(model_path: str | Path, calibration: Calibration) -> Path:
    path = report_path(model_path)
    path.write_text(json.dumps(calibration.model_dump(mode="json"), indent=2) + "\n")
    return path
