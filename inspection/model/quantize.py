"""INT8 models: the backbone statically quantised, the head rebuilt from the quantised backbone's own features.

    fp32 model + its good images -> the backbone's Conv, Clip (ReLU6) and Add quantised with onnxruntime
    (QDQ, per-channel int8 weights, uint8 activations calibrated on the good images) -> the *int8* feature
    graph -> patch features of the bank images -> whitening, memory bank and position statistics fitted
    again (the fp32 model's settings) -> one inspection graph (int8 backbone, fp32 head) -> threshold
    calibrated again on the held-out good images, with the int8 graph.

Keeping the fp32 bank behind an int8 backbone compares features from two different networks: every patch
moves a little, the position statistics no longer describe good images, and image AUROC fell to 0.73 in an
outside measurement. Rebuilding everything from the int8 features makes the head see, at training, the
features it gets at run time. The head (whitening, the bank search, normalisation) stays fp32: int8 would
destroy the small differences between large norms the distance relies on.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
import onnxruntime as ort

from inspection.errors import DatasetError, ModelError
from inspection.model.calibration import Calibration, calibrate, save_report
from inspection.model.graph import feature_graph, inspection_graph
from inspection.model.metadata import ModelMetadata, read_metadata, write_metadata
from inspection.model.runtime import InspectionModel, session_options
from inspection.model.shipped import backbone_path
from inspection.model.training import (
    TrainConfig,
    dataset_digest,
    extract_pooled,
    fit_head,
    load_training_sets,
    save_model,
    score_images,
)

CalibrationMethod = Literal["minmax", "percentile", "entropy"]
QUANTIZED_OPS = ["Conv", "Clip", "Add"]  # Conv alone leaves ReLU6 in float: slower and much less accurate
BACKBONE_INPUT = "input"
TAP_NODES = ["/_blocks.4/_project_conv/Conv", "/_blocks.4/Add", "/_blocks.7/_project_conv/Conv", "/_blocks.7/Add"]


@dataclass
class QuantizeReport:
    model_path: Path
    calibration: Calibration
    calibration_path: Path
    bank_images: int
    held_out: int
    calibration_images: int
    same_bank_images: bool  # the bank was rebuilt from the same images as the fp32 model's (digest equal)
    errors: list[str]
    seconds: dict[str, float]


class _BackboneCalibration:
    """onnxruntime's calibration reader: the backbone's input, preprocessed as the graph does."""

    def __init__(self, images: np.ndarray):
        self.images, self.i = images, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.images):
            return None
        im = self.images[self.i].astype(np.float32)
        self.i += 1
        return {BACKBONE_INPUT: ((im - 127.0) / 128.0).transpose(2, 0, 1)[None]}

    def rewind(self) -> None:
        self.i = 0


def quantize_backbone(images: np.ndarray, method: CalibrationMethod = "minmax", keep_taps: bool = False
                      ) -> onnx.ModelProto:
    """The shipped backbone with Conv, Clip and Add quantised statically (QDQ), activations calibrated on
    ``images`` ((N, H, W, 3) uint8 at the model's input size); ``keep_taps`` leaves the last conv and the
    residual Add in front of each feature tap in fp32."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import CalibrationMethod as OrtMethod

    if len(images) == 0:
        raise ValueError("quantisation needs at least one calibration image")
    CalibrationDataReader.register(_BackboneCalibration)
    methods = {"minmax": OrtMethod.MinMax, "percentile": OrtMethod.Percentile, "entropy": OrtMethod.Entropy}
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser's "consider pre-processing" warnings: the backbone is folded
    try:  # the histogram calibrators print their progress: keep the command's output clean
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
            out = Path(tmp) / "backbone-int8.onnx"
            quantize_static(str(backbone_path()), str(out), _BackboneCalibration(images),
                            quant_format=QuantFormat.QDQ, op_types_to_quantize=QUANTIZED_OPS, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=methods[method], nodes_to_exclude=TAP_NODES if keep_taps else [])
            return onnx.load(str(out))
    finally:
        root.setLevel(level)


def config_for(meta: ModelMetadata, holdout: float | None = None, seed: int = 0, threads: int | None = None,
               progress: bool = True) -> TrainConfig:
    """The fp32 model's head settings as a TrainConfig; the hold-out fraction is the model's own unless given
    (with the training seed, 0 by default, that reproduces its bank / held-out split). A model calibrated on a
    separate folder held nothing out of its bank's folder: its fraction is 0 (its held-out images are that
    folder's, see :func:`check_held_out_source`)."""
    h, ts = meta.head, meta.training_set
    if holdout is not None:
        fraction = holdout
    elif ts.held_out_folder is not None:
        fraction = 0.0
    else:
        fraction = ts.held_out / max(1, ts.images + ts.held_out)
    return TrainConfig(name=f"{meta.name}-int8", model_version=meta.model_version,
                       input_size=(meta.input_size[0], meta.input_size[1]), bank_size=h.bank_size,
                       projection_dim=h.projection_dim, blur_sigma=h.blur_sigma, whiten=h.whitened,
                       normalise=h.normalisation != "none", border=h.border, top_k=h.top_k, k_nearest=h.k_nearest,
                       preset=h.preset,
                       holdout_fraction=fraction, target_frr=float(meta.calibration.get("target_frr", 0.01)),
                       policy="frr", seed=seed, threads=threads, progress=progress)


def check_held_out_source(meta: ModelMetadata, calib_good_dir: str | Path | None, source: str) -> None:
    """Refuse to rebuild the split of a model calibrated on a separate folder without that folder: a hold-out
    fraction of its bank's folder would silently give another bank and threshold than the fp32 model's."""
    ts = meta.training_set
    if ts.held_out_folder is not None and calib_good_dir is None:
        raise DatasetError(
            f"{source}: calibrated on a separate folder of {ts.held_out} good images ({ts.held_out_folder}), "
            f"not on a hold-out of its {ts.images} bank images: give that folder as --calib-good (the bank is "
            "then rebuilt from every --good image, as the fp32 model's was)")


def _check_quantizable(meta: ModelMetadata, source: str) -> None:
    if meta.head.precision != "fp32":
        raise ModelError(f"{source}: already a {meta.head.precision} model; quantise the fp32 model it came from")
    shipped = hashlib.sha256(backbone_path().read_bytes()).hexdigest()
    if meta.head.backbone_sha256 != shipped:
        raise ModelError(f"{source}: trained on backbone {meta.head.backbone} (sha256 "
                         f"{meta.head.backbone_sha256[:12]}...), not the shipped one ({shipped[:12]}...): retrain it "
                         "first")


def _spread(n: int, k: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int))


def quantize_model(model_path: str | Path, good_dir: str | Path, out: str | Path,
                   calib_good_dir: str | Path | None = None, holdout: float | None = None, seed: int = 0,
                   calibration_images: int = 64, method: CalibrationMethod = "minmax", keep_taps: bool = False,
                   threads: int | None = None, progress: bool = True) -> QuantizeReport:
    """Write the INT8 twin of an fp32 model (see the module docstring); ``good_dir`` should be the folder
    the fp32 model was trained on, and ``calib_good_dir`` the separate folder it was calibrated on, if it was
    (required then; the bank is every ``good_dir`` image)."""
    if calibration_images < 1:
        raise ValueError(f"calibration images {calibration_images}: at least 1")
    meta = read_metadata(model_path)
    _check_quantizable(meta, str(model_path))
    check_held_out_source(meta, calib_good_dir, str(model_path))
    config = config_for(meta, holdout, seed, threads, progress)
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    sets = load_training_sets(good_dir, config, calib_good_dir)
    seconds["read"] = time.perf_counter() - t

    t = time.perf_counter()
    chosen = sets.bank.images[_spread(len(sets.bank.images), calibration_images)]
    backbone = quantize_backbone(chosen, method, keep_taps)
    seconds["quantize"] = time.perf_counter() - t

    t = time.perf_counter()
    features = ort.InferenceSession(feature_graph(backbone, config.input_size).SerializeToString(),
                                    session_options(threads), providers=["CPUExecutionProvider"])
    p8, p16 = extract_pooled(features, sets.bank.images, config.batch_size, progress)
    head = fit_head(p8, p16, config)
    seconds["head"] = time.perf_counter() - t

    t = time.perf_counter()
    graph = inspection_graph(backbone, head)
    quant = {"tool": f"onnxruntime {ort.__version__} quantize_static", "format": "QDQ", "ops": QUANTIZED_OPS,
             "weights": "int8, per channel", "activations": "uint8, per tensor", "calibration": method,
             "fp32_nodes": TAP_NODES if keep_taps else [], "calibration_images": len(chosen),
             "from_model": Path(model_path).name}
    new_meta = meta.model_copy(update={
        "name": config.name, "head": meta.head.model_copy(update={"precision": "int8", "quantization": quant,
                                                                   "bank_size": len(head.bank)}),
        "training_set": meta.training_set.model_copy(update={
            "images": len(sets.bank.paths), "held_out": len(sets.hold.paths),
            "digest": dataset_digest(sets.bank.paths),
            "held_out_folder": None if calib_good_dir is None else str(calib_good_dir)})})
    write_metadata(graph, new_meta)
    model = InspectionModel(ort.InferenceSession(graph.SerializeToString(), session_options(threads),
                                                 providers=["CPUExecutionProvider"]), new_meta, "", str(out))
    calibration = calibrate(score_images(model, sets.hold.images), None, config.target_frr, "frr")
    new_meta = new_meta.model_copy(update={"threshold": calibration.threshold,
                                           "good_scores": calibration.good_scores,
                                           "calibration": calibration.summary()})
    write_metadata(graph, new_meta)
    out = Path(out)
    save_model(graph, out)
    report = save_report(out, calibration)
    seconds["calibrate"] = time.perf_counter() - t
    return QuantizeReport(out, calibration, report, len(sets.bank.paths), len(sets.hold.paths), len(chosen),
                          new_meta.training_set.digest == meta.training_set.digest, sets.errors, seconds)


def tensors_of(model_path: str | Path, images: np.ndarray, names: tuple[str, ...] = ("head/pooled8", "head/pooled16"),
               threads: int | None = 1) -> list[np.ndarray]:
    """Inner tensors of a model file's own graph for ``images`` (the pooled features by default; the
    backbone's raw taps are ``feat8``, ``feat16``): an int8 model gives its int8 features."""
    graph = onnx.load(str(model_path))
    del graph.graph.output[:]
    graph.graph.output.extend([onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in names])
    session = ort.InferenceSession(graph.SerializeToString(), session_options(threads),
                                   providers=["CPUExecutionProvider"])
    return list(session.run(list(names), {"image": images}))
