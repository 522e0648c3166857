"""Evaluating a model on a labelled dataset in MVTec AD layout, with JSON and Markdown reports.

    <data>/test/good/*.png            defect-free test images
    <data>/test/<kind>/*.png          defective images, one folder per defect kind
    <data>/ground_truth/<kind>/<name>_mask.png   their pixel masks (non-zero = defect)

Pixel metrics are computed at the model's input size (masks resized with nearest neighbour). With a frame
``mapping`` other than resize (:mod:`inspection.model.tiling`: an roi, or tiles), the test images are whole
frames scored as a station with that mapping scores them (``InspectionModel.inspect``: tiles run through the
model and stitched, the score the tiles' maximum), and the pixel metrics compare the frame-sized map with the
frame-sized mask; all frames must then share one size (one camera), and a frame the mapping does not fit
is named among the errors and left out. An optional
``<data>/defects.json`` (written by the real-surfaces generator) gives each defect image's attributes,
``{"test/<kind>/<name>.png": {"subtle": bool, "snr": float, ...}}``; with it the report also splits every
kind into its subtle and clear defects and gives their median visibility SNR (mask vs surrounding ring).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from pydantic import BaseModel
from tqdm import tqdm

from inspection.errors import DatasetError, ImageError, InspectionError
from inspection.evaluation.metrics import Confusion, aupro, auroc, confusion
from inspection.imaging import list_images, load_image
from inspection.model.runtime import InspectionModel, resize_for_model
from inspection.model.tiling import FrameMapping


class KindMetrics(BaseModel):
    """Metrics over the good test images plus the defect images of one kind (or of all, or of one subtlety)."""

    kind: str
    subtle: bool | None = None  # None: subtle and clear together
    images: int
    defect_images: int = 0
    snr_median: float | None = None  # model-free visibility of the defects (needs defects.json)
    image_auroc: float | None
    pixel_auroc: float | None
    aupro: float | None
    f1: float | None
    false_reject_rate: float | None = None  # good images scored above the threshold
    confusion: Confusion


class EvalReport(BaseModel):
    model: str
    model_name: str
    model_version: str
    data: str
    frame_mapping: dict | None = None  # the mapping the frames were scored with (None: resized to the input)
    threshold: float
    good_images: int
    defect_images: int
    overall: KindMetrics
    per_kind: list[KindMetrics]
    per_kind_subtlety: list[KindMetrics] = []  # each kind split into subtle / clear (needs defects.json)
    false_reject_rate: float  # good test images scored above the model's threshold
    errors: list[str]


@dataclass
class _Sample:
    kind: str
    image: np.ndarray
    mask: np.ndarray | None
    subtle: bool | None = None
    snr: float | None = None


def _attributes(data: Path) -> dict[str, dict]:
    path = data / "defects.json"
    if not path.is_file():
        return {}
    try:
        return dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise DatasetError(f"{path}: not a JSON object of defect attributes ({exc})") from None


@dataclass
class _Loaded:
    samples: list[_Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _test_paths(data: Path) -> list[tuple[str, Path]]:
    test = data / "test"
    if not test.is_dir():
        raise DatasetError(f"{data}: no test/ folder; expected MVTec AD layout (test/good, test/<defect>, "
                           "ground_truth/<defect>/<name>_mask.png)")
    kinds = sorted(d.name for d in test.iterdir() if d.is_dir())
    if "good" not in kinds:
        raise DatasetError(f"{test}: no good/ folder of defect-free test images")
    if len(kinds) < 2:
        raise DatasetError(f"{test}: no defect folders beside good/")
    return [(k, p) for k in kinds for p in list_images(test / k)]


def _load_sample(data: Path, kind: str, path: Path, attributes: dict[str, dict], size: tuple[int, int] | None,
                 errors: list[str]) -> _Sample | None:
    """One test image (resized to ``size``; None: as it is) and its mask at the same size; None (and the
    message in ``errors``) when the image cannot be read."""
    try:
        image = load_image(path)
    except ImageError as exc:
        errors.append(str(exc))
        return None
    image = image if size is None else resize_for_model(image, size)
    hw = image.shape[:2]
    mask: np.ndarray | None = np.zeros(hw, bool)
    if kind != "good":
        mpath = data / "ground_truth" / kind / f"{path.stem}_mask.png"
        raw = cv2.imread(str(mpath), cv2.IMREAD_GRAYSCALE) if mpath.is_file() else None
        if raw is None:
            errors.append(f"{mpath}: ground-truth mask missing or unreadable; {path.name} counts for image "
                          "metrics only")
            mask = None
        else:
            mask = (raw if raw.shape == hw else cv2.resize(raw, (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST)) > 0
    extra = attributes.get(f"test/{kind}/{path.name}", {})
    return _Sample(kind, image, mask, extra.get("subtle"), extra.get("snr"))


def _load_test_set(data: Path, size: tuple[int, int], progress: bool) -> _Loaded:
    paths, attributes, loaded = _test_paths(data), _attributes(data), _Loaded()
    for kind, path in tqdm(paths, desc="reading test set", unit="img", disable=not progress, leave=False):
        sample = _load_sample(data, kind, path, attributes, size, loaded.errors)
        if sample is not None:
            loaded.samples.append(sample)
    return loaded


def _run_resized(model: InspectionModel, loaded: _Loaded, batch: int, progress: bool
                 ) -> tuple[list[np.ndarray], list[float]]:
    maps: list[np.ndarray] = []
    scores: list[float] = []
    images = np.stack([s.image for s in loaded.samples])
    for i in tqdm(range(0, len(images), batch), desc="inspecting", unit="batch", disable=not progress,
                  leave=False):
        m, s = model.run(images[i:i + batch])
        maps.extend(m)
        scores.extend(s)
    return maps, scores


def _run_frames(model: InspectionModel, data: Path, mapping: FrameMapping, progress: bool
                ) -> tuple[_Loaded, list[np.ndarray], list[float]]:
    """Each whole frame read, inspected with ``mapping`` as a station does, and let go: its frame-sized map
    and score are kept (the frames themselves are not, so a test set of 5 MP frames is not held in memory)."""
    paths, attributes, loaded = _test_paths(data), _attributes(data), _Loaded()
    maps: list[np.ndarray] = []
    scores: list[float] = []
    for kind, path in tqdm(paths, desc="inspecting frames", unit="img", disable=not progress, leave=False):
        sample = _load_sample(data, kind, path, attributes, None, loaded.errors)
        if sample is None:
            continue
        if maps and sample.image.shape[:2] != maps[0].shape:
            raise DatasetError(f"{path}: a {sample.image.shape[1]}x{sample.image.shape[0]} frame among "
                               f"{maps[0].shape[1]}x{maps[0].shape[0]} ones; whole-frame pixel metrics need one "
                               "frame size")
        try:
            result = model.inspect(sample.image, name=str(path), mapping=mapping)
        except InspectionError as exc:  # the mapping does not fit this frame
            loaded.errors.append(f"{path}: {exc}" if str(path) not in str(exc) else str(exc))
            continue
        sample.image = np.zeros((0, 0, 3), np.uint8)
        loaded.samples.append(sample)
        maps.append(result.anomaly_map)
        scores.append(result.score)
    return loaded, maps, scores


def _metrics(kind: str, labels, scores, masks, maps, threshold, snrs=(), subtle: bool | None = None
             ) -> KindMetrics:
    conf = confusion(labels, scores, threshold)
    good = ~np.asarray(labels, bool)
    frr = float(np.mean(np.asarray(scores)[good] > threshold)) if good.any() else None
    known = [v for v in snrs if v is not None]
    have = [i for i, m in enumerate(masks) if m is not None]
    pm = np.stack([masks[i] for i in have]) if have else None
    pa = np.stack([maps[i] for i in have]) if have else np.zeros(0)

    def clean(v: float) -> float | None:
        return None if np.isnan(v) else round(float(v), 6)

    return KindMetrics(kind=kind, subtle=subtle, images=len(labels), defect_images=int(np.sum(labels)),
                       snr_median=round(float(np.median(known)), 4) if known else None,
                       image_auroc=clean(auroc(labels, scores)),
                       pixel_auroc=clean(auroc(pm, pa)) if pm is not None else None,
                       aupro=clean(aupro(pm, pa)) if pm is not None else None, f1=clean(conf.f1),
                       false_reject_rate=frr, confusion=conf)


def _subsets(kinds: np.ndarray, subtle: np.ndarray, have_attributes: bool
             ) -> list[tuple[str, bool | None, np.ndarray]]:
    """(kind, subtlety, indices): each kind with all good images; then split by subtlety where known."""
    out: list[tuple[str, bool | None, np.ndarray]] = []
    for kind in sorted(set(kinds) - {"good"}):
        out.append((kind, None, np.flatnonzero((kinds == kind) | (kinds == "good"))))
    if have_attributes:
        for kind in ["all", *sorted(set(kinds) - {"good"})]:
            for flag in (True, False):
                chosen = (kinds != "good") if kind == "all" else (kinds == kind)
                sel = np.flatnonzero((chosen & (subtle == flag)) | (kinds == "good"))
                if (kinds[sel] != "good").any():
                    out.append((kind, flag, sel))
    return out


def evaluate(model: InspectionModel, data: str | Path, progress: bool = True, batch: int = 16,
             mapping: FrameMapping | None = None) -> EvalReport:
    """The report of ``model`` on ``data``; ``mapping`` (roi or tiles): the test images are whole frames,
    scored and mapped as a station with it does (see the module docstring)."""
    data = Path(data)
    frames = mapping if mapping is not None and mapping.mode != "resize" else None
    if frames is not None:
        loaded, maps, score_list = _run_frames(model, data, frames, progress)
    else:
        loaded = _load_test_set(data, model.input_size, progress)
        maps, score_list = _run_resized(model, loaded, batch, progress) if loaded.samples else ([], [])
    if not loaded.samples:
        raise DatasetError(f"{data}: no readable test images" + (" (or none the frame mapping fits)" if frames else ""))
    scores = np.array(score_list)
    kinds = np.array([s.kind for s in loaded.samples])
    labels = kinds != "good"
    masks = [s.mask for s in loaded.samples]
    t = model.threshold
    snrs = [s.snr for s in loaded.samples]
    overall = _metrics("all", labels, scores, masks, maps, t, snrs)
    subtle = np.array([bool(s.subtle) for s in loaded.samples])
    have_attributes = any(s.subtle is not None for s in loaded.samples)
    per_kind: list[KindMetrics] = []
    per_subtlety: list[KindMetrics] = []
    for kind, flag, sel in _subsets(kinds, subtle, have_attributes):
        metrics = _metrics(kind, labels[sel], scores[sel], [masks[i] for i in sel], [maps[i] for i in sel], t,
                           [snrs[i] for i in sel], flag)
        (per_kind if flag is None else per_subtlety).append(metrics)
    return EvalReport(model=model.path, model_name=model.info.name, model_version=model.info.version,
                      data=str(data), frame_mapping=frames.model_dump(mode="json") if frames else None,
                      threshold=t, good_images=int((~labels).sum()),
                      defect_images=int(labels.sum()), overall=overall, per_kind=per_kind,
                      per_kind_subtlety=per_subtlety, false_reject_rate=overall.false_reject_rate or 0.0,
                      errors=loaded.errors)


def to_markdown(report: EvalReport) -> str:
    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    lines = [f"# Evaluation of `{report.model_name}` v{report.model_version}", "",
             f"Data: `{report.data}`: {report.good_images} good and {report.defect_images} defective test images. "
             f"Threshold {report.threshold:.4f} (FAIL when score > threshold): false-reject rate on good "
             f"parts {report.false_reject_rate:.1%}." + _mapping_note(report.frame_mapping), "",
             "| defect kind | images | subtle | defects | SNR median | image AUROC | pixel AUROC | "
             "AUPRO (FPR ≤ 30 %) | F1 | true fail | false fail | true pass | false pass |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for k in [*report.per_kind, report.overall, *report.per_kind_subtlety]:
        c = k.confusion
        sub = "all" if k.subtle is None else ("subtle" if k.subtle else "clear")
        lines.append(f"| {k.kind} | {k.images} | {sub} | {k.defect_images} | {f(k.snr_median)} | {f(k.image_auroc)} | "
                     f"{f(k.pixel_auroc)} | {f(k.aupro)} | {f(k.f1)} | {c.true_fail} | {c.false_fail} | "
                     f"{c.true_pass} | {c.false_pass} |")
    if report.errors:
        lines += ["", "Files with problems:", *[f"- {e}" for e in report.errors]]
    return "\n".join(lines) + "\n"


def _mapping_note(mapping: dict | None) -> str:
    if not mapping:
        return ""
    shown = ", ".join(f"{k} {v}" for k, v in mapping.items() if v is not None and k != "mode")
    return f" Whole frames, frame mapping {mapping['mode']} ({shown}); pixel metrics at frame size."


def write_reports(report: EvalReport, out: str | Path) -> tuple[Path, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / "eval.json", out / "eval.md"
    js.write_text(json.dumps(report.model_dump(mode="json"), indent=2) + "\n")
    md.write_text(to_markdown(report))
    return js, md
