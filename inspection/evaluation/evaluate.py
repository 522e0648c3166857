"""Evaluating a model on a labelled dataset in MVTec AD layout, with JSON and Markdown reports.

    <data>/test/good/*.png            defect-free test images
    <data>/test/<kind>/*.png          defective images, one folder per defect kind
    <data>/ground_truth/<kind>/<name>_mask.png   their pixel masks (non-zero = defect)

Pixel metrics are computed at the model's input size (masks resized with nearest neighbour). An optional
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

from inspection.errors import DatasetError, ImageError
from inspection.evaluation.metrics import Confusion, aupro, auroc, confusion
from inspection.imaging import list_images, load_image
from inspection.model.runtime import InspectionModel, resize_for_model


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


def _load_test_set(data: Path, size: tuple[int, int], progress: bool) -> _Loaded:
    test = data / "test"
    if not test.is_dir():
        raise DatasetError(f"{data}: no test/ folder; expected MVTec AD layout (test/good, test/<defect>, "
                           "ground_truth/<defect>/<name>_mask.png)")
    kinds = sorted(d.name for d in test.iterdir() if d.is_dir())
    if "good" not in kinds:
        raise DatasetError(f"{test}: no good/ folder of defect-free test images")
    if len(kinds) < 2:
        raise DatasetError(f"{test}: no defect folders beside good/")
    loaded = _Loaded()
    attributes = _attributes(data)
    paths = [(k, p) for k in kinds for p in list_images(test / k)]
    for kind, path in tqdm(paths, desc="reading test set", unit="img", disable=not progress, leave=False):
        try:
            image = resize_for_model(load_image(path), size)
        except ImageError as exc:
            loaded.errors.append(str(exc))
            continue
        if kind == "good":
            mask = np.zeros(size, bool)
        else:
            mpath = data / "ground_truth" / kind / f"{path.stem}_mask.png"
            raw = cv2.imread(str(mpath), cv2.IMREAD_GRAYSCALE) if mpath.is_file() else None
            if raw is None:
                loaded.errors.append(f"{mpath}: ground-truth mask missing or unreadable; {path.name} counts for "
                                     "image metrics only")
                mask = None
            else:
                mask = cv2.resize(raw, (size[1], size[0]), interpolation=cv2.INTER_NEAREST) > 0
        extra = attributes.get(f"test/{kind}/{path.name}", {})
        loaded.samples.append(_Sample(kind, image, mask, extra.get("subtle"), extra.get("snr")))
    return loaded


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


def evaluate(model: InspectionModel, data: str | Path, progress: bool = True, batch: int = 16) -> EvalReport:
    data = Path(data)
    loaded = _load_test_set(data, model.input_size, progress)
    if not loaded.samples:
        raise DatasetError(f"{data}: no readable test images")
    maps: list[np.ndarray] = []
    score_list: list[float] = []
    images = np.stack([s.image for s in loaded.samples])
    for i in tqdm(range(0, len(images), batch), desc="inspecting", unit="batch", disable=not progress,
                  leave=False):
        m, s = model.run(images[i:i + batch])
        maps.extend(m)
        score_list.extend(s)
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
                      data=str(data), threshold=t, good_images=int((~labels).sum()),
                      defect_images=int(labels.sum()), overall=overall, per_kind=per_kind,
                      per_kind_subtlety=per_subtlety, false_reject_rate=overall.false_reject_rate or 0.0,
                      errors=loaded.errors)


def to_markdown(report: EvalReport) -> str:
    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    lines = [f"# Evaluation of `{report.model_name}` v{report.model_version}", "",
             f"Data: `{report.data}`: {report.good_images} good and {report.defect_images} defective test images. "
             f"Threshold {report.threshold:.4f} (FAIL when score > threshold): false-reject rate on good "
             f"parts {report.false_reject_rate:.1%}.", "",
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


def write_reports(report: EvalReport, out: str | Path) -> tuple[Path, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / "eval.json", out / "eval.md"
    js.write_text(json.dumps(report.model_dump(mode="json"), indent=2) + "\n")
    md.write_text(to_markdown(report))
    return js, md
