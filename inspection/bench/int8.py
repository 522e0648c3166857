"""The int8 variant of a benchmark: an INT8 model whose bank was rebuilt from the int8 backbone's features
(given with ``--int8-model``, or built from ``--good`` images by :mod:`inspection.model.quantize`), its speed
against fp32 and, on sample and labelled images, its agreement and accuracy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inspection.bench.engine import BenchError
from inspection.bench.variants import rank_correlation
from inspection.errors import InspectionError
from inspection.evaluation.metrics import auroc
from inspection.imaging import decode_image
from inspection.model.metadata import read_metadata
from inspection.model.runtime import InspectionModel


@dataclass(frozen=True)
class Int8Inputs:
    model: Path | None = None  # a ready INT8 model (from `inspection quantize`)
    good: Path | None = None  # the fp32 model's good training images: the INT8 model is built from them
    defects: Path | None = None  # labelled defect images, for image AUROC of both variants (needs good)
    calib_good: Path | None = None  # the separate held-out good images of an fp32 model trained with --calib-good


def int8_file(base: Path, size: int, trained: tuple[int, int], inputs: Int8Inputs, out: Path) -> Path:
    """The INT8 model to time at this input size."""
    if inputs.model is not None:
        try:
            meta = read_metadata(inputs.model)
        except InspectionError as exc:
            raise BenchError(f"--int8-model: {exc}") from None
        if meta.head.precision != "int8":
            raise BenchError(f"--int8-model {inputs.model}: a {meta.head.precision} model (make one with "
                             "`inspection quantize`)")
        if tuple(meta.input_size) != (size, size) or tuple(trained) != (size, size):
            raise BenchError(f"--int8-model runs at its own input size {meta.input_size[0]}x{meta.input_size[1]} "
                             f"only, not {size}; give --good to build int8 models at other sizes")
        return inputs.model
    if inputs.good is None:
        raise BenchError("the int8 variant needs --good DIR (the model's good training images: the int8 bank is "
                         "rebuilt from them) or --int8-model FILE (from `inspection quantize`)")
    from inspection.model.quantize import check_held_out_source, quantize_model

    try:
        check_held_out_source(read_metadata(base), inputs.calib_good, "--model")
        return quantize_model(base, inputs.good, out, inputs.calib_good, progress=False).model_path
    except (InspectionError, ValueError) as exc:
        raise BenchError(f"int8 variant: {exc}") from None


def agreement(fp32: Path, int8: Path, encoded: list[bytes]) -> dict:
    """How far INT8 moves the scores: rank correlation and verdict agreement (each model at its own
    threshold) on the sample set."""
    images = [decode_image(b, "sample") for b in encoded]
    a, b = InspectionModel.load(fp32), InspectionModel.load(int8)
    ra, rb = [a.inspect(im) for im in images], [b.inspect(im) for im in images]
    sa, sb = np.array([r.score for r in ra]), np.array([r.score for r in rb])
    return {"samples": len(images), "rank_correlation": rank_correlation(sa, sb),
            "verdict_agreement": float(np.mean([x.verdict == y.verdict for x, y in zip(ra, rb, strict=True)])),
            "mean_abs_score_change": float(np.mean(np.abs(sa - sb)))}


def accuracy(fp32: Path, int8: Path, inputs: Int8Inputs) -> dict | None:
    """Image AUROC of both variants: the held-out good images (the fp32 model's split of ``--good``, or the
    ``--calib-good`` folder) against the ``--defects`` images; None without both folders."""
    if inputs.good is None or inputs.defects is None:
        return None
    from inspection.model.quantize import check_held_out_source, config_for
    from inspection.model.training import images_under, load_folder, load_training_sets

    meta = read_metadata(fp32)
    try:
        check_held_out_source(meta, inputs.calib_good, "--model")
    except InspectionError as exc:
        raise BenchError(f"int8 accuracy: {exc}") from None
    try:
        good = load_training_sets(inputs.good, config_for(meta, progress=False), inputs.calib_good).hold.images
        bad = load_folder(images_under(inputs.defects, "defect images", recursive=True), meta.input_size,
                          "defect images", False).images
    except (InspectionError, ValueError) as exc:
        raise BenchError(f"--defects: {exc}") from None
    labels = np.array([0] * len(good) + [1] * len(bad))
    out: dict = {"good": len(good), "defects": len(bad)}
    for name, path in (("fp32", fp32), ("int8", int8)):
        model = InspectionModel.load(path)
        scores = np.concatenate([model.run(x[None])[1] for x in np.concatenate([good, bad])])
        out[f"{name}_image_auroc"] = auroc(labels, scores)
    out["change"] = out["int8_image_auroc"] - out["fp32_image_auroc"]
    return out


def speed(runs: list[dict]) -> list[dict]:
    """int8 against fp32 for every pair of runs that differ only in the variant: p50 and p90 ratios."""
    def key(r: dict) -> tuple:
        return tuple(v for k, v in r["spec"].items() if k != "variant")

    fp32 = {key(r): r for r in runs if r["spec"]["variant"] == "fp32"}
    out = []
    for r in runs:
        base = fp32.get(key(r))
        if r["spec"]["variant"] != "int8" or base is None:
            continue
        a, b = base["stats"], r["stats"]
        if not a.get("p50_ms") or not b.get("p50_ms"):
            continue
        out.append({"run": base["label"].replace(" fp32", ""), "fp32_p50_ms": a["p50_ms"], "int8_p50_ms": b["p50_ms"],
                    "p50_ratio": b["p50_ms"] / a["p50_ms"], "p90_ratio": b["p90_ms"] / a["p90_ms"]})
    return out
