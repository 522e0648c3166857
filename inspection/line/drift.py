"""Score drift: how far the live PASS-score distribution has moved from the model's good-score statistics.

A model records the scores of its held-out good images (``ScoreStats``: mean, std and 21 quantiles). The
runner keeps the scores of the PASS parts of the last ``window_s`` seconds (one hour by default) and compares:

- ``mean_shift``: (mean of the live PASS scores - good mean) / good std, signed. Lighting, gain, focus or a
  dirty lens move it before parts fail;
- ``ks``: the Kolmogorov-Smirnov distance (0..1) between the live PASS scores and the good scores (their
  distribution from the recorded quantiles, linear between them, restricted to scores at or below the
  threshold because only PASS parts are compared). ``ks_critical`` is the two-sample test's 1 % critical
  value for these counts, 1.63 * sqrt((n + m) / (n m)): above it the distributions differ more than chance
  explains;
- ``median_z``: the median score of *all* parts in the window (PASS and FAIL) minus the good median, in units
  of its standard error 1.253 * std * sqrt(1/n + 1/m). Comparing PASS parts only hides a change that pushes
  good parts over the threshold: they leave the PASS set, whose remaining scores hardly move (measured on the
  simulated line: a 20 % gain raised the FAIL share from 13 % to 40 % while the PASS-score KS stayed inside its
  critical value). The median of all parts sees it and is robust to defects as long as they are a minority
  (a 10 % defect rate moves it by about 0.15 std).

``drifting`` is true when ``ks > ks_critical`` or ``|median_z| > 2.58`` (1 % two-sided) with at least
``min_count`` parts in the window: look at the lighting and the camera (or re-calibrate the model) before
false rejects pile up. A model written before
the quantiles were recorded has only mean and std: a normal distribution stands in for it (``reference``
says which). The PASS figures are ``None`` while the window holds fewer than ``min_count`` PASS parts,
``median_z`` while it holds fewer than ``min_count`` parts.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np
from pydantic import BaseModel

from inspection.model.metadata import ScoreStats

KS_C_001 = 1.628  # c(alpha) of the two-sample Kolmogorov-Smirnov test at alpha = 0.01
MEDIAN_Z_LIMIT = 2.576  # two-sided 1 % normal quantile
MEDIAN_SE = 1.2533  # standard error of a sample median: 1.2533 * std / sqrt(n) for normal scores
MAX_SCORES = 200_000  # a bound on the window's memory (about 55 parts/s for an hour)


class DriftStatus(BaseModel):
    window_s: float
    count: int  # PASS parts in the window
    failed: int  # FAIL parts in the window (not in the PASS comparison: they include real defects)
    reference: str  # "quantiles" (recorded in the model) or "normal" (mean and std only: older models)
    reference_count: int  # held-out good images the model's statistics came from
    live_mean: float | None
    mean_shift: float | None  # (live mean - good mean) / good std
    ks: float | None  # Kolmogorov-Smirnov distance, 0..1
    ks_critical: float | None  # 1 % critical value for these counts
    median_z: float | None  # (median of all scores - good median) / its standard error
    drifting: bool


class ReferenceScores:
    """The good-score distribution a model recorded, as a CDF restricted to scores at or below its
    threshold."""

    def __init__(self, stats: ScoreStats, threshold: float):
        self.stats, self.threshold = stats, threshold
        self.kind = "quantiles" if stats.quantiles and len(stats.quantiles) >= 2 else "normal"
        if self.kind == "quantiles":
            q = np.maximum.accumulate(np.asarray(stats.quantiles, np.float64))
            self.xp = q + np.arange(len(q)) * 1e-12 * max(1.0, float(abs(q).max()))  # strictly increasing
            self.fp = np.linspace(0.0, 1.0, len(q))
        self.at_threshold = float(self._raw_cdf(np.array([threshold]))[0])

    def _raw_cdf(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "quantiles":
            return np.interp(x, self.xp, self.fp, left=0.0, right=1.0)
        std = max(self.stats.std, 1e-9)
        return np.array([0.5 * (1 + math.erf((v - self.stats.mean) / (std * math.sqrt(2)))) for v in x])

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """P(good score <= x | good score <= threshold)."""
        raw = self._raw_cdf(np.asarray(x, np.float64))
        if self.at_threshold <= 0:
            return raw
        return np.minimum(raw / self.at_threshold, 1.0)


def ks_distance(sample: np.ndarray, cdf: Callable[[np.ndarray], np.ndarray]) -> float:
    """Largest gap between the sample's empirical CDF and a continuous CDF."""
    s = np.sort(np.asarray(sample, np.float64))
    n = len(s)
    f = cdf(s)
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - f), np.max(f - (i - 1) / n)))


class DriftMonitor:
    """Scores of the committed parts over a rolling window, and the drift figures. Thread-safe: ``add`` from
    the publish stage, ``status`` from the status server."""

    def __init__(self, stats: ScoreStats, threshold: float, window_s: float = 3600.0, min_count: int = 30,
                 clock: Callable[[], float] = time.monotonic):
        if window_s <= 0 or min_count < 2:
            raise ValueError(f"drift window {window_s} s must be > 0 and min_count {min_count} at least 2")
        self.reference = ReferenceScores(stats, threshold)
        self.window_s, self.min_count, self.clock = window_s, min_count, clock
        self.scores: deque[tuple[float, float, bool]] = deque(maxlen=MAX_SCORES)  # (time, score, passed)
        self.lock = threading.Lock()

    def add(self, verdict: str, score: float) -> None:
        now = self.clock()
        with self.lock:
            self.scores.append((now, float(score), verdict == "PASS"))
            self._expire(now)

    def _expire(self, now: float) -> None:
        start = now - self.window_s
        while self.scores and self.scores[0][0] < start:
            self.scores.popleft()

    def status(self) -> DriftStatus:
        with self.lock:
            self._expire(self.clock())
            every = np.array([s for _, s, _ in self.scores])
            scores = np.array([s for _, s, ok in self.scores if ok])
        ref, stats = self.reference, self.reference.stats
        std, m = max(stats.std, 1e-9), max(stats.count, 1)
        out = DriftStatus(window_s=self.window_s, count=len(scores), failed=len(every) - len(scores),
                          reference=ref.kind, reference_count=stats.count, live_mean=None, mean_shift=None, ks=None,
                          ks_critical=None, median_z=None, drifting=False)
        if len(every) >= self.min_count:
            se = MEDIAN_SE * std * math.sqrt(1 / len(every) + 1 / m)
            out.median_z = float((np.median(every) - stats.p50) / se)
            out.drifting = abs(out.median_z) > MEDIAN_Z_LIMIT
        if len(scores) >= self.min_count:
            n = len(scores)
            out.live_mean = float(scores.mean())
            out.mean_shift = float((scores.mean() - stats.mean) / std)
            out.ks = ks_distance(scores, ref.cdf)
            out.ks_critical = float(KS_C_001 * math.sqrt((n + m) / (n * m)))
            out.drifting = out.drifting or out.ks > out.ks_critical
        return out
