"""Quick study of anomaly-head variants on the VALIDATION split of the real-surfaces set, on cached features.

Backbone features are computed once per category and input size (the training feature graph, plus extra
taps of the backbone for the layer study) and cached under ``benchmarks/.data/head_cache``; each head
variant is then fitted with the training code (:func:`inspection.model.training.fit_head`) or, for variants
the graph does not have yet, with the study's own numpy code, and scored in float32 numpy. Threshold-free
figures: image AUROC (map maximum after the border) and pixel AUROC (maps upsampled to the 256-px source,
all validation pixels pooled), per category and their mean.

    python benchmarks/head_study.py [--variants "name part;=exact name"] [--categories a,b] [--snr] [--table]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.accuracy_protocol import DATA, real_surfaces  # noqa: E402
from benchmarks.colour_features import (  # noqa: E402
    ColourChannels,
    cell_stats,
    channels_from_cells,
    unit_scale,
    weight_columns,
)
from datasets.real_surfaces import load_manifest  # noqa: E402
from inspection.evaluation.metrics import auroc  # noqa: E402
from inspection.imaging import list_images, load_image  # noqa: E402
from inspection.model.anomaly_head import HeadParams, avg_pool3, patch_features, whitening  # noqa: E402
from inspection.model.coreset import greedy_coreset  # noqa: E402
from inspection.model.normalisation import position_stats  # noqa: E402
from inspection.model.runtime import resize_for_model  # noqa: E402
from inspection.model.training import TrainConfig, fit_head  # noqa: E402

CACHE = DATA / "head_cache"
SURFACES: Path | None = None  # another generated copy of the set (--surfaces); None: the protocol's own
SPLIT = "validation"  # the split variants are scored on (--split test only to confirm a choice)
EVAL_SIZE = 256  # pixel metrics at the source images' size
KEY_KINDS = ("stain", "ds_stain", "pit")  # the kinds the colour channels are for
TAPS = {"b2": "/_blocks.2/Add_output_0", "b6": "/_blocks.6/Add_output_0"}


@dataclass
class Split:
    p8: np.ndarray
    p16: np.ndarray
    extra: dict[str, np.ndarray]
    labels: np.ndarray
    masks: np.ndarray  # (N, 256, 256) bool
    snr: np.ndarray
    subtle: np.ndarray
    kinds: np.ndarray
    cells: np.ndarray | None = None  # (N, 4, h, w) colour_channels.cell_stats of the images at the input size


def _photometric_front(graph, mode: str) -> None:
    """Replace the fixed (x - 127) / 128 scaling of the feature graph by a per-image photometric normalisation:
    ``standardise`` (each channel to zero mean, std 0.4 over the image) or ``flatfield<cells>`` (each channel
    divided by a heavily blurred copy: means of cells x cells pixel blocks, 3x3 pooled, upsampled bilinearly)."""
    from onnx import helper, numpy_helper

    nodes = list(graph.graph.node)
    at = next(i for i, n in enumerate(nodes) if n.output[0] == "pre/scaled")
    drop = {"pre/centred", "pre/scaled"}
    kept = [n for n in nodes[:at + 1] if n.output[0] not in drop]
    new = []
    inits = graph.graph.initializer

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(kind: str, inputs: list[str], out: str, **attrs) -> str:
        new.append(helper.make_node(kind, inputs, [out], name=out, **attrs))
        return out

    if mode == "standardise":
        op("ReduceMean", ["pre/float"], "pm/mean", axes=[1, 2], keepdims=1)
        op("Sub", ["pre/float", "pm/mean"], "pm/centred")
        op("Mul", ["pm/centred", "pm/centred"], "pm/sq")
        op("ReduceMean", ["pm/sq"], "pm/var", axes=[1, 2], keepdims=1)
        op("Add", ["pm/var", const("pm/eps", np.float32(1.0))], "pm/var_eps")
        op("Sqrt", ["pm/var_eps"], "pm/std")
        op("Div", ["pm/centred", "pm/std"], "pm/unit")
        op("Mul", ["pm/unit", const("pm/target", np.float32(0.4))], "pre/scaled")
    elif mode.startswith("flatfield"):
        k = int(mode[len("flatfield"):])
        op("Transpose", ["pre/float"], "pm/nchw", perm=[0, 3, 1, 2])
        op("AveragePool", ["pm/nchw"], "pm/cells", kernel_shape=[k, k], strides=[k, k])
        op("AveragePool", ["pm/cells"], "pm/cells3", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1],
           count_include_pad=0)
        op("Resize", ["pm/cells3", "", const("pm/up", np.array([1, 1, k, k], np.float32))], "pm/blur_nchw",
           mode="linear", coordinate_transformation_mode="half_pixel")
        op("Transpose", ["pm/blur_nchw"], "pm/blur", perm=[0, 2, 3, 1])
        op("Add", ["pm/blur", const("pm/one", np.float32(1.0))], "pm/blur1")
        op("Div", ["pre/float", "pm/blur1"], "pm/flat")
        op("Sub", ["pm/flat", const("pm/unit_one", np.float32(1.0))], "pm/centred1")
        op("Mul", ["pm/centred1", const("pm/gain", np.float32(127 / 128))], "pre/scaled")
    else:
        raise ValueError(f"unknown photometric mode {mode!r}")
    del graph.graph.node[:]
    graph.graph.node.extend(kept + new + nodes[at + 1:])


def _feature_session(size: int, photometric: str = "none"):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from inspection.model.graph import feature_graph
    from inspection.model.shipped import backbone_path
    graph = feature_graph(onnx.load(str(backbone_path())), (size, size))
    if photometric != "none":
        _photometric_front(graph, photometric)
    for name in TAPS.values():
        graph.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(graph.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _pool_tap(name: str, x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Extra taps to stride 8: 3x3 average pooling, then 2x2 mean (stride 4) or bilinear upsampling (16)."""
    p = avg_pool3(x)
    if p.shape[2] > shape[0]:
        n, c, h, w = p.shape
        return p.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))
    return np.stack([np.stack([cv2.resize(ch, shape[::-1], interpolation=cv2.INTER_LINEAR) for ch in img])
                     for img in p])


def _cells(paths: list[Path], size: int) -> np.ndarray:
    return np.concatenate([cell_stats(np.stack([resize_for_model(load_image(p), (size, size))
                                                for p in paths[i:i + 32]])).astype(np.float32)
                           for i in range(0, len(paths), 32)])


def _extract(session, paths: list[Path], size: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    p8s, p16s, extra = [], [], {k: [] for k in TAPS}
    names = ["pooled8", "pooled16", *TAPS.values()]
    for i in range(0, len(paths), 16):
        batch = np.stack([resize_for_model(load_image(p), (size, size)) for p in paths[i:i + 16]])
        out = session.run(names, {"image": batch})
        p8s.append(out[0])
        p16s.append(out[1])
        for (key, _), raw in zip(TAPS.items(), out[2:], strict=True):
            extra[key].append(_pool_tap(key, raw, out[0].shape[2:]).astype(np.float32))
    return np.concatenate(p8s), np.concatenate(p16s), {k: np.concatenate(v) for k, v in extra.items()}


def _labelled(root: Path) -> tuple[list[Path], list[int], list[np.ndarray], list[dict]]:
    attrs = json.loads((root / "defects.json").read_text())
    paths, labels, masks, meta = [], [], [], []
    for kind_dir in sorted((root / "test").iterdir()):
        for p in list_images(kind_dir):
            paths.append(p)
            good = kind_dir.name == "good"
            labels.append(0 if good else 1)
            if good:
                masks.append(np.zeros((EVAL_SIZE, EVAL_SIZE), bool))
                meta.append({"kind": "good", "subtle": False, "snr": 0.0})
            else:
                raw = cv2.imread(str(root / "ground_truth" / kind_dir.name / f"{p.stem}_mask.png"), 0)
                masks.append(cv2.resize(raw, (EVAL_SIZE, EVAL_SIZE), interpolation=cv2.INTER_NEAREST) > 0)
                meta.append(attrs[f"test/{kind_dir.name}/{p.name}"])
    return paths, labels, masks, meta


def load_category(cat: str, size: int, photometric: str = "none", split: str | None = None) -> tuple[Split, Split]:
    """(train, validation) features of a category at an input size, from the cache or computed once."""
    CACHE.mkdir(parents=True, exist_ok=True)
    file = CACHE / (f"{cat}_{size}.npz" if photometric == "none" else f"{cat}_{size}_{photometric}.npz")
    cells_file = CACHE / f"{cat}_{size}_cells.npz"
    root = (SURFACES or real_surfaces()) / cat
    if (split or SPLIT) == "test":  # the training images' features from the validation cache, the test split's apart
        return _test_split(cat, size, photometric, root, load_category(cat, size, photometric, "validation")[0])
    vpaths, labels, masks, meta = _labelled(root / "validation")
    if not cells_file.exists():
        np.savez(cells_file, t=_cells(list_images(root / "train" / "good"), size), v=_cells(vpaths, size))
    cells = np.load(cells_file)
    if not file.exists():
        session = _feature_session(size, photometric)
        t8, t16, tx = _extract(session, list_images(root / "train" / "good"), size)
        v8, v16, vx = _extract(session, vpaths, size)
        np.savez(file, t8=t8, t16=t16, v8=v8, v16=v16, **{f"t_{k}": v for k, v in tx.items()},
                 **{f"v_{k}": v for k, v in vx.items()})
    z = np.load(file)
    none = np.zeros(len(z["t8"]))
    train = Split(z["t8"], z["t16"], {k: z[f"t_{k}"] for k in TAPS}, np.zeros(len(z["t8"]), int),
                  np.zeros((0, EVAL_SIZE, EVAL_SIZE), bool), none, none.astype(bool), np.array(["good"] * len(none)),
                  cells["t"])
    val = Split(z["v8"], z["v16"], {k: z[f"v_{k}"] for k in TAPS}, np.array(labels), np.stack(masks),
                np.array([m["snr"] for m in meta]), np.array([m["subtle"] for m in meta]),
                np.array([m["kind"] for m in meta]), cells["v"])
    return train, val


def _test_split(cat: str, size: int, photometric: str, root: Path, train: Split) -> tuple[Split, Split]:
    file = CACHE / f"{cat}_{size}_{photometric}_test.npz"
    paths, labels, masks, meta = _labelled(root)
    if not file.exists():
        v8, v16, vx = _extract(_feature_session(size, photometric), paths, size)
        np.savez(file, v8=v8, v16=v16, cells=_cells(paths, size), **{f"v_{k}": v for k, v in vx.items()})
    z = np.load(file)
    return train, Split(z["v8"], z["v16"], {k: z[f"v_{k}"] for k in TAPS}, np.array(labels), np.stack(masks),
                        np.array([m["snr"] for m in meta]), np.array([m["subtle"] for m in meta]),
                        np.array([m["kind"] for m in meta]), z["cells"])


@dataclass(frozen=True)
class Variant:
    name: str
    size: int = 256
    bank: int = 1024  # coreset entries; 1 = one Gaussian (whitened), 0 = every training patch
    dims: int | None = None  # search on this many principal axes of the bank
    k: int = 1  # mean distance to the k nearest entries
    border: int = 0
    normalise: bool = True
    whiten: bool = True
    shrinkage: float = 0.01
    layers: tuple[str, ...] = ("p8", "p16")
    pos_mean: bool = False  # subtract a per-position mean (PaDiM-like means, global covariance)
    padim: float = 0.0  # > 0: per-position covariance shrunk towards the global one by this weight
    top_k: int = 1
    stats_images: int | None = None  # position statistics from this many bank images (None: all)
    colour_window: int | None = None  # colour channels (colour_channels.py) with this window; None: none
    contrast: bool = False  # with the colour channels: the luminance-contrast channel too
    colour_weight: float = 1.0  # the whitened colour channels count this many times in the distance
    photometric: str = "none"  # per-image normalisation before the backbone (see _photometric_front)
    colour_map: float = 0.0  # > 0: the colour channels get their own Gaussian, its normalised map added this much


@dataclass
class Fitted:
    v: Variant
    scales: list[float]
    mean: np.ndarray | None
    white: np.ndarray | None
    bank: np.ndarray
    bank_sq: np.ndarray
    proj: np.ndarray | None
    pos_mu: np.ndarray | None = None
    pos_inv: np.ndarray | None = None
    stats: tuple[np.ndarray, np.ndarray] | None = None
    colour: ColourChannels | None = None
    colour_gauss: tuple[ColourChannels, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None


def _colour_distances(s: Split, g: tuple) -> np.ndarray:
    """(N, h, w) Mahalanobis distance of each patch's colour channels to their own Gaussian."""
    colour, mean, white = g[:3]
    assert s.cells is not None
    c = channels_from_cells(s.cells.astype(np.float64), colour)
    x = (c.transpose(0, 2, 3, 1) - mean) @ white
    return np.sqrt(np.sum(x * x, axis=3))


def _layers(s: Split, names: tuple[str, ...]) -> list[np.ndarray]:
    return [s.p8 if n == "p8" else s.p16 if n == "p16" else s.extra[n] for n in names]


def features(s: Split, f: Fitted) -> np.ndarray:
    """(N, P, D) float32 patch features in the bank's space."""
    parts = [layer * sc for layer, sc in zip(_layers(s, f.v.layers), f.scales, strict=True)]
    if f.colour is not None:
        assert s.cells is not None
        parts.append(channels_from_cells(s.cells.astype(np.float64), f.colour).astype(np.float32))
    x = np.concatenate(parts, axis=1)
    n, c, h, w = x.shape
    x = x.transpose(0, 2, 3, 1).reshape(n, h * w, c).astype(np.float32)
    if f.white is not None and f.mean is not None:
        x = (x - f.mean) @ f.white
    if f.pos_mu is not None:
        x = x - f.pos_mu
    return x


def distances(x: np.ndarray, f: Fitted, exclude: np.ndarray | None = None, entry_image: np.ndarray | None = None
              ) -> np.ndarray:
    """(N, P) distances; ``exclude`` (N,) image indices whose bank entries are skipped (leave one out)."""
    n, p, _ = x.shape
    out = np.empty((n, p), np.float32)
    for i in range(n):
        xi = x[i]
        if f.pos_inv is not None:
            out[i] = np.sqrt(np.maximum(np.einsum("pd,pde,pe->p", xi, f.pos_inv, xi), 0))
            continue
        x2 = np.sum(xi * xi, axis=1)
        xp = xi @ f.proj if f.proj is not None else xi
        for a in range(0, p, 512):
            cross = f.bank_sq[None] - 2 * (xp[a:a + 512] @ f.bank.T)
            if exclude is not None and entry_image is not None:
                cross[:, entry_image == exclude[i]] = np.inf
            if f.v.k == 1:
                out[i, a:a + 512] = np.sqrt(np.maximum(x2[a:a + 512] + cross.min(axis=1), 0))
            else:
                part = np.partition(cross, f.v.k - 1, axis=1)[:, :f.v.k]
                out[i, a:a + 512] = np.sqrt(np.maximum(x2[a:a + 512, None] + part, 0)).mean(axis=1)
    return out


def _scales(train: Split, names: tuple[str, ...]) -> list[float]:
    return [float(1.0 / np.sqrt(np.mean(np.sum(layer.astype(np.float64) ** 2, axis=1))))
            for layer in _layers(train, names)]


def _padim(x: np.ndarray, weight: float) -> tuple[np.ndarray, np.ndarray]:
    mu = x.mean(axis=0)
    r = x - mu
    cov = np.einsum("npd,npe->pde", r, r) / max(len(x) - 1, 1)
    eye = np.eye(x.shape[2], dtype=np.float32)
    return mu, np.linalg.inv((1 - weight) * cov + weight * eye).astype(np.float32)


def _cached_coreset(chooser: np.ndarray, v: Variant, key: str, seed: int) -> np.ndarray:
    """The greedy coreset's indices, kept on disk per category and fit-relevant setting."""
    tag = f"{key}_{v.size}_{'-'.join(v.layers)}_{v.shrinkage}_{v.pos_mean}_{v.whiten}_{v.bank}_{seed}"
    if v.colour_window is not None or v.photometric != "none":
        tag += f"_c{v.colour_window}-{v.contrast}-{v.colour_weight}_{v.photometric}"
    file = CACHE / f"coreset_{tag}.npy"
    if file.exists():
        return np.load(file)
    chosen = greedy_coreset(chooser, v.bank, seed=seed)
    np.save(file, chosen)
    return chosen


def fit(train: Split, v: Variant, seed: int = 0, cache_key: str = "") -> Fitted:
    """The head of a variant, mirroring :func:`inspection.model.training.fit_head` (checked by `baseline`)."""
    f = Fitted(v, _scales(train, v.layers), None, None, np.zeros((1, 1), np.float32), np.zeros(1, np.float32), None)
    if v.colour_window is not None:
        assert train.cells is not None
        raw = ColourChannels(v.colour_window, v.contrast)
        f.colour = ColourChannels(v.colour_window, v.contrast,
                                  unit_scale(channels_from_cells(train.cells.astype(np.float64), raw)))
        if v.colour_map > 0:
            c = channels_from_cells(train.cells.astype(np.float64), f.colour)
            cm, cw = whitening(c.transpose(0, 2, 3, 1).reshape(len(c), -1, c.shape[1]), shrinkage=v.shrinkage)
            g = (f.colour, cm.astype(np.float64), cw.astype(np.float64))
            dc = _colour_distances(train, g)
            f.colour_gauss = (*g, dc.mean(axis=0), np.maximum(dc.std(axis=0), 1e-6))
            f.colour = None
    x = features(train, f)
    if v.whiten:
        f.mean, f.white = whitening(x, shrinkage=v.shrinkage, seed=seed)
        if f.colour is not None and v.colour_weight != 1.0:
            f.white = weight_columns(f.white, x.shape[2] - f.colour.count, v.colour_weight)
        x = (x - f.mean) @ f.white
    _, p, d = x.shape
    entry_image = np.full(1, -1)
    if v.padim > 0:
        f.pos_mu, f.pos_inv = _padim(x, v.padim)
    elif v.pos_mean:
        f.pos_mu = x.mean(axis=0)
        x = x - f.pos_mu
    if v.bank == 1 or v.padim > 0:
        f.bank, f.bank_sq = np.zeros((1, d), np.float32), np.zeros(1, np.float32)
    else:
        flat = x.reshape(-1, d)
        if v.bank == 0:
            chosen = np.arange(len(flat))
        else:
            rng = np.random.default_rng(seed)
            chooser = flat @ (rng.standard_normal((d, 32)) / np.sqrt(32)).astype(np.float32)
            chosen = _cached_coreset(chooser, v, cache_key, seed)
        full = flat[chosen]
        f.bank_sq = np.sum(full * full, axis=1)
        f.bank = full
        if v.dims is not None:
            _, _, vt = np.linalg.svd(full[:50_000].astype(np.float64), full_matrices=False)
            f.proj = np.ascontiguousarray(vt[:v.dims].T, dtype=np.float32)
            f.bank = full @ f.proj
        entry_image = chosen // p
    if v.normalise:
        f.stats = _stats(train, x, f, entry_image, seed)
    return f


def _stats(train: Split, x: np.ndarray, f: Fitted, entry_image: np.ndarray, seed: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """Per-position statistics of leave-one-image-out distances (two folds for the per-position Gaussian)."""
    v = f.v
    n = len(x)
    take = np.arange(n) if v.stats_images is None or v.stats_images >= n else np.sort(
        np.random.default_rng(seed).choice(n, v.stats_images, replace=False))
    if v.padim > 0:  # a covariance fitted on one half measures the other half
        half = np.zeros(n, bool)
        half[np.random.default_rng(seed).permutation(n)[: n // 2]] = True
        d = np.empty((n, x.shape[1]), np.float32)
        for side in (half, ~half):
            mu, inv = _padim(x[~side], v.padim)
            d[side] = distances(x[side] - mu, Fitted(v, f.scales, None, None, f.bank, f.bank_sq, None,
                                                     pos_inv=inv))
        d = d[take]
    else:
        d = distances(x[take], f, exclude=take, entry_image=entry_image)
    h = round(np.sqrt(x.shape[1]))
    st = position_stats(d, (h, x.shape[1] // h))
    return st.mean, st.std


def evaluate(f: Fitted, val: Split) -> dict:
    """Image and pixel AUROC of a fitted variant on a validation split."""
    d = distances(features(val, f), f)
    h = round(np.sqrt(d.shape[1]))
    z = d.reshape(len(d), h, -1)
    if f.stats is not None:
        z = (z - f.stats[0]) / f.stats[1]
    if f.colour_gauss is not None:
        z = z + f.v.colour_map * (_colour_distances(val, f.colour_gauss) - f.colour_gauss[3]) / f.colour_gauss[4]
    b = f.v.border
    if b:
        keep = np.zeros(z.shape[1:], np.float32)
        keep[b:-b, b:-b] = 1
        z = z * keep
    maps = np.stack([cv2.resize(m.astype(np.float32), (EVAL_SIZE, EVAL_SIZE), interpolation=cv2.INTER_LINEAR)
                     for m in z])
    peak = maps.reshape(len(z), -1).max(axis=1)  # as the graph: the maximum of the upsampled map
    score = peak if f.v.top_k <= 1 else np.minimum(
        -np.sort(-z.reshape(len(z), -1), axis=1)[:, :f.v.top_k].mean(axis=1), peak)
    clear = (val.labels == 0) | ~val.subtle
    out = {"image": auroc(val.labels, score), "pixel": auroc(val.masks.ravel(), maps.ravel()),
           "image_clear": auroc(val.labels[clear], score[clear]), "kinds": {}}
    for kind in sorted(set(val.kinds) - {"good"}):
        take = (val.kinds == "good") | (val.kinds == kind)
        out["kinds"][kind] = {"image": auroc(val.labels[take], score[take]),
                              "pixel": auroc(val.masks[take].ravel(), maps[take].ravel())}
    return out


def check_against_training(train: Split, val: Split) -> float:
    """Largest difference between the study's baseline scores and the training code's head (numpy reference)."""
    from inspection.model.anomaly_head import nearest_distances, patch_map_to_outputs
    v = Variant("baseline")
    head: HeadParams = fit_head(train.p8, train.p16, TrainConfig(name="study", progress=False))
    f = fit(train, v)
    mine = distances(features(Split(val.p8[:4], val.p16[:4], {}, val.labels[:4], val.masks[:4], val.snr[:4],
                                    val.subtle[:4], val.kinds[:4]), f), f)
    h = round(np.sqrt(mine.shape[1]))
    assert f.stats is not None
    z = np.array([cv2.resize(m, (256, 256), interpolation=cv2.INTER_LINEAR).max()
                  for m in (mine.reshape(4, h, -1) - f.stats[0]) / f.stats[1]])
    x = head.transform(patch_features(val.p8[:4].astype(np.float64), val.p16[:4].astype(np.float64),
                                      head.layer_scales))
    _, ref = patch_map_to_outputs(nearest_distances(x, head).reshape(4, 1, h, -1), head)

    return float(np.max(np.abs(z - ref)))


VARIANTS = [
    Variant("baseline: whitened coreset 1,024, normalised (balanced)"),
    Variant("border 1, not normalised", normalise=False, border=1),
    Variant("border 2, not normalised", normalise=False, border=2),
    Variant("border 1, normalised", border=1),
    Variant("border 2, normalised", border=2),
    Variant("Gaussian (fast)", bank=1),
    Variant("Gaussian, border 1", bank=1, border=1),
    Variant("Gaussian, border 2", bank=1, border=2),
    Variant("coreset 1,024, border 1, k=3", k=3, border=1),
    Variant("coreset 2,048, border 1 (accurate)", bank=2048, border=1),
    Variant("coreset 4,096, 32 axes, border 1", bank=4096, dims=32, border=1),
    Variant("Gaussian, border 1, shrinkage 0.1", bank=1, shrinkage=0.1, border=1),
    Variant("Gaussian, border 1, shrinkage 0.001", bank=1, shrinkage=0.001, border=1),
    Variant("Gaussian, border 1, per-position means", bank=1, pos_mean=True, border=1),
    Variant("per-position Gaussian (PaDiM), shrink 0.5, border 1", padim=0.5, border=1),
    Variant("Gaussian, border 1, + block 2 (stride 4)", bank=1, border=1, layers=("p8", "p16", "b2")),
    Variant("Gaussian, border 1, + block 6", bank=1, border=1, layers=("p8", "p16", "b6")),
    Variant("384 px, Gaussian, border 1", size=384, bank=1, border=1),
    Variant("320 px, Gaussian, border 1", size=320, bank=1, border=1),
    Variant("coreset 1,024, border 1, stats from 40 images", border=1, stats_images=40),
    Variant("384 px, coreset 1,024, border 1", size=384, border=1),
    Variant("coreset 1,024, border 1, k=5", k=5, border=1),
    Variant("coreset 1,024, border 1, shrinkage 0.1", border=1, shrinkage=0.1),
    Variant("coreset 1,024, border 1, + block 2", border=1, layers=("p8", "p16", "b2")),
    Variant("coreset 8,192, 32 axes, border 1", bank=8192, dims=32, border=1),
    Variant("full bank (ceiling), border 1", bank=0, stats_images=40, border=1),
    Variant("384 px, coreset 1,024, border 1, k=3", size=384, border=1, k=3, stats_images=48),
    Variant("384 px, coreset 2,048, border 1, k=3", size=384, bank=2048, border=1, k=3, stats_images=48),
    Variant("320 px, coreset 1,024, border 1, k=3", size=320, border=1, k=3, stats_images=48),
    # colour channels (issue 12: stains and shaded pits) and per-image photometric normalisation
    Variant("colour G: Gaussian, border 1, colour vs image mean", bank=1, border=1, colour_window=0),
    Variant("colour G: Gaussian, border 1, colour vs 9x9 cells", bank=1, border=1, colour_window=9),
    Variant("colour G: Gaussian, border 1, colour vs 5x5 cells", bank=1, border=1, colour_window=5),
    Variant("colour G: Gaussian, border 1, colour 9x9 + contrast", bank=1, border=1, colour_window=9,
            contrast=True),
    Variant("colour G: Gaussian, border 1, colour image + contrast", bank=1, border=1, colour_window=0,
            contrast=True),
    Variant("colour G: Gaussian, border 1, colour 9x9 + contrast, weight 2", bank=1, border=1, colour_window=9,
            contrast=True, colour_weight=2.0),
    Variant("colour G: Gaussian, border 1, colour 9x9 + contrast, weight 4", bank=1, border=1, colour_window=9,
            contrast=True, colour_weight=4.0),
    Variant("photometric G: Gaussian, border 1, standardised input", bank=1, border=1, photometric="standardise"),
    Variant("photometric G: Gaussian, border 1, flat-field 32 px", bank=1, border=1, photometric="flatfield32"),
    Variant("photometric G: Gaussian, border 1, flat-field 32 px + colour 9x9 + contrast", bank=1, border=1,
            photometric="flatfield32", colour_window=9, contrast=True),
    Variant("colour map G: Gaussian, border 1, + colour 9x9 + contrast map x1", bank=1, border=1, colour_window=9,
            contrast=True, colour_map=1.0),
    Variant("colour map G: Gaussian, border 1, + colour 9x9 + contrast map x0.5", bank=1, border=1,
            colour_window=9, contrast=True, colour_map=0.5),
    Variant("colour map G: Gaussian, border 1, + colour 5x5 + contrast map x1", bank=1, border=1, colour_window=5,
            contrast=True, colour_map=1.0),
    Variant("colour G: Gaussian, border 1, colour 5x5 + contrast, weight 3", bank=1, border=1, colour_window=5,
            contrast=True, colour_weight=3.0),
    Variant("photometric G: Gaussian, border 1, flat-field 64 px", bank=1, border=1, photometric="flatfield64"),
    Variant("photometric C: coreset 1,024, border 1, k=3, flat-field 32 px", k=3, border=1, stats_images=48,
            photometric="flatfield32"),
    Variant("balanced: coreset 1,024, border 1, k=3, stats from 48 images", k=3, border=1, stats_images=48),
    Variant("colour C: coreset 1,024, border 1, k=3, colour 9x9 + contrast", k=3, border=1, colour_window=9,
            contrast=True, stats_images=48),
    Variant("colour C: coreset 1,024, border 1, k=3, colour 9x9 + contrast, weight 2", k=3, border=1,
            colour_window=9, contrast=True, colour_weight=2.0, stats_images=48),
    Variant("colour C: coreset 1,024, border 1, k=3, colour 9x9 + contrast, weight 4", k=3, border=1,
            colour_window=9, contrast=True, colour_weight=4.0, stats_images=48),
    Variant("colour C: coreset 1,024, border 1, k=3, colour 9x9 + contrast, weight 8", k=3, border=1,
            colour_window=9, contrast=True, colour_weight=8.0, stats_images=48),
]


def snr_report(categories: list[str]) -> list[dict]:
    """How many test defects are visible: SNR per category, clear and subtle (from defects.json)."""
    rows = []
    root = real_surfaces()
    for cat in categories:
        attrs = json.loads((root / cat / "defects.json").read_text()).values()
        for subtle in (False, True):
            snr = np.array([a["snr"] for a in attrs if a["subtle"] == subtle])
            rows.append({"category": cat, "subtle": subtle, "defects": len(snr),
                         "median": float(np.median(snr)), "below_1": int((snr < 1).sum()),
                         "below_0.6": int((snr < 0.6).sum())})
    return rows


def table(path: Path) -> str:
    """The recorded study lines (the last one per variant) as a Markdown table."""
    rows = {r["variant"]: r for r in map(json.loads, path.read_text().splitlines())}
    cats = list(next(iter(rows.values()))["categories"])
    lines = ["| head | mean image AUROC | mean pixel AUROC | image AUROC, clear defects | "
             + " | ".join(cats) + " (image AUROC) | " + " | ".join(f"{k} image / pixel" for k in KEY_KINDS) + " |",
             "|---|---|---|---|" + "---|" * (len(cats) + len(KEY_KINDS))]
    for name, r in rows.items():
        kinds = r.get("kinds", {})
        lines.append(f"| {name} | {r['image']:.4f} | {r['pixel']:.4f} | {r['image_clear']:.4f} | "
                     + " | ".join(f"{r['categories'][c]['image']:.3f}" for c in cats) + " | "
                     + " | ".join(f"{kinds[k]['image']:.3f} / {kinds[k]['pixel']:.3f}" if k in kinds else "-"
                                  for k in KEY_KINDS) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", default="",
                        help="substrings of variant names (separated by ;), or =name for exactly that one")
    parser.add_argument("--categories", default=",".join(load_manifest()["categories"]))
    parser.add_argument("--snr", action="store_true", help="only the visibility report of the test split")
    parser.add_argument("--check", action="store_true", help="compare the baseline with the training code")
    parser.add_argument("--out", type=Path, default=DATA / "head_study.jsonl")
    parser.add_argument("--table", action="store_true", help="print the recorded lines as a Markdown table")
    parser.add_argument("--split", choices=["validation", "test"], default="validation",
                        help="score on the test split (only to confirm a choice made on validation)")
    parser.add_argument("--surfaces", type=Path, default=None,
                        help="another generated copy of the real-surfaces set (its features cached apart)")
    args = parser.parse_args()
    global CACHE, SURFACES, SPLIT
    SPLIT = args.split
    if args.surfaces is not None:
        SURFACES = args.surfaces.resolve()
        CACHE = DATA / f"head_cache_{SURFACES.name}"
    cats = args.categories.split(",")
    if args.table:
        print(table(args.out))
        return
    if args.snr:
        for row in snr_report(cats):
            print(json.dumps(row))
        return
    if args.check:
        train, val = load_category(cats[0], 256)
        print("largest score difference against the training code:", check_against_training(train, val))
        return
    wanted = [w for w in args.variants.split(";") if w]
    chosen = [v for v in VARIANTS if not wanted or any(w[1:] == v.name if w.startswith("=") else w in v.name
                                                        for w in wanted)]
    for v in chosen:
        row: dict = {"variant": v.name, "categories": {}}
        t = time.perf_counter()
        for cat in cats:
            train, val = load_category(cat, v.size, v.photometric)
            row["categories"][cat] = evaluate(fit(train, v, cache_key=cat), val)
        for key in ("image", "pixel", "image_clear"):
            row[key] = float(np.mean([c[key] for c in row["categories"].values()]))
        kinds = sorted({k for c in row["categories"].values() for k in c["kinds"]})
        row["kinds"] = {k: {m: float(np.mean([c["kinds"][k][m] for c in row["categories"].values()
                                              if k in c["kinds"]])) for m in ("image", "pixel")} for k in kinds}
        row["seconds"] = round(time.perf_counter() - t, 1)
        print(f"{v.name:50s} img {row['image']:.4f} pix {row['pixel']:.4f} clear {row['image_clear']:.4f} "
              + " ".join(f"{c[:4]} {m['image']:.3f}" for c, m in row["categories"].items())
              + " | " + " ".join(f"{k} {row['kinds'][k]['image']:.3f}/{row['kinds'][k]['pixel']:.3f}"
                                 for k in KEY_KINDS if k in row["kinds"])
              + f"  ({row['seconds']} s)", flush=True)
        with args.out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
