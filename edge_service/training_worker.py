"""What a training job's worker process runs, and how its output is read, without importing the trainer.

The worker is ``python -m inspection.cli train --progress-json ...`` (then ``inspection eval`` when labelled
defects were given), in its own process group at nice 10, in the job's folder:

    good/              the memory-bank images          held_out/   good images held out for calibration
    eval/test/good/    links to held_out/              eval/test/<kind>/, eval/ground_truth/<kind>/  defects
    model.onnx, model.calibration.json                 eval-report/eval.json      worker.log, worker.pid

Its JSON progress lines (``{"progress": {"stage", "done", "total", "fraction"}}``) are mapped onto one
fraction for the whole job; every other line goes to ``worker.log`` and the job's log tail.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from edge_service.training_models import EvaluationSummary, KindSummary, TrainingJob, TrainingReport

# where each of the trainer's progress bars lies within the training step (start, span)
TRAIN_STAGES = {"reading good images": (0.0, 0.15), "reading held-out good images": (0.15, 0.05),
                "reading defect images": (0.2, 0.05), "features": (0.25, 0.4), "coreset": (0.65, 0.25)}
FITTING = "fitting the head and calibrating"


@dataclass(frozen=True)
class Step:
    name: str  # "training" or "evaluation"
    argv: list[str]
    start: float  # the job's progress when the step starts
    span: float  # and how much of it the step covers


def steps(job_dir: Path, job: TrainingJob, threads: int | None) -> list[Step]:
    cli = [sys.executable, "-m", "inspection.cli"]
    train = [*cli, "train", "--good", str(job_dir / "good"), "--calib-good", str(job_dir / "held_out"),
             "--out", str(job_dir / "model.onnx"), "--name", job.name, "--version", job.version,
             "--preset", job.preset, "--target-frr", repr(job.target_frr), "--progress-json"]
    if threads:
        train += ["--threads", str(threads)]
    if not job.defect_images:
        return [Step("training", train, 0.0, 1.0)]
    train += ["--defects", str(job_dir / "eval" / "test")]
    evaluate = [*cli, "eval", "--model", str(job_dir / "model.onnx"), "--data", str(job_dir / "eval"),
                "--out", str(job_dir / "eval-report"), "--quiet"]
    return [Step("training", train, 0.0, 0.9), Step("evaluation", evaluate, 0.9, 0.1)]


def progress_of(line: str) -> tuple[str, float] | None:
    """(stage, fraction of the training step) from one of the trainer's JSON progress lines, else None."""
    if not line.startswith('{"progress"'):
        return None
    try:
        p = json.loads(line)["progress"]
        stage, fraction = str(p["stage"]), float(p["fraction"])
    except (ValueError, KeyError, TypeError):
        return None
    start, span = TRAIN_STAGES.get(stage, (0.0, 0.0))
    if fraction >= 1.0 and stage in ("features", "coreset"):
        stage = FITTING
    return stage, min(1.0, start + span * max(0.0, min(1.0, fraction)))


def error_of(log_tail: list[str], returncode: int, step: str) -> str:
    """The worker's own message ("error: ..."), else its last line (a traceback's exception) and exit code."""
    for line in reversed(log_tail):
        if line.startswith("error: "):
            return f"{step} failed: {line[len('error: '):]}"
    last = f": {log_tail[-1]}" if log_tail else ""
    return f"{step} failed: the worker exited with code {returncode}{last}"


def runtime_missing() -> str | None:
    """Which of the trainer's packages this installation lacks (a service-only install has none of them),
    found without importing them; None when training can run."""
    import importlib.util

    missing = [m for m in ("onnxruntime", "onnx", "cv2") if importlib.util.find_spec(m) is None]
    return ", ".join(missing) or None


def _load(path: Path) -> dict:
    return dict(json.loads(path.read_text()))


def read_report(job_dir: Path) -> TrainingReport:
    """The calibration report the trainer wrote beside the model, and the evaluation if there is one."""
    c = _load(job_dir / "model.calibration.json")
    chosen = c["f1_threshold"] if c["policy"] == "f1" and c.get("f1_threshold") else c["frr_threshold"]
    report = TrainingReport(threshold=c["threshold"], policy=c["policy"], target_frr=c["target_frr"],
                            good_count=c["good_count"], defect_count=c["defect_count"], chosen=chosen,
                            f1_threshold=c.get("f1_threshold"), good_scores=c["good_scores"],
                            defect_scores=c.get("defect_scores"), notes=c.get("notes", []))
    eval_path = job_dir / "eval-report" / "eval.json"
    if eval_path.is_file():
        e = _load(eval_path)
        overall = e["overall"]
        report.evaluation = EvaluationSummary(
            good_images=e["good_images"], defect_images=e["defect_images"], image_auroc=overall["image_auroc"],
            pixel_auroc=overall["pixel_auroc"], aupro=overall["aupro"], f1=overall["f1"],
            false_reject_rate=e["false_reject_rate"], errors=e.get("errors", []),
            per_kind=[KindSummary(kind=k["kind"], images=k["images"], defect_images=k.get("defect_images", 0),
                                  image_auroc=k["image_auroc"], pixel_auroc=k["pixel_auroc"], aupro=k["aupro"])
                      for k in e["per_kind"]])
    return report
