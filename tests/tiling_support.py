"""Synthetic camera frames for the frame-mapping tests: a 5 MP (2448 x 2048) textured surface, the same
texture everywhere (low-frequency shading and fine grain), and a small dark spot to find."""

from __future__ import annotations

import cv2
import numpy as np

FRAME_HW = (2048, 2448)  # a 5 MP industrial camera's frame (height, width)


def surface(seed: int, hw: tuple[int, int] = FRAME_HW) -> np.ndarray:
    """A good frame: grey 150 with gentle shading and a fine grain, RGB uint8 (H, W, 3)."""
    rng = np.random.default_rng(seed)
    h, w = hw
    shading = cv2.resize(rng.normal(0, 1, (h // 256 + 2, w // 256 + 2)).astype(np.float32), (w, h),
                         interpolation=cv2.INTER_CUBIC)
    grain = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.2)
    grey = np.clip(150 + 6 * shading + 10 * grain, 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def dark_spot(frame: np.ndarray, cx: int, cy: int, diameter: int = 12, depth: float = 70) -> np.ndarray:
    """The frame with a dark disc (anti-aliased edge) of ``diameter`` pixels centred on (cx, cy)."""
    r = diameter / 2
    y0, y1, x0, x1 = cy - diameter, cy + diameter, cx - diameter, cx + diameter
    yy, xx = np.mgrid[y0:y1, x0:x1]
    cover = np.clip(r + 0.5 - np.hypot(xx - cx + 0.5, yy - cy + 0.5), 0, 1)
    out = frame.copy()
    patch = out[y0:y1, x0:x1].astype(np.float32) - depth * cover[..., None]
    out[y0:y1, x0:x1] = np.clip(patch, 0, 255).astype(np.uint8)
    return out


def random_crops(frame: np.ndarray, side: int, count: int, seed: int) -> list[np.ndarray]:
    """``count`` square crops of ``side`` pixels at random places in the frame."""
    rng = np.random.default_rng(seed)
    h, w = frame.shape[:2]
    crops = []
    for _ in range(count):
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crops.append(frame[y:y + side, x:x + side].copy())
    return crops
