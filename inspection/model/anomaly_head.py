"""The anomaly head (PatchCore style) in numpy: the reference the ONNX graph is checked against.

From the backbone's stride-8 and stride-16 features:
1. 3x3 average pooling of each layer (local neighbourhood aggregation; edges average over valid pixels);
2. stride-16 features upsampled to stride 8 (bilinear, half-pixel centres, as ONNX Resize);
3. each layer scaled to unit mean-square norm (scales fixed at training) and the two joined on channels;
4. optionally whitened, x <- (x - mean) W with W = (cov + shrinkage)^-1/2 of the training patches (a bank of
   one zero entry then gives the Mahalanobis distance to a single Gaussian); then an optional projection
   onto the bank's leading principal axes (P, orthonormal columns);
5. each patch's distance to its nearest memory-bank entry m: d^2 = |x|^2 + |m|^2 - 2 (xP).(mP), with full
   norms. Without a projection this is the exact Euclidean distance; with one, only the cross term of the
   two residuals outside the principal subspace is dropped, so anomaly energy outside it still counts.
   With ``k_nearest`` k > 1, the mean of the distances to the k nearest entries;
6. optionally, per-position normalisation (PaDiM-style): z = (d - mean at that position) / std at that
   position, both measured on good training images that do not match themselves (see
   :mod:`inspection.model.normalisation`); this removes the border and position effects of the padded
   backbone;
7. the patch map optionally blurred (Gaussian, edge padding), then a border of ``border`` patches set to 0
   (excluded), and upsampled bilinearly to the input size: the anomaly map;
8. the image score: the map's maximum (``top_k`` 1), or the mean of the ``top_k`` largest patch values,
   capped at the map's maximum so that a part that fails always has a region above the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HeadParams:
    """Everything the head needs beyond the backbone, fixed at training time."""

    layer_scales: tuple[float, float]
    projection: np.ndarray | None  # (feature_dim, projection_dim) float32, orthonormal columns, or None
    bank: np.ndarray  # (K, projection_dim or feature_dim) float32, projected bank entries
    bank_sq: np.ndarray  # (K,) squared norms of the unprojected bank entries
    blur_sigma: float
    input_size: tuple[int, int]  # height, width
    position_mean: np.ndarray | None = None  # (h, w) float32 mean patch distance per position, or None
    position_std: np.ndarray | None = None  # (h, w) float32, > 0
    border: int = 0  # patches at each edge left out of the map and the score
    top_k: int = 1  # image score: mean of the top_k patch values (1 = the map's maximum)
    k_nearest: int = 1  # patch distance: mean distance to the k nearest bank entries
    whiten_mean: np.ndarray | None = None  # (feature_dim,) float32
    whiten: np.ndarray | None = None  # (feature_dim, feature_dim) float32

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Patch features (..., feature_dim) into the space the bank lives in (whitened if set)."""
        if self.whiten is None or self.whiten_mean is None:
            return x
        return (x - self.whiten_mean.astype(x.dtype)) @ self.whiten.astype(x.dtype)

    @property
    def patch_shape(self) -> tuple[int, int]:
        return self.input_size[0] // 8, self.input_size[1] // 8

    @property
    def border_keep(self) -> np.ndarray:
        """(h, w) float32: 1 inside, 0 on the excluded border."""
        keep = np.zeros(self.patch_shape, np.float32)
        b = self.border
        keep[b:keep.shape[0] - b, b:keep.shape[1] - b] = 1
        return keep

    @property
    def blur_kernel(self) -> np.ndarray:
        return gaussian_kernel(self.blur_sigma)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """A normalised 2-D Gaussian (2r+1)x(2r+1) with r = ceil(2 sigma); a 1x1 identity for sigma 0."""
    if sigma <= 0:
        return np.ones((1, 1), np.float32)
    r = int(np.ceil(2 * sigma))
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    k = np.outer(g, g)
    return (k / k.sum()).astype(np.float32)


def avg_pool3(x: np.ndarray) -> np.ndarray:
    """3x3 mean over valid neighbours, stride 1, on NCHW."""
    h, w = x.shape[2:]
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ones = np.pad(np.ones((h, w), x.dtype), 1)
    total = np.zeros_like(x)
    count = np.zeros((h, w), x.dtype)
    for dy in range(3):
        for dx in range(3):
            total += padded[:, :, dy:dy + h, dx:dx + w]
            count += ones[dy:dy + h, dx:dx + w]
    return total / count


def _linear_axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices and weights of ONNX Resize linear, half_pixel, along one axis."""
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (src - lo).astype(np.float32)


def resize_bilinear(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of NCHW to (height, width) with ONNX Resize's half_pixel coordinates."""
    lo, hi, t = _linear_axis(x.shape[2], size[0])
    x = x[:, :, lo] * (1 - t)[:, None] + x[:, :, hi] * t[:, None]
    lo, hi, t = _linear_axis(x.shape[3], size[1])
    return x[:, :, :, lo] * (1 - t) + x[:, :, :, hi] * t


def pooled_layers(feat8: np.ndarray, feat16: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1-2: pooled stride-8 features and pooled, upsampled stride-16 features (both NCHW)."""
    p8 = avg_pool3(feat8)
    p16 = resize_bilinear(avg_pool3(feat16), p8.shape[2:])
    return p8, p16


def layer_scales(p8: np.ndarray, p16: np.ndarray) -> tuple[float, float]:
    """Scales giving each layer unit mean-square norm per patch over a training set."""
    s8, s16 = (float(1.0 / np.sqrt(np.mean(np.sum(p.astype(np.float64) ** 2, axis=1)))) for p in (p8, p16))
    return s8, s16


def patch_features(p8: np.ndarray, p16: np.ndarray, scales: tuple[float, float]) -> np.ndarray:
    """Step 3: (N, H8*W8, 120) patch features."""
    x = np.concatenate([p8 * scales[0], p16 * scales[1]], axis=1)
    n, c, h, w = x.shape
    return x.transpose(0, 2, 3, 1).reshape(n, h * w, c)


def principal_axes(x: np.ndarray, dim: int, max_rows: int = 50_000, seed: int = 0) -> np.ndarray:
    """(feature_dim, dim) orthonormal leading principal axes of the rows of x (uncentred, as distances are)."""
    rows = x.reshape(-1, x.shape[-1])
    if len(rows) > max_rows:
        rows = rows[np.random.default_rng(seed).choice(len(rows), max_rows, replace=False)]
    _, _, vt = np.linalg.svd(rows.astype(np.float64), full_matrices=False)
    return np.ascontiguousarray(vt[:dim].T, dtype=np.float32)


def whitening(x: np.ndarray, shrinkage: float = 0.01, max_rows: int = 100_000, seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray]:
    """(mean, W) with W = (cov + shrinkage * mean eigenvalue * I)^-1/2 of the rows of x (symmetric)."""
    rows = x.reshape(-1, x.shape[-1]).astype(np.float64)
    if len(rows) > max_rows:
        rows = rows[np.random.default_rng(seed).choice(len(rows), max_rows, replace=False)]
    mean = rows.mean(axis=0)
    cov = np.cov(rows - mean, rowvar=False)
    vals, vecs = np.linalg.eigh(cov)
    vals = np.maximum(vals, 0) + shrinkage * float(np.mean(vals))
    w = (vecs / np.sqrt(vals)) @ vecs.T
    return mean.astype(np.float32), w.astype(np.float32)


def nearest_distances(x: np.ndarray, head: HeadParams, chunk: int = 4096) -> np.ndarray:
    """Step 5 in float64: distance from each row of x (..., feature_dim) to its nearest bank entry."""
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    proj = flat @ head.projection.astype(np.float64) if head.projection is not None else flat
    b = head.bank.astype(np.float64)
    b2 = head.bank_sq.astype(np.float64)
    out = np.empty(len(flat))
    for i in range(0, len(flat), chunk):
        cross = b2[None, :] - 2 * proj[i:i + chunk] @ b.T
        x2 = np.sum(flat[i:i + chunk] ** 2, axis=1)
        out[i:i + chunk] = k_nearest_mean(cross, x2, head.k_nearest)
    return out.reshape(x.shape[:-1])


def k_nearest_mean(cross: np.ndarray, x2: np.ndarray, k: int) -> np.ndarray:
    """(P,) mean distance to the k nearest entries from the cross terms (P, K) |m|^2 - 2 x.m and |x|^2 (P,)."""
    if k <= 1:
        return np.sqrt(np.maximum(x2 + cross.min(axis=1), 0))
    k = min(k, cross.shape[1])
    nearest = np.partition(cross, k - 1, axis=1)[:, :k]
    return np.sqrt(np.maximum(x2[:, None] + nearest, 0)).mean(axis=1)


def blur(patch_map: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """2-D correlation of (N, 1, h, w) with an odd square kernel, edge padding."""
    r = kernel.shape[0] // 2
    padded = np.pad(patch_map, ((0, 0), (0, 0), (r, r), (r, r)), mode="edge")
    h, w = patch_map.shape[2:]
    out = np.zeros_like(patch_map)
    for dy in range(kernel.shape[0]):
        for dx in range(kernel.shape[1]):
            out += kernel[dy, dx] * padded[:, :, dy:dy + h, dx:dx + w]
    return out


def patch_map_to_outputs(dist: np.ndarray, head: HeadParams) -> tuple[np.ndarray, np.ndarray]:
    """Steps 6-8 on (N, 1, h, w) patch distances: (anomaly_map (N, 1, H, W), score (N,))."""
    n = len(dist)
    z = dist
    if head.position_mean is not None and head.position_std is not None:
        z = (dist - head.position_mean.astype(np.float64)) / head.position_std.astype(np.float64)
    smooth = blur(z, head.blur_kernel.astype(np.float64)) if head.blur_sigma > 0 else z
    if head.border > 0:
        smooth = smooth * head.border_keep
    full = resize_bilinear(smooth, head.input_size)
    peak = full.reshape(n, -1).max(axis=1)
    if head.top_k <= 1:
        return full, peak
    top = -np.sort(-smooth.reshape(n, -1), axis=1)[:, :head.top_k]
    return full, np.minimum(top.mean(axis=1), peak)


def reference_outputs(feat8: np.ndarray, feat16: np.ndarray, head: HeadParams
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(anomaly_map (N, 1, H, W), score (N,)) computed in numpy from backbone features."""
    p8, p16 = pooled_layers(feat8.astype(np.float64), feat16.astype(np.float64))
    x = head.transform(patch_features(p8, p16, head.layer_scales))
    n, _, h, w = p8.shape
    dist = nearest_distances(x, head).reshape(n, 1, h, w)
    return patch_map_to_outputs(dist, head)
