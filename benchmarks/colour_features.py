"""Low-frequency colour channels for the anomaly head, in numpy: the features `head_study.py` tried (issue 12).

They did not help on the validation split (benchmarks/RESULTS.md, "Colour channels"), so they are not in the
product; the same channels as ONNX ops inside the inspection graph, with a parity test, training and model
metadata, are in this branch's history (commit 2e76ce4, reverted after the study).

A stain or a shaded pit is a soft, low-contrast change of colour: the deep features of the backbone see it as
the same normal variation the camera adds to every image (gain, offset, an illumination gradient). These
channels give each patch its own colour *relative to its surroundings*, so that the camera's nuisance cancels
and a local change of colour stands out:

1. per 8x8 cell of the input (the patch grid of the stride-8 features): the mean R, G, B, and the standard
   deviation of the luminance Y = (R + G + B) / 3 inside the cell (two passes: the cell's own mean first);
2. both pooled 3x3 like the deep features (edges averaged over valid cells);
3. colour: log(1 + pooled mean) minus its local reference, the mean of that log over a ``window`` x ``window``
   neighbourhood of cells (edges over valid cells), or over the whole image with ``window`` 0; a gain and a
   slow gradient of the light cancel in the difference of logs;
4. contrast (optional): log(1 + pooled std) minus its mean over the image (a gain cancels, an offset does not
   change a standard deviation);
5. the channels multiplied by ``scale`` (unit mean-square over the training patches, as the deep layers) and
   joined to the deep features before whitening; the weight of the colour channels against the deep ones is
   folded into the whitening matrix (see :func:`weight_columns`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CELL = 8  # pixels per patch cell: the stride of the head's patch grid


@dataclass(frozen=True)
class ColourChannels:
    """Which colour channels the head adds to each patch, fixed at training."""

    window: int  # cells of the local colour reference (odd, >= 3), or 0: the image's mean
    contrast: bool  # add the luminance-contrast channel
    scale: float = 1.0  # multiplies every colour channel (unit mean-square over the training patches)

    def __post_init__(self) -> None:
        if self.window != 0 and (self.window < 3 or self.window % 2 == 0):
            raise ValueError(f"colour window {self.window}: an odd number of cells, at least 3 (or 0: the image)")

    @property
    def count(self) -> int:
        return 3 + int(self.contrast)


def avg_pool(x: np.ndarray, k: int) -> np.ndarray:
    """k x k mean over valid neighbours, stride 1 (k odd), on NCHW, as ONNX AveragePool with
    count_include_pad=0."""
    r = k // 2
    h, w = x.shape[2:]
    padded = np.pad(x, ((0, 0), (0, 0), (r, r), (r, r)))
    ones = np.pad(np.ones((h, w), x.dtype), r)
    # box sums through cumulative sums (exact enough in float64, and fast for wide windows)
    def box(a: np.ndarray) -> np.ndarray:
        c = np.cumsum(np.cumsum(a, axis=-2), axis=-1)
        c = np.pad(c, [(0, 0)] * (c.ndim - 2) + [(1, 0), (1, 0)])
        return c[..., k:, k:] - c[..., :-k, k:] - c[..., k:, :-k] + c[..., :-k, :-k]
    return box(padded) / box(ones)


def cell_stats(images: np.ndarray) -> np.ndarray:
    """(N, 4, h, w) float64 per 8x8 cell: mean R, G, B and the luminance's standard deviation; ``images``
    (N, H, W, 3) RGB, 0-255, H and W multiples of 8."""
    x = images.astype(np.float64).transpose(0, 3, 1, 2)
    n, _, height, width = x.shape
    if height % CELL or width % CELL:
        raise ValueError(f"image size {height}x{width}: height and width must be multiples of {CELL}")
    h, w = height // CELL, width // CELL
    means = x.reshape(n, 3, h, CELL, w, CELL).mean(axis=(3, 5))
    lum = x.mean(axis=1).reshape(n, h, CELL, w, CELL)
    centred = lum - lum.mean(axis=(2, 4), keepdims=True)
    std = np.sqrt((centred**2).mean(axis=(2, 4)))
    return np.concatenate([means, std[:, None]], axis=1)


def channels_from_cells(cells: np.ndarray, colour: ColourChannels) -> np.ndarray:
    """Steps 2-5 on :func:`cell_stats`: (N, colour.count, h, w)."""
    log_rgb = np.log1p(avg_pool(cells[:, :3], 3))
    ref = log_rgb.mean(axis=(2, 3), keepdims=True) if colour.window == 0 else avg_pool(log_rgb, colour.window)
    parts = [log_rgb - ref]
    if colour.contrast:
        log_std = np.log1p(avg_pool(cells[:, 3:4], 3))
        parts.append(log_std - log_std.mean(axis=(2, 3), keepdims=True))
    return np.concatenate(parts, axis=1) * colour.scale


def colour_channels(images: np.ndarray, colour: ColourChannels) -> np.ndarray:
    """(N, colour.count, h, w) colour channels of uint8 RGB images (N, H, W, 3)."""
    return channels_from_cells(cell_stats(images), colour)


def unit_scale(channels: np.ndarray) -> float:
    """The scale giving unscaled channels (N, C, h, w) unit mean-square norm per patch."""
    return float(1.0 / np.sqrt(max(np.mean(np.sum(channels.astype(np.float64) ** 2, axis=1)), 1e-12)))


def weight_columns(white: np.ndarray, deep_dim: int, weight: float) -> np.ndarray:
    """The whitening matrix with its colour columns (after the ``deep_dim`` deep ones) multiplied by
    ``weight``: the whitened colour directions then count ``weight`` times in every distance."""
    out = white.astype(np.float64).copy()
    out[:, deep_dim:] *= weight
    return out.astype(white.dtype)
