"""Per-position statistics of good patch distances, for the PaDiM-style normalisation of the patch map.

The padded backbone makes patches near the borders and corners look different from the interior, and a
coreset holds few of them, so their nearest-neighbour distances on good images are high: the raw map's
maximum is mostly a border effect. Dividing each position's distance by what good images show there removes
it. The statistics must come from distances a *new* good image would get: a training patch measured against
a bank that holds itself has distance ~0. So each training image is measured against the bank *without the
entries taken from that same image* (self-match exclusion); that is a leave-one-image-out distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inspection.model.anomaly_head import HeadParams, k_nearest_mean

STD_FLOOR = 0.5  # std maps are floored at this fraction of their median (no position may dominate)
DESCRIPTION = "leave-one-image-out distances of the bank images (self-matches excluded), 3x3 smoothed"


@dataclass(frozen=True)
class PositionStats:
    mean: np.ndarray  # (h, w) float32
    std: np.ndarray  # (h, w) float32, > 0
    images: int


def leave_one_out_distances(x: np.ndarray, head: HeadParams, entry_image: np.ndarray) -> np.ndarray:
    """(N, P) distance of each patch of each image to its nearest bank entry not taken from that image.

    ``x`` is (N, P, feature_dim) patch features of the bank's own images, already in the bank's space
    (:meth:`HeadParams.transform`); ``entry_image`` (K,) gives the
    image each bank entry came from. Same metric as the graph: |x|^2 + |m|^2 - 2 (xP).(mP).
    """
    n, p, _ = x.shape
    bank = head.bank.astype(np.float32)
    bank_sq = head.bank_sq.astype(np.float32)
    out = np.empty((n, p), np.float32)
    for i in range(n):
        xi = x[i].astype(np.float32)
        xp = xi @ head.projection if head.projection is not None else xi
        cross = bank_sq[None, :] - 2 * (xp @ bank.T)
        cross[:, entry_image == i] = np.inf
        out[i] = k_nearest_mean(cross, np.sum(xi * xi, axis=1), head.k_nearest)
    return out


def _box3(a: np.ndarray) -> np.ndarray:
    """3x3 mean over valid neighbours."""
    h, w = a.shape
    padded = np.pad(a, 1)
    ones = np.pad(np.ones_like(a), 1)
    total = sum(padded[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3))
    count = sum(ones[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3))
    return np.asarray(total / count)


def position_stats(distances: np.ndarray, shape: tuple[int, int]) -> PositionStats:
    """Mean and std per position of (N, h*w) good-image distances, lightly smoothed, std floored."""
    d = distances.reshape(len(distances), *shape).astype(np.float64)
    mean = _box3(d.mean(axis=0))
    std = _box3(d.std(axis=0))
    std = np.maximum(std, STD_FLOOR * float(np.median(std)) + 1e-6)
    return PositionStats(mean.astype(np.float32), std.astype(np.float32), len(d))
