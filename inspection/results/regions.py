"""Defect regions: connected areas of the thresholded anomaly map."""

from __future__ import annotations

import cv2
import numpy as np

from inspection.schema import Region


def find_regions(anomaly_map: np.ndarray, threshold: float, scale: tuple[float, float] = (1.0, 1.0),
                 max_regions: int = 32) -> list[Region]:
    """Regions of ``anomaly_map > threshold``, largest peak first; boxes and areas are multiplied by
    ``scale`` (x, y) to give the image's own coordinates when the map is at the model's input size."""
    above = (anomaly_map > threshold).astype(np.uint8)
    if not above.any():
        return []
    count, labels, stats, _ = cv2.connectedComponentsWithStats(above, connectivity=8)
    sx, sy = scale
    regions = []
    for i in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[i])
        box = (slice(y, y + h), slice(x, x + w))  # the peak, looked for inside the region's own box only
        peak = float(anomaly_map[box][labels[box] == i].max())
        regions.append(Region(x=int(x * sx), y=int(y * sy), width=max(1, round(w * sx)),
                              height=max(1, round(h * sy)), area_px=max(1, round(area * sx * sy)),
                              peak_score=peak))
    regions.sort(key=lambda r: -r.peak_score)
    return regions[:max_regions]
