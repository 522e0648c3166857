"""Defects drawn onto real surface crops, each with its pixel mask, and a model-free visibility figure.

Two families, so the evaluation does not judge the model only on this project's own drawing:
- ``ds_*``: the third-party ``defect-synthesis`` package (cracks, scratches, stains, pitting), run with its
  global random state seeded per image and restored afterwards;
- this module's own, drawn to look like the real thing: ``stain`` (soft-edged, irregular, tinted),
  ``scratch`` (anti-aliased curved groove with a highlight on one flank), ``pit`` (a shaded bowl lit from
  one side, with a bright rim).

Every renderer takes a float32 RGB surface (0-255, H x W x 3), a numpy Generator and ``subtle``; it returns
the surface with the defect and a boolean mask. Subtle defects are smaller and weaker.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

MARGIN = 12  # defects start at least this far inside the image
AA = 4  # supersampling of the anti-aliased drawing


@dataclass(frozen=True)
class Drawn:
    image: np.ndarray  # float32 RGB
    mask: np.ndarray  # bool H x W


def _centre(rng: np.random.Generator, shape: tuple[int, ...], margin: int) -> tuple[float, float]:
    h, w = shape[:2]
    return float(rng.uniform(margin, w - margin)), float(rng.uniform(margin, h - margin))


def _blob(rng: np.random.Generator, shape: tuple[int, ...], radius: float) -> np.ndarray:
    """An irregular filled shape (float 0/1) of about ``radius``: a polar outline with low harmonics."""
    h, w = shape[:2]
    cx, cy = _centre(rng, shape, MARGIN + int(radius))
    angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    r = np.full(64, radius)
    for k in (2, 3, 5):
        r += radius * rng.uniform(0, 0.22) * np.cos(k * angles + rng.uniform(0, 2 * np.pi))
    pts = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], axis=1)
    canvas = np.zeros((h * AA, w * AA), np.uint8)
    cv2.fillPoly(canvas, [np.round(pts * AA).astype(np.int32)], 255, lineType=cv2.LINE_AA)
    return cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def stain(surface: np.ndarray, rng: np.random.Generator, subtle: bool) -> Drawn:
    """A soft-edged stain: irregular blob, blurred edge, darker and tinted (oil, rust, water mark)."""
    radius = rng.uniform(4, 8) if subtle else rng.uniform(6, 16)
    shape = _blob(rng, surface.shape, radius)
    alpha = cv2.GaussianBlur(shape, (0, 0), radius * rng.uniform(0.2, 0.4))
    strength = rng.uniform(0.12, 0.2) if subtle else rng.uniform(0.25, 0.5)
    tint = np.array([rng.uniform(0.6, 1.0), rng.uniform(0.45, 0.8), rng.uniform(0.3, 0.6)], np.float32)
    if rng.random() < 0.3:  # a pale water mark instead of a dark stain
        out = surface + (alpha * strength)[..., None] * (235 - surface)
    else:
        out = surface * (1 - (alpha * strength)[..., None] * (1 - tint * 0.4))
    return Drawn(out, alpha > 0.2)


def _curve(rng: np.random.Generator, shape: tuple[int, ...], length: float) -> np.ndarray:
    """Points of a gently curved stroke (quadratic Bezier) of about ``length`` pixels."""
    x0, y0 = _centre(rng, shape, MARGIN + int(length / 2))
    a = rng.uniform(0, np.pi)
    d = np.array([np.cos(a), np.sin(a)]) * length / 2
    normal = np.array([-d[1], d[0]]) * rng.uniform(-0.35, 0.35)
    p0, p2 = np.array([x0, y0]) - d, np.array([x0, y0]) + d
    p1 = (p0 + p2) / 2 + normal
    t = np.linspace(0, 1, 48)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _stroke(shape: tuple[int, ...], pts: np.ndarray, width: float) -> np.ndarray:
    """Anti-aliased coverage (0-1 float) of a polyline of the given width."""
    h, w = shape[:2]
    canvas = np.zeros((h * AA, w * AA), np.uint8)
    cv2.polylines(canvas, [np.round(pts * AA).astype(np.int32)], False, 255,
                  thickness=max(1, round(width * AA)), lineType=cv2.LINE_AA)
    return cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def scratch(surface: np.ndarray, rng: np.random.Generator, subtle: bool) -> Drawn:
    """An anti-aliased groove: a dark core with a highlight along one flank."""
    length = rng.uniform(20, 45) if subtle else rng.uniform(35, 100)
    width = rng.uniform(1.0, 1.6) if subtle else rng.uniform(1.2, 2.6)
    pts = _curve(rng, surface.shape, length)
    core = _stroke(surface.shape, pts, width)
    a = rng.uniform(0, 2 * np.pi)
    shift = np.array([np.cos(a), np.sin(a)]) * (width * 0.5 + 0.8)
    flank = np.clip(_stroke(surface.shape, pts + shift, width * 0.7) - core, 0, 1)
    depth = rng.uniform(0.18, 0.3) if subtle else rng.uniform(0.35, 0.65)
    shine = rng.uniform(0.1, 0.2) if subtle else rng.uniform(0.2, 0.45)
    out = surface * (1 - (core * depth)[..., None])
    out = out + (flank * shine)[..., None] * (255 - out)
    return Drawn(out, (core + flank) > 0.3)


def pit(surface: np.ndarray, rng: np.random.Generator, subtle: bool) -> Drawn:
    """A shaded pit: a bowl lit from one side (dark on the lit wall, bright on the far one) with a rim."""
    h, w = surface.shape[:2]
    r = rng.uniform(2.0, 3.5) if subtle else rng.uniform(3.0, 7.0)
    cx, cy = _centre(rng, surface.shape, MARGIN + int(r) + 2)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = (xx - cx) / r, (yy - cy) / r
    d2 = dx**2 + dy**2
    inside = np.clip(1 - d2, 0, None)  # bowl depth profile
    a = rng.uniform(0, 2 * np.pi)
    lit = dx * np.cos(a) + dy * np.sin(a)  # -1 .. 1 across the bowl
    strength = rng.uniform(0.2, 0.35) if subtle else rng.uniform(0.4, 0.75)
    shade = -strength * inside * (0.6 + 0.6 * lit)
    rim = np.exp(-((np.sqrt(d2) - 1.1) ** 2) / 0.03) * strength * 0.5 * np.clip(-lit, 0, None)
    change = shade + rim
    out = np.where(change[..., None] < 0, surface * (1 + change[..., None]),
                   surface + change[..., None] * (255 - surface))
    return Drawn(out.astype(np.float32), d2 <= 1.25**2)


def _third_party(make: Callable[[bool], object]) -> Callable[[np.ndarray, np.random.Generator, bool], Drawn]:
    """Wrap a defect-synthesis generator: seed its global random state from ours, restore it afterwards,
    and blend subtle defects back towards the surface."""

    def render(surface: np.ndarray, rng: np.random.Generator, subtle: bool) -> Drawn:
        seed = int(rng.integers(2**31))
        py_state, np_state = random.getstate(), np.random.get_state()
        random.seed(seed)
        np.random.seed(seed)
        try:
            bgr = np.clip(surface[..., ::-1], 0, 255).astype(np.uint8)
            result = make(subtle).apply(bgr)  # type: ignore[attr-defined]
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
        drawn = result.image[..., ::-1].astype(np.float32)
        mix = rng.uniform(0.35, 0.55) if subtle else 1.0
        return Drawn(surface + mix * (drawn - np.clip(surface, 0, 255)), result.anomaly_mask > 0)

    return render


def _ds_crack(subtle: bool) -> object:
    from defect_synthesis import CrackGenerator

    return CrackGenerator(base_length_range=(20, 45) if subtle else (35, 90), base_width_range=(1, 2),
                          max_branches=2, roughness=2.0, kerf_darkness=0.45)


def _ds_scratch(subtle: bool) -> object:
    from defect_synthesis import ScratchGenerator

    return ScratchGenerator(stroke_count_range=(1, 1), length_range=(20, 45) if subtle else (35, 100),
                            width_range=(1, 2))


def _ds_stain(subtle: bool) -> object:
    from defect_synthesis import StainGenerator

    return StainGenerator(radius_range=(5, 9) if subtle else (7, 18), opacity_range=(0.35, 0.7),
                          stain_type=random.choice(["oil", "water", "rust", "chemical"]))


def _ds_pit(subtle: bool) -> object:
    from defect_synthesis import PittingGenerator

    return PittingGenerator(cluster_size_range=(2, 4) if subtle else (3, 8), pit_radius_range=(1, 3),
                            spread_radius=14)


RENDERERS: dict[str, Callable[[np.ndarray, np.random.Generator, bool], Drawn]] = {
    "stain": stain, "scratch": scratch, "pit": pit,
    "ds_crack": _third_party(_ds_crack), "ds_scratch": _third_party(_ds_scratch),
    "ds_stain": _third_party(_ds_stain), "ds_pit": _third_party(_ds_pit),
}
DEFECT_KINDS = tuple(RENDERERS)


def visibility_snr(image: np.ndarray, mask: np.ndarray, inner: int = 2, outer: int = 9) -> float:
    """Model-free visibility of a defect: |mean inside the mask - mean of a surrounding ring| / ring std,
    on the grey image. The ring lies between ``inner`` and ``outer`` pixels from the mask."""
    grey = np.asarray(image, np.float32).mean(axis=2) if image.ndim == 3 else np.asarray(image, np.float32)
    m = mask.astype(np.uint8)
    near = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * inner + 1, 2 * inner + 1)))
    far = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * outer + 1, 2 * outer + 1)))
    ring = (far > 0) & (near == 0)
    if not m.any() or not ring.any():
        return 0.0
    return float(abs(grey[m > 0].mean() - grey[ring].mean()) / (grey[ring].std() + 1e-6))
