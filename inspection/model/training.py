"""Training a model for a new part type from good images only, with onnxruntime and numpy (no torch).

good images -> feature graph (backbone, pooling) -> patch features -> greedy k-center coreset -> memory bank
-> principal axes -> one ONNX inspection graph with the metadata inside -> threshold calibrated on held-out
good images (and labelled defects, if given) -> model file + calibration report.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from tqdm import tqdm

from inspection import __version__
from inspection.errors import DatasetError, ImageError
from inspection.imaging import list_images, load_image
from inspection.model.anomaly_head import HeadParams, layer_scales, patch_features, principal_axes, whitening
from inspection.model.calibration import Calibration, Policy, calibrate, save_report, score_stats
from inspection.model.coreset import greedy_coreset
from inspection.model.graph import backbone_channels, check_input_size, feature_graph, inspection_graph
from inspection.model.metadata import Head, ModelMetadata, TrainingSet, write_metadata
from inspection.model.normalisation import DESCRIPTION as NORMALISATION
from inspection.model.normalisation import leave_one_out_distances, position_stats
from inspection.model.runtime import InspectionModel, resize_for_model, session_options
from inspection.model.shipped import backbone_path
from inspection.model.tiling import FrameMapping, FrameMappingError

MIN_TRAIN_IMAGES = 8
SELECTION_DIM = 32  # random projection used only to choose the coreset (fast, ranks distances well)


@dataclass
class TrainConfig:
    name: str
    model_version: str = "1"
    input_size: tuple[int, int] = (256, 256)
    # the defaults are the ``balanced`` preset (inspection.model.presets), as for `inspection train`
    bank_size: int = 1024
    projection_dim: int | None = None
    blur_sigma: float = 0.0
    whiten: bool = True  # whiten the patch features (training patches' covariance) before the bank
    normalise: bool = True  # per-position normalisation of the patch map (leave-one-image-out statistics)
    border: int = 1  # patches at each edge left out of the map and the score
    stats_images: int | None = 48  # bank images the position statistics are measured on (None: all)
    top_k: int = 1  # image score: mean of the top-k patches (1 = the maximum)
    k_nearest: int = 3  # patch distance: mean distance to the k nearest bank entries (a bank of 1: 1)
    preset: str | None = None
    holdout_fraction: float = 0.15
    target_frr: float = 0.01
    policy: Policy = "frr"
    seed: int = 0
    threads: int | None = None
    batch_size: int = 16
    progress: bool = True
    bar: type[tqdm] = tqdm  # the progress-bar class (`inspection train --progress-json` gives JSON lines)

    def check(self) -> None:
        check_input_size(self.input_size)
        if self.bank_size < 16 and not (self.whiten and self.bank_size == 1):
            raise ValueError(f"bank size {self.bank_size} is too small (at least 16; 1 with whitening: a single "
                             "Gaussian)")
        if self.projection_dim is not None and self.projection_dim < 1:
            raise ValueError(f"projection dim {self.projection_dim} must be at least 1 (or none)")
        if not 0 <= self.holdout_fraction < 0.9:
            raise ValueError(f"holdout fraction {self.holdout_fraction} must be in [0, 0.9)")
        h, w = self.input_size[0] // 8, self.input_size[1] // 8
        if not 0 <= self.border < min(h, w) // 2 - 1:
            raise ValueError(f"border {self.border} patches leaves nothing of a {h}x{w} patch map")
        if self.stats_images is not None and self.stats_images < 2:
            raise ValueError(f"stats images {self.stats_images} must be at least 2 (or none: all bank images)")
        if self.k_nearest < 1:
            raise ValueError(f"k nearest {self.k_nearest} must be at least 1 (a bank of 1 always uses 1)")
        if not 1 <= self.top_k <= h * w:
            raise ValueError(f"top-k {self.top_k} must be between 1 and the {h * w} patches of the map")


@dataclass
class LoadedImages:
    paths: list[Path]
    images: np.ndarray  # (N, H, W, 3) uint8 at the model input size
    errors: list[str] = field(default_factory=list)


@dataclass
class TrainReport:
    model_path: Path
    calibration: Calibration
    calibration_path: Path
    bank_images: int
    held_out: int
    patches: int
    errors: list[str]
    seconds: dict[str, float]


def load_folder(paths: Iterable[Path], size: tuple[int, int], what: str, progress: bool,
                bar: type[tqdm] = tqdm) -> LoadedImages:
    """Load and resize images, collecting a message per unreadable file instead of stopping."""
    ok_paths, images, errors = [], [], []
    for p in bar(list(paths), desc=f"reading {what}", unit="img", disable=not progress, leave=False):
        try:
            images.append(resize_for_model(load_image(p), size))
            ok_paths.append(p)
        except ImageError as exc:
            errors.append(str(exc))
    arr = np.stack(images) if images else np.zeros((0, *size, 3), np.uint8)
    return LoadedImages(ok_paths, arr, errors)


def images_under(folder: str | Path, what: str, recursive: bool = False) -> list[Path]:
    """Images in a folder; ``recursive`` also takes its subfolders except any named ``good`` (so an MVTec
    ``test/`` folder gives exactly its defect images)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: {what} folder does not exist")
    if recursive:
        dirs = [folder, *sorted(d for d in folder.rglob("*") if d.is_dir()
                                and "good" not in d.relative_to(folder).parts)]
        paths = [p for d in dirs for p in list_images(d)]
    else:
        paths = list_images(folder)
    if not paths:
        raise DatasetError(f"{folder}: no images in the {what} folder (looked for .png, .jpg, .bmp, .tif, .webp)")
    return paths


def dataset_digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda p: p.name):
        h.update(p.name.encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def feature_batch(config: TrainConfig) -> int:
    """Images per backbone call: ``batch_size`` at 256x256, fewer for larger inputs (the same pixels per
    call), so that the runtime's working memory does not grow with the input size."""
    h, w = config.input_size
    return max(1, round(config.batch_size * 256 * 256 / (h * w)))


def extract_pooled(session: ort.InferenceSession, images: np.ndarray, batch: int, progress: bool,
                   bar: type[tqdm] = tqdm) -> tuple[np.ndarray, np.ndarray]:
    p8s, p16s = [], []
    for i in bar(range(0, len(images), batch), desc="features", unit="batch", disable=not progress,
                  leave=False):
        p8, p16 = session.run(["pooled8", "pooled16"], {"image": images[i:i + batch]})
        p8s.append(p8)
        p16s.append(p16)
    return np.concatenate(p8s), np.concatenate(p16s)


def fit_head(p8: np.ndarray, p16: np.ndarray, config: TrainConfig) -> HeadParams:
    """Memory bank, principal axes, layer scales and (optionally) position statistics from the pooled
    features of the good images."""
    scales = layer_scales(p8, p16)
    dim = p8.shape[1] + p16.shape[1]
    per_image = patch_features(p8, p16, scales).astype(np.float32)
    white_mean = white = None
    if config.whiten:
        white_mean, white = whitening(per_image, seed=config.seed)
        per_image = (per_image - white_mean) @ white
    x = per_image.reshape(-1, dim)
    if config.projection_dim is not None and config.projection_dim > dim:
        raise ValueError(f"projection dim {config.projection_dim} must be at most {dim}, the features' dimension")
    if config.bank_size == 1:  # one Gaussian: the Mahalanobis distance to the mean of the whitened patches
        return _finish_head(replace(_gaussian_head(scales, dim, config), whiten_mean=white_mean, whiten=white),
                            per_image, np.full(1, -1), config)
    rng = np.random.default_rng(config.seed)
    chooser = x @ (rng.standard_normal((dim, SELECTION_DIM)) / np.sqrt(SELECTION_DIM)).astype(np.float32)
    with config.bar(total=min(config.bank_size, len(x)), desc="coreset", unit="entry",
                    disable=not config.progress, leave=False) as bar:
        chosen = greedy_coreset(chooser, config.bank_size, seed=config.seed, progress=bar.update)
    full = x[chosen]
    projection = None
    bank = full
    if config.projection_dim is not None and config.projection_dim < full.shape[1]:
        projection = principal_axes(full, config.projection_dim, seed=config.seed)
        bank = full @ projection
    bank_sq = np.sum(full.astype(np.float64) ** 2, axis=1)
    head = HeadParams(scales, projection, bank.astype(np.float32), bank_sq, config.blur_sigma, config.input_size,
                      border=config.border, top_k=config.top_k, k_nearest=min(config.k_nearest, len(full)),
                      whiten_mean=white_mean, whiten=white)
    return _finish_head(head, per_image, chosen // per_image.shape[1], config)


def _gaussian_head(scales: tuple[float, float], dim: int, config: TrainConfig) -> HeadParams:
    return HeadParams(scales, None, np.zeros((1, dim), np.float32), np.zeros(1), config.blur_sigma,
                      config.input_size, border=config.border, top_k=config.top_k)


def _finish_head(head: HeadParams, per_image: np.ndarray, entry_image: np.ndarray, config: TrainConfig
                 ) -> HeadParams:
    """Add the position statistics (leave-one-image-out distances of the bank images) when asked for."""
    if not config.normalise:
        return head
    take = stats_subset(len(per_image), config.stats_images, config.seed)
    remap = np.full(len(per_image), -1)
    remap[take] = np.arange(len(take))
    entries = np.where(entry_image >= 0, remap[np.maximum(entry_image, 0)], -1)
    stats = position_stats(leave_one_out_distances(per_image[take], head, entries), head.patch_shape)
    return replace(head, position_mean=stats.mean, position_std=stats.std)


def stats_subset(n: int, wanted: int | None, seed: int) -> np.ndarray:
    """Sorted indices of the bank images the position statistics are measured on (all if ``wanted`` is None
    or at least ``n``): the leave-one-image-out search costs one bank search per image."""
    if wanted is None or wanted >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed + 1).choice(n, wanted, replace=False))


def _split_good(good_paths: list[Path], config: TrainConfig, calib_good_dir: str | Path | None
                ) -> tuple[list[Path], list[Path]]:
    """(bank paths, held-out calibration paths)."""
    if calib_good_dir is not None:
        return good_paths, images_under(calib_good_dir, "held-out good images")
    order = np.random.default_rng(config.seed).permutation(len(good_paths))
    n_hold = round(len(good_paths) * config.holdout_fraction)
    return [good_paths[i] for i in sorted(order[n_hold:])], [good_paths[i] for i in sorted(order[:n_hold])]


@dataclass
class _Sets:
    bank: LoadedImages
    hold: LoadedImages
    defects: LoadedImages | None

    @property
    def errors(self) -> list[str]:
        return self.bank.errors + self.hold.errors + (self.defects.errors if self.defects else [])


def _load_sets(good_dir: str | Path, config: TrainConfig, calib_good_dir: str | Path | None,
               defects_dir: str | Path | None) -> _Sets:
    bank_paths, hold_paths = _split_good(images_under(good_dir, "good images"), config, calib_good_dir)
    sets = _Sets(load_folder(bank_paths, config.input_size, "good images", config.progress, config.bar),
                 load_folder(hold_paths, config.input_size, "held-out good images", config.progress, config.bar),
                 load_folder(images_under(defects_dir, "defect images", recursive=True), config.input_size,
                             "defect images", config.progress, config.bar) if defects_dir else None)
    if len(sets.bank.paths) < MIN_TRAIN_IMAGES:
        errors = sets.errors
        raise DatasetError(f"{good_dir}: {len(sets.bank.paths)} readable good images for the memory bank; at "
                           f"least {MIN_TRAIN_IMAGES} are needed (more is better: 100-300 covering the normal "
                           "variation)" + (f". Unreadable: {'; '.join(errors)}" if errors else ""))
    if len(sets.hold.paths) == 0:
        raise DatasetError(f"{good_dir}: no held-out good images for calibration; raise --holdout or give "
                           "--calib-good")
    return sets


def load_training_sets(good_dir: str | Path, config: TrainConfig, calib_good_dir: str | Path | None = None
                       ) -> _Sets:
    """The bank and held-out images exactly as :func:`train` splits them (same seed and hold-out fraction)."""
    return _load_sets(good_dir, config, calib_good_dir, None)


def _metadata(config: TrainConfig, head: HeadParams, good_dir: str | Path, calib_good_dir: str | Path | None,
              sets: _Sets, channels: tuple[int, int]) -> ModelMetadata:
    return ModelMetadata(
        name=config.name, model_version=config.model_version, input_size=config.input_size, threshold=0.0,
        good_scores=score_stats(np.zeros(1)),
        training_set=TrainingSet(folder=Path(good_dir).name, images=len(sets.bank.paths),
                                 held_out=len(sets.hold.paths), digest=dataset_digest(sets.bank.paths),
                                 held_out_folder=None if calib_good_dir is None else str(calib_good_dir)),
        head=Head(backbone=backbone_path().name,
                  backbone_sha256=hashlib.sha256(backbone_path().read_bytes()).hexdigest(),
                  layers=[f"block4 (stride 8, {channels[0]} ch)", f"block7 (stride 16, {channels[1]} ch)"],
                  feature_dim=sum(channels),
                  projection_dim=None if head.projection is None else head.projection.shape[1],
                  bank_size=len(head.bank), blur_sigma=config.blur_sigma,
                  normalisation=_normalisation_note(config, len(sets.bank.paths)) if head.position_mean is not None
                  else "none",
                  whitened=head.whiten is not None, border=head.border, top_k=head.top_k, k_nearest=head.k_nearest,
                  preset=config.preset),
        tool_version=__version__)


def _normalisation_note(config: TrainConfig, bank_images: int) -> str:
    used = len(stats_subset(bank_images, config.stats_images, config.seed))
    return f"{NORMALISATION}; measured on {used} of the {bank_images} bank images"


def save_model(graph: onnx.ModelProto, out: Path) -> None:
    """Write a model file atomically (a temporary file renamed into place)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    onnx.save(graph, str(tmp))
    tmp.replace(out)


def score_images(model: InspectionModel, images: np.ndarray, batch: int = 16) -> np.ndarray:
    return np.concatenate([model.run(images[i:i + batch])[1] for i in range(0, len(images), batch)]) if len(
        images) else np.zeros(0)


def train(good_dir: str | Path, out: str | Path, config: TrainConfig, calib_good_dir: str | Path | None = None,
          defects_dir: str | Path | None = None) -> TrainReport:
    config.check()
    out = Path(out)
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    sets = _load_sets(good_dir, config, calib_good_dir, defects_dir)
    seconds["read"] = time.perf_counter() - t

    t = time.perf_counter()
    backbone = onnx.load(str(backbone_path()))
    features = ort.InferenceSession(feature_graph(backbone, config.input_size).SerializeToString(),
                                    session_options(config.threads), providers=["CPUExecutionProvider"])
    p8, p16 = extract_pooled(features, sets.bank.images, feature_batch(config), config.progress, config.bar)
    del features  # its arena (most of the peak memory at 384 px) is freed before the head is fitted
    seconds["features"] = time.perf_counter() - t

    t = time.perf_counter()
    head = fit_head(p8, p16, config)
    seconds["coreset"] = time.perf_counter() - t

    t = time.perf_counter()
    graph = inspection_graph(backbone, head)
    meta = _metadata(config, head, good_dir, calib_good_dir, sets, backbone_channels(backbone))
    write_metadata(graph, meta)
    model = InspectionModel(ort.InferenceSession(graph.SerializeToString(), session_options(config.threads),
                                                 providers=["CPUExecutionProvider"]), meta, "", str(out))
    good_scores = score_images(model, sets.hold.images)
    defect_scores = score_images(model, sets.defects.images) if sets.defects else None
    calibration = calibrate(good_scores, defect_scores, config.target_frr, config.policy)
    meta.threshold = calibration.threshold
    meta.good_scores = calibration.good_scores
    meta.calibration = calibration.summary()
    write_metadata(graph, meta)
    save_model(graph, out)
    report = save_report(out, calibration)
    seconds["calibrate"] = time.perf_counter() - t
    return TrainReport(out, calibration, report, len(sets.bank.paths), len(sets.hold.paths),
                       int(p8.shape[0] * p8.shape[2] * p8.shape[3]), sets.errors, seconds)


def recalibrate(model_path: str | Path, good_dir: str | Path, defects_dir: str | Path | None,
                target_frr: float, policy: Policy, out: str | Path | None = None,
                threads: int | None = None, progress: bool = True,
                mapping: FrameMapping | None = None) -> tuple[Calibration, Path, list[str]]:
    """Set a model's threshold again from new held-out images, without retraining. With a ``mapping`` other
    than resize (a station's roi or tiles), the images are whole frames scored as the station scores them
    (tiles: the maximum over a frame's tiles), so the threshold and the good scores (drift) are per frame."""
    model = InspectionModel.load(model_path, threads=threads)
    good_paths = images_under(good_dir, "held-out good images")
    defect_paths = images_under(defects_dir, "defect images", recursive=True) if defects_dir else None
    if mapping is not None and mapping.mode != "resize":
        good_scores, errors = mapped_scores(model, good_paths, mapping, "good images", progress)
        defect_scores, defect_errors = (mapped_scores(model, defect_paths, mapping, "defect images", progress)
                                        if defect_paths else (None, []))
        errors += defect_errors
    else:
        good = load_folder(good_paths, model.input_size, "good images", progress)
        defects = load_folder(defect_paths, model.input_size, "defect images", progress) if defect_paths else None
        good_scores, errors = score_images(model, good.images), good.errors + (defects.errors if defects else [])
        defect_scores = score_images(model, defects.images) if defects else None
    if len(good_scores) == 0:
        raise DatasetError(f"{good_dir}: none of the good images could be read: {'; '.join(errors)}")
    calibration = calibrate(good_scores, defect_scores, target_frr, policy)
    graph = onnx.load(str(model_path))
    meta = model.meta.model_copy(update={"threshold": calibration.threshold,
                                         "good_scores": calibration.good_scores,
                                         "calibration": calibration.summary()})
    write_metadata(graph, meta)
    out = Path(out or model_path)
    save_model(graph, out)
    return calibration, save_report(out, calibration), errors


def mapped_scores(model: InspectionModel, paths: list[Path], mapping: FrameMapping, what: str,
                  progress: bool) -> tuple[np.ndarray, list[str]]:
    """Each whole frame's score under ``mapping``; a message per file that cannot be read or mapped."""
    scores, errors = [], []
    for p in tqdm(paths, desc=f"scoring {what}", unit="img", disable=not progress, leave=False):
        try:
            scores.append(model.inspect(load_image(p), name=str(p), mapping=mapping).score)
        except (ImageError, FrameMappingError) as exc:
            errors.append(f"{p}: {exc}" if str(p) not in str(exc) else str(exc))
    return np.asarray(scores, np.float64), errors
