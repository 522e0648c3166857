"""Anomaly-detection metrics: image and pixel AUROC, AUPRO up to a false-positive-rate limit, F1 and
confusion counts at a threshold. numpy only; tests check them against scikit-learn."""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import BaseModel


def ranks(s: np.ndarray) -> np.ndarray:
    """1-based ranks of the values; tied values share their mean rank."""
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    # mean rank (1-based) of each run of equal scores
    boundaries = np.flatnonzero(np.diff(sorted_s)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(s)]])
    run_rank = (starts + ends + 1) / 2.0
    out = np.empty(len(s))
    out[order] = np.repeat(run_rank, ends - starts)
    return out


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied scores sharing their mean rank)."""
    y = np.asarray(labels).ravel().astype(bool)
    s = np.asarray(scores, np.float64).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = ranks(s)
    u = r[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def aupro(masks: np.ndarray, maps: np.ndarray, fpr_limit: float = 0.3, steps: int = 300) -> float:
    """Normalised area under the per-region-overlap curve for FPR in [0, fpr_limit] (MVTec AD's AUPRO).

    Each connected defect region counts equally whatever its size; FPR is over all defect-free pixels.
    Thresholds are placed at quantiles of the defect-free pixels' scores, so the FPR grid is exact.
    """
    masks = np.asarray(masks).astype(bool)
    maps = np.asarray(maps, np.float64)
    negatives = np.sort(maps[~masks])
    if len(negatives) == 0:
        return float("nan")
    regions: list[np.ndarray] = []
    for m, a in zip(masks, maps, strict=True):
        if not m.any():
            continue
        count, labels = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)
        regions.extend(np.sort(a[labels == i]) for i in range(1, count))
    if not regions:
        return float("nan")
    fprs = np.linspace(0, fpr_limit, steps + 1)
    n = len(negatives)
    # threshold t_k such that the fraction of negatives strictly above it is fprs[k]
    idx = np.clip(np.ceil(n * (1 - fprs)).astype(int) - 1, 0, n - 1)
    thresholds = negatives[idx]
    # also just below each: where scores tie, FPR jumps there, and the curve needs both ends of the jump
    thresholds = np.unique(np.concatenate([thresholds, np.nextafter(thresholds, -np.inf)]))[::-1]
    actual_fpr = (n - np.searchsorted(negatives, thresholds, side="right")) / n
    pro = np.mean([(len(r) - np.searchsorted(r, thresholds, side="right")) / len(r) for r in regions], axis=0)
    # the curve ends at (1, 1), a threshold below every score; tied scores may leave a gap up to it
    actual_fpr, pro = np.append(actual_fpr, 1.0), np.append(pro, 1.0)
    # a curve from FPR 0 to the limit (interpolating the last point onto the limit exactly)
    keep = actual_fpr <= fpr_limit
    x, y = actual_fpr[keep], pro[keep]
    if x[-1] < fpr_limit and (~keep).any():
        j = np.flatnonzero(~keep)[0]
        y_lim = y[-1] + (pro[j] - y[-1]) * (fpr_limit - x[-1]) / (actual_fpr[j] - x[-1])
        x, y = np.append(x, fpr_limit), np.append(y, y_lim)
    return float(np.trapezoid(y, x) / fpr_limit)


class Confusion(BaseModel):
    """Counts at a threshold, defects being the positive class (FAIL when score > threshold)."""

    true_fail: int
    false_fail: int
    true_pass: int
    false_pass: int

    @property
    def f1(self) -> float:
        d = 2 * self.true_fail + self.false_fail + self.false_pass
        return 2 * self.true_fail / d if d else float("nan")


def confusion(labels: np.ndarray, scores: np.ndarray, threshold: float) -> Confusion:
    y = np.asarray(labels).astype(bool)
    fail = np.asarray(scores) > threshold
    return Confusion(true_fail=int((y & fail).sum()), false_fail=int((~y & fail).sum()),
                     true_pass=int((~y & ~fail).sum()), false_pass=int((y & ~fail).sum()))
