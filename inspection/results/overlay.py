"""The overlay image QA engineers look at: the heatmap blended on the part, regions outlined."""

from __future__ import annotations

import cv2
import numpy as np

from inspection.results.inspection import Inspection


def heat_colours(anomaly_map: np.ndarray, low: float, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """RGB heat colours and a blend weight; ``low`` (a typical good score) is transparent blue and the
    threshold sits at the middle of the colour scale."""
    span = max(threshold - low, 1e-6)
    norm = np.clip((anomaly_map - low) / (2 * span), 0, 1)
    heat = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.cvtColor(heat, cv2.COLOR_BGR2RGB), (0.15 + 0.5 * norm).astype(np.float32)


def render_overlay(image: np.ndarray, inspection: Inspection, low: float) -> np.ndarray:
    heat, alpha = heat_colours(inspection.anomaly_map, low, inspection.threshold)
    out = (image * (1 - alpha[..., None]) + heat * alpha[..., None]).astype(np.uint8)
    for r in inspection.regions:
        cv2.rectangle(out, (r.x, r.y), (r.x + r.width - 1, r.y + r.height - 1), (255, 255, 255), 1)
    colour = (220, 30, 30) if inspection.verdict == "FAIL" else (30, 170, 60)
    label = f"{inspection.verdict} {inspection.score:.3f} / {inspection.threshold:.3f}"
    scale = max(0.35, image.shape[1] / 700)
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(out, (0, 0), (tw + 6, th + base + 6), colour, -1)
    cv2.putText(out, label, (3, th + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out
