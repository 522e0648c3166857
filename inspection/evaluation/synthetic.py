"""A deterministic synthetic production line: parts, realistic defects and their pixel masks.

Two part types:
- ``knurled_plate``: a textured surface (brushed steel with a diamond knurl), with lighting variation;
- ``flange``: a discrete machined part (a disc with a keyed bore and six bolt holes) on a conveyor belt, with
  pose jitter (shift, rotation, scale) and lighting variation.

Four defect kinds on both: ``scratch`` (thin curved line, lighter or darker), ``spot`` (contamination: oil,
rust or dirt blob), ``crack`` (dark jagged branching line) and ``missing`` (a missing or deformed feature: an
undrilled or misplaced bolt hole on the flange, a worn-flat patch of knurl on the plate). Size, contrast and
shape vary per defect, and some are subtle.

Every image is drawn from its own seed, so the same (seed, part, split, kind, index) gives the same pixels on
every machine, and the simulated line can draw parts one by one with :func:`make_part`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

PART_TYPES = ("knurled_plate", "flange")
DEFECT_KINDS = ("scratch", "spot", "crack", "missing")
SS = 2  # supersampling factor: parts are drawn at twice the size and reduced, for anti-aliased edges


@dataclass(frozen=True)
class SyntheticPart:
    """One generated part image (RGB uint8, HxWx3) with its ground truth (uint8 mask, 255 = defect)."""

    image: np.ndarray
    mask: np.ndarray
    part_type: str
    defect: str | None


def _seed(*parts: object) -> int:
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    """A generator for one image, independent of how many other images are drawn."""
    return np.random.default_rng(_seed(seed, *parts))


def _smooth_noise(rng: np.random.Generator, h: int, w: int, sigma_x: float, sigma_y: float) -> np.ndarray:
    noise = rng.standard_normal((h, w)).astype(np.float32)
    out = cv2.GaussianBlur(noise, (0, 0), sigmaX=sigma_x, sigmaY=sigma_y, borderType=cv2.BORDER_REFLECT)
    return out / (out.std() + 1e-6)


def _lighting(rng: np.random.Generator, h: int, w: int, strength: float) -> np.ndarray:
    """A multiplicative illumination field: global gain and a directional gradient."""
    gain = rng.uniform(1 - strength, 1 + strength)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (np.cos(angle) * (xx / w - 0.5) + np.sin(angle) * (yy / h - 0.5)) * rng.uniform(0, strength)
    return (gain + ramp).astype(np.float32)


# ---------------------------------------------------------------------------------------------- parts


def _knurled_plate(rng: np.random.Generator, size: int) -> tuple[np.ndarray, dict]:
    h = w = size * SS
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = 11.0 * SS
    tilt = np.deg2rad(rng.uniform(-2, 2))
    u = xx * np.cos(np.pi / 4 + tilt) + yy * np.sin(np.pi / 4 + tilt)
    v = xx * np.cos(-np.pi / 4 + tilt) + yy * np.sin(-np.pi / 4 + tilt)
    knurl = np.sin(2 * np.pi * u / period + rng.uniform(0, 2 * np.pi)) * np.sin(
        2 * np.pi * v / period + rng.uniform(0, 2 * np.pi))
    brushed = _smooth_noise(rng, h, w, sigma_x=18 * SS, sigma_y=0.6 * SS)
    grain = rng.standard_normal((h, w)).astype(np.float32)
    gray = 128 + 22 * knurl + 6 * brushed + 3 * grain
    tint = np.array([0.96, 1.0, 1.04], np.float32) * rng.uniform(0.97, 1.03, 3).astype(np.float32)
    img = gray[..., None] * tint
    return img, {"knurl": knurl, "lighting": _lighting(rng, h, w, 0.12), "region": np.ones((h, w), bool),
                 "part": np.ones((h, w), np.float32)}


def _flange(rng: np.random.Generator, size: int) -> tuple[np.ndarray, dict]:
    h = w = size * SS
    # conveyor belt: dark rubber with fine horizontal texture
    belt = 48 + 5 * _smooth_noise(rng, h, w, sigma_x=6 * SS, sigma_y=0.8 * SS) + 2.5 * rng.standard_normal(
        (h, w)).astype(np.float32)
    img = np.repeat(belt[..., None], 3, axis=2) * np.array([1.0, 0.98, 0.95], np.float32)
    cx = w / 2 + rng.uniform(-10, 10) * SS
    cy = h / 2 + rng.uniform(-10, 10) * SS
    scale = rng.uniform(0.97, 1.03)
    rot = np.deg2rad(rng.uniform(-12, 12))
    r_outer, r_bore, r_bolt_circle, r_hole = (98 * scale * SS, 24 * scale * SS, 64 * scale * SS,
                                              9 * scale * SS)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = xx - cx, yy - cy
    rr = np.hypot(dx, dy)
    # machined surface: radial turning marks and a directional light
    turning = np.sin(rr / (1.6 * SS) + rng.uniform(0, 6.28)) * 4
    light_dir = rng.uniform(0, 2 * np.pi)
    shade = 165 + 25 * (np.cos(light_dir) * dx + np.sin(light_dir) * dy) / r_outer + turning
    shade += 2.5 * rng.standard_normal((h, w)).astype(np.float32)
    part = np.zeros((h, w), np.uint8)
    cv2.circle(part, (int(cx), int(cy)), int(r_outer), 255, -1, lineType=cv2.LINE_AA)
    holes = np.zeros((h, w), np.uint8)
    cv2.circle(holes, (int(cx), int(cy)), int(r_bore), 255, -1, lineType=cv2.LINE_AA)
    key = np.array([[-3 * SS, 0], [3 * SS, 0], [3 * SS, -r_bore - 9 * SS], [-3 * SS, -r_bore - 9 * SS]], np.float32)
    c, s = np.cos(rot), np.sin(rot)
    key_pts = (key @ np.array([[c, s], [-s, c]], np.float32)) + [cx, cy]
    cv2.fillPoly(holes, [key_pts.astype(np.int32)], 255, lineType=cv2.LINE_AA)
    hole_centres = [(cx + r_bolt_circle * np.cos(rot + k * np.pi / 3), cy + r_bolt_circle * np.sin(rot + k * np.pi / 3))
                    for k in range(6)]
    alpha = part.astype(np.float32) / 255
    metal = np.stack([shade * 0.98, shade, shade * 1.02], axis=2)
    img = img * (1 - alpha[..., None]) + metal * alpha[..., None]
    # chamfer ring at the rim
    rim = np.zeros((h, w), np.uint8)
    cv2.circle(rim, (int(cx), int(cy)), int(r_outer - 4 * SS), 255, int(2 * SS), lineType=cv2.LINE_AA)
    img += (rim.astype(np.float32) / 255 * 25)[..., None]
    ctx = {"lighting": _lighting(rng, h, w, 0.12), "belt": belt, "holes": holes, "hole_centres": hole_centres,
           "r_hole": r_hole, "region": (rr < r_outer - 8 * SS) & (rr > r_bore + 12 * SS), "rot": rot,
           "cx": cx, "cy": cy, "r_bolt_circle": r_bolt_circle,
           "part": cv2.erode(part, np.ones((3 * SS, 3 * SS), np.uint8)).astype(np.float32) / 255}
    return img, ctx


def _cut_holes(img: np.ndarray, ctx: dict, skip: int | None = None, slot_to: tuple[float, float] | None = None
               ) -> None:
    """Drill the bolt holes (the belt shows through); optionally leave hole ``skip`` undrilled, or, with
    ``slot_to``, drill it as an elongated hole (the drill wandered) reaching to that point."""
    holes = ctx["holes"].copy()
    r = int(ctx["r_hole"])
    for k, (hx, hy) in enumerate(ctx["hole_centres"]):
        if k == skip and slot_to is None:
            continue
        cv2.circle(holes, (int(hx), int(hy)), r, 255, -1, lineType=cv2.LINE_AA)
        if k == skip and slot_to is not None:
            cv2.line(holes, (int(hx), int(hy)), (int(slot_to[0]), int(slot_to[1])), 255, 2 * r,
                     lineType=cv2.LINE_AA)
            cv2.circle(holes, (int(slot_to[0]), int(slot_to[1])), r, 255, -1, lineType=cv2.LINE_AA)
    a = (holes.astype(np.float32) / 255)[..., None]
    belt = np.repeat(ctx["belt"][..., None], 3, axis=2) * 0.7
    img[:] = img * (1 - a) + belt * a


# -------------------------------------------------------------------------------------------- defects


def _random_point(rng: np.random.Generator, region: np.ndarray, margin: int) -> tuple[int, int]:
    h, w = region.shape
    inner = np.zeros_like(region)
    inner[margin:h - margin, margin:w - margin] = region[margin:h - margin, margin:w - margin]
    ys, xs = np.nonzero(inner)
    i = rng.integers(len(xs))
    return int(xs[i]), int(ys[i])


def _blend(img: np.ndarray, alpha: np.ndarray, colour: np.ndarray | float) -> None:
    a = alpha[..., None]
    img[:] = img * (1 - a) + np.asarray(colour, np.float32) * a


def _scratch(rng, img, ctx) -> np.ndarray:
    h, w = img.shape[:2]
    x0, y0 = _random_point(rng, ctx["region"], 30 * SS)
    length = rng.uniform(25, 110) * SS
    angle = rng.uniform(0, np.pi)
    bend = rng.uniform(-0.5, 0.5)
    t = np.linspace(0, 1, 60)
    xs = x0 + np.cos(angle + bend * t) * length * (t - 0.5)
    ys = y0 + np.sin(angle + bend * t) * length * (t - 0.5)
    pts = np.stack([xs, ys], 1).clip(0, [w - 1, h - 1]).astype(np.int32)
    line = np.zeros((h, w), np.uint8)
    cv2.polylines(line, [pts], False, 255, max(1, int(rng.uniform(0.8, 2.5) * SS)), lineType=cv2.LINE_AA)
    alpha = cv2.GaussianBlur(line.astype(np.float32) / 255, (0, 0), 0.7 * SS) * ctx["part"]
    local = float(img[y0, x0].mean())
    delta = rng.uniform(35, 90) * rng.choice([-1, 1])
    _blend(img, alpha * rng.uniform(0.7, 1.0), np.clip(local + delta, 0, 255))
    return alpha > 0.2


def _spot(rng, img, ctx) -> np.ndarray:
    h, w = img.shape[:2]
    x0, y0 = _random_point(rng, ctx["region"], 25 * SS)
    radius = rng.uniform(3.5, 14) * SS
    n = 14
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = radius * rng.uniform(0.55, 1.25, n)
    poly = np.stack([x0 + radii * np.cos(angles), y0 + radii * np.sin(angles)], 1).astype(np.int32)
    blob = np.zeros((h, w), np.uint8)
    cv2.fillPoly(blob, [poly], 255, lineType=cv2.LINE_AA)
    alpha = cv2.GaussianBlur(blob.astype(np.float32) / 255, (0, 0), rng.uniform(0.8, 2.5) * SS)
    kind = rng.integers(3)
    colour = [(30, 25, 20), (150, 70, 30), (85, 80, 60)][kind]  # oil, rust, dirt (RGB)
    _blend(img, alpha * rng.uniform(0.55, 0.95), np.array(colour, np.float32))
    return alpha > 0.3


def _crack(rng, img, ctx) -> np.ndarray:
    h, w = img.shape[:2]
    x, y = _random_point(rng, ctx["region"], 35 * SS)
    line = np.zeros((h, w), np.uint8)
    heading = rng.uniform(0, 2 * np.pi)
    branches = [(float(x), float(y), heading, rng.uniform(30, 90) * SS)]
    thickness = max(1, int(rng.uniform(0.8, 2.0) * SS))
    while branches:
        bx, by, bh, blen = branches.pop()
        travelled = 0.0
        while travelled < blen:
            step = rng.uniform(2, 5) * SS
            bh += rng.normal(0, 0.45)
            nx, ny = bx + np.cos(bh) * step, by + np.sin(bh) * step
            cv2.line(line, (int(bx), int(by)), (int(nx), int(ny)), 255, thickness, lineType=cv2.LINE_AA)
            bx, by = float(np.clip(nx, 0, w - 1)), float(np.clip(ny, 0, h - 1))
            travelled += step
            if rng.random() < 0.04 and blen > 20 * SS:
                branches.append((bx, by, bh + rng.choice([-1, 1]) * rng.uniform(0.5, 1.1), blen * 0.4))
    alpha = cv2.GaussianBlur(line.astype(np.float32) / 255, (0, 0), 0.6 * SS) * ctx["part"]
    local = img[alpha > 0.5].mean(axis=0) if (alpha > 0.5).any() else img.mean(axis=(0, 1))
    _blend(img, alpha * rng.uniform(0.75, 1.0), local * rng.uniform(0.2, 0.55))
    return alpha > 0.2


def _missing_knurl(rng, img, ctx) -> np.ndarray:
    """A worn-flat (polished) patch where the knurl pattern is missing or squashed."""
    h, w = img.shape[:2]
    x0, y0 = _random_point(rng, ctx["region"], 30 * SS)
    axes = (int(rng.uniform(9, 26) * SS), int(rng.uniform(7, 20) * SS))
    patch = np.zeros((h, w), np.uint8)
    cv2.ellipse(patch, (x0, y0), axes, rng.uniform(0, 180), 0, 360, 255, -1, lineType=cv2.LINE_AA)
    alpha = cv2.GaussianBlur(patch.astype(np.float32) / 255, (0, 0), 2 * SS)
    flat = img - (22 * ctx["knurl"] * rng.uniform(0.6, 1.0))[..., None]  # the plate without its knurl
    flat += rng.uniform(-10, 25)  # worn patches shine, dents darken
    img[:] = img * (1 - alpha[..., None]) + flat * alpha[..., None]
    return alpha > 0.3


def _missing_hole(rng, img, ctx) -> np.ndarray:
    """An undrilled bolt hole, or an elongated one where the drill wandered; the mask is the material that
    differs from a good part."""
    h, w = img.shape[:2]
    k = int(rng.integers(6))
    hx, hy = ctx["hole_centres"][k]
    r = int(ctx["r_hole"])
    expected = np.zeros((h, w), np.uint8)
    cv2.circle(expected, (int(hx), int(hy)), r, 255, -1)
    if rng.random() < 0.6:
        _cut_holes(img, ctx, skip=k)
        return expected > 0
    length = rng.uniform(5, 10) * SS
    ang = rng.uniform(0, 2 * np.pi)
    end = (hx + length * np.cos(ang), hy + length * np.sin(ang))
    _cut_holes(img, ctx, skip=k, slot_to=end)
    slot = expected.copy()
    cv2.line(slot, (int(hx), int(hy)), (int(end[0]), int(end[1])), 255, 2 * r)
    cv2.circle(slot, (int(end[0]), int(end[1])), r, 255, -1)
    extra = (slot > 0) & (expected == 0)
    return cv2.dilate(extra.astype(np.uint8), np.ones((2 * SS + 1, 2 * SS + 1), np.uint8)) > 0


_DEFECTS = {"scratch": _scratch, "spot": _spot, "crack": _crack}


def make_part(part_type: str, rng: np.random.Generator, defect: str | None = None, size: int = 256
              ) -> SyntheticPart:
    """Draw one part; ``defect`` is None for a good part or one of :data:`DEFECT_KINDS`."""
    if part_type not in PART_TYPES:
        raise ValueError(f"unknown part type {part_type!r}; choose one of {', '.join(PART_TYPES)}")
    if defect is not None and defect not in DEFECT_KINDS:
        raise ValueError(f"unknown defect kind {defect!r}; choose one of {', '.join(DEFECT_KINDS)}")
    if part_type == "knurled_plate":
        img, ctx = _knurled_plate(rng, size)
    else:
        img, ctx = _flange(rng, size)
    mask = np.zeros(img.shape[:2], bool)
    if defect == "missing":
        mask = _missing_knurl(rng, img, ctx) if part_type == "knurled_plate" else _missing_hole(rng, img, ctx)
    elif part_type == "flange":
        _cut_holes(img, ctx)
    if defect in _DEFECTS:
        mask = _DEFECTS[defect](rng, img, ctx)
    img = img * ctx["lighting"][..., None]
    img = cv2.resize(np.clip(img, 0, 255), (size, size), interpolation=cv2.INTER_AREA)
    mask_small = cv2.resize(mask.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) > 0.25
    return SyntheticPart(np.round(img).astype(np.uint8), mask_small.astype(np.uint8) * 255, part_type, defect)


_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 9]


@dataclass(frozen=True)
class DatasetSpec:
    train_good: int = 200
    test_good: int = 40
    test_per_defect: int = 20
    size: int = 256
    seed: int = 7


def write_dataset(root: Path, part_type: str, spec: DatasetSpec = DatasetSpec()) -> Path:
    """Write one part type in MVTec-AD layout under ``root/part_type``; returns that folder."""
    base = Path(root) / part_type
    jobs = [("train", "good", spec.train_good), ("test", "good", spec.test_good)]
    jobs += [("test", kind, spec.test_per_defect) for kind in DEFECT_KINDS]
    for split, kind, count in jobs:
        out = base / split / kind
        out.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            part = make_part(part_type, rng_for(spec.seed, part_type, split, kind, i),
                             None if kind == "good" else kind, spec.size)
            cv2.imwrite(str(out / f"{i:03d}.png"), cv2.cvtColor(part.image, cv2.COLOR_RGB2BGR), _PNG)
            if kind != "good":
                gt = base / "ground_truth" / kind
                gt.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(gt / f"{i:03d}_mask.png"), part.mask, _PNG)
    return base
