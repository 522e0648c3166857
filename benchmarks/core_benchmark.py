"""Benchmarks of the inspection core, printed as Markdown for benchmarks/RESULTS.md (and saved as JSON).

    python benchmarks/core_benchmark.py latency     # shipped demo models, batch 1, 1 and 2 threads
    python benchmarks/core_benchmark.py accuracy    # train on 200 images (timed), eval on the generated test sets
    python benchmarks/core_benchmark.py tradeoff    # bank size x projection: accuracy and latency
    python benchmarks/core_benchmark.py all

Latency: onnxruntime CPU, batch 1, a real 256x256 part image, warm-up runs excluded; each figure is the median
over several repeats of the percentile within one repeat. The generated dataset (seed 7) is cached in
benchmarks/.data/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from inspection.evaluation.evaluate import evaluate
from inspection.evaluation.synthetic import PART_TYPES, DatasetSpec, write_dataset
from inspection.imaging import load_image
from inspection.model.runtime import InspectionModel
from inspection.model.shipped import demo_model_path
from inspection.model.training import TrainConfig, train

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
OUT = HERE / "results"


def machine() -> dict:
    cpu = "unknown"
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni") if f in flags]
    return {"cpu": cpu, "cores": os.cpu_count(), "isa": isa, "os": platform.platform(),
            "python": platform.python_version(), "onnxruntime": ort.__version__, "numpy": np.__version__}


def dataset() -> Path:
    spec = DatasetSpec()
    marker = DATA / f"done-seed{spec.seed}-{spec.train_good}-{spec.test_good}-{spec.test_per_defect}"
    if not marker.exists():
        print("generating the synthetic line (seed 7) in", DATA, file=sys.stderr)
        for part in PART_TYPES:
            write_dataset(DATA, part, spec)
        marker.touch()
    return DATA


def _timed(fn, runs: int, repeats: int, warmup: int) -> dict:
    """Wall-clock and process-CPU percentiles (ms): median over repeats of each repeat's percentile."""
    for _ in range(warmup):
        fn()
    per_repeat = []
    for _ in range(repeats):
        wall, cpu = np.empty(runs), np.empty(runs)
        for i in range(runs):
            t, c = time.perf_counter(), time.process_time()
            fn()
            wall[i], cpu[i] = time.perf_counter() - t, time.process_time() - c
        per_repeat.append({f"{name}{q}": float(np.percentile(v, q) * 1e3)
                           for name, v in (("p", wall), ("cpu_p", cpu)) for q in (50, 90, 99)})
    return {f"{k}_ms": statistics.median(r[k] for r in per_repeat) for k in per_repeat[0]} | {
        "runs": runs, "repeats": repeats}


def percentiles(model: InspectionModel, image: np.ndarray, runs: int, repeats: int, warmup: int = 50) -> dict:
    batch = image[None]
    return _timed(lambda: model.run(batch), runs, repeats, warmup)


def jitter_reference(runs: int, repeats: int) -> dict:
    """A fixed single-threaded workload of about the model's size: how noisy the machine is right now."""
    a = np.random.default_rng(0).random((1024, 120), dtype=np.float32)
    b = np.random.default_rng(1).random((120, 1024), dtype=np.float32)

    def work():
        for _ in range(8):
            np.minimum.reduce(a @ b, axis=1)

    return _timed(work, runs, repeats, 20)


def latency(runs: int, repeats: int) -> dict:
    rows = []
    for part in PART_TYPES:
        image = load_image(HERE.parent / "datasets" / "samples" / part / "test" / "good" / "000.png")
        for threads in (1, 2):
            model = InspectionModel.load(demo_model_path(part), threads=threads)
            rows.append({"model": f"demo_{part}", "threads": threads} | percentiles(model, image, runs, repeats))
            print(rows[-1], file=sys.stderr)
    rows.append({"model": "jitter reference: fixed numpy work (not a model)", "threads": "BLAS default"}
                | jitter_reference(runs, repeats))
    return {"rows": rows}


def _train(part: str, out: Path, **kw) -> tuple[float, Path]:
    t = time.perf_counter()
    train(DATA / part / "train" / "good", out, TrainConfig(name=out.stem, progress=False, **kw))
    return time.perf_counter() - t, out


def accuracy(train_repeats: int) -> dict:
    dataset()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for part in PART_TYPES:
            times = []
            for i in range(train_repeats):
                seconds, path = _train(part, Path(tmp) / f"{part}_{i}.onnx")
                times.append(seconds)
            shipped = InspectionModel.load(demo_model_path(part))
            sizes = f"{shipped.meta.training_set.images} bank + {shipped.meta.training_set.held_out} held out"
            for label, model, trained_here in (
                    ("trained on 200 (170 bank + 30 held out)", InspectionModel.load(path), True),
                    (f"shipped demo model ({sizes})", shipped, False)):
                report = evaluate(model, DATA / part, progress=False)
                rows.append({"part": part, "model": label, "train_s_median": statistics.median(times)
                             if trained_here else None, "train_s_all": times if trained_here else None,
                             "overall": report.overall.model_dump(), "per_kind": [k.model_dump()
                                                                                  for k in report.per_kind]})
                print(part, label, report.overall.image_auroc, report.overall.pixel_auroc, file=sys.stderr)
    return {"rows": rows}


def tradeoff(runs: int, repeats: int) -> dict:
    dataset()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for part in PART_TYPES:
            image = load_image(DATA / part / "test" / "good" / "000.png")
            for bank in (512, 1024, 2048):
                for dim in (16, 32, 64, None):
                    seconds, path = _train(part, Path(tmp) / "m.onnx", bank_size=bank, projection_dim=dim)
                    model = InspectionModel.load(path, threads=1)
                    report = evaluate(model, DATA / part, progress=False)
                    lat = percentiles(model, image, runs, repeats)
                    rows.append({"part": part, "bank": bank, "projection_dim": dim or 120, "train_s": seconds,
                                 "image_auroc": report.overall.image_auroc,
                                 "pixel_auroc": report.overall.pixel_auroc, "aupro": report.overall.aupro} | lat)
                    print(rows[-1], file=sys.stderr)
    return {"rows": rows}


def markdown(name: str, result: dict) -> str:
    rows = result["rows"]
    if name == "latency":
        lines = ["| model | threads | p50 ms | p90 ms | p99 ms | CPU-time p50 | p90 | p99 | p90 / p50 |",
                 "|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['model']} | {r['threads']} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['p99_ms']:.2f} | "
                  f"{r['cpu_p50_ms']:.2f} | {r['cpu_p90_ms']:.2f} | {r['cpu_p99_ms']:.2f} | "
                  f"{r['p90_ms'] / r['p50_ms']:.2f} |" for r in rows]
    elif name == "accuracy":
        lines = ["| part | model | train s (200 images) | image AUROC | pixel AUROC | AUPRO | F1 |",
                 "|---|---|---|---|---|---|---|"]
        for r in rows:
            o = r["overall"]
            t = f"{r['train_s_median']:.1f}" if r["train_s_median"] else "–"
            lines.append(f"| {r['part']} | {r['model']} | {t} | {o['image_auroc']:.4f} | {o['pixel_auroc']:.4f} | "
                         f"{o['aupro']:.4f} | {o['f1']:.4f} |")
        lines += ["", "| part | model | kind | image AUROC | pixel AUROC | AUPRO |", "|---|---|---|---|---|---|"]
        for r in rows:
            for k in r["per_kind"]:
                lines.append(f"| {r['part']} | {r['model']} | {k['kind']} | {k['image_auroc']:.4f} | "
                             f"{k['pixel_auroc']:.4f} | {k['aupro']:.4f} |")
    else:
        lines = ["| part | bank | dims searched | image AUROC | pixel AUROC | AUPRO | p50 ms | p90 ms | train s |",
                 "|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['part']} | {r['bank']} | {r['projection_dim']} | {r['image_auroc']:.4f} | "
                  f"{r['pixel_auroc']:.4f} | {r['aupro']:.4f} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | "
                  f"{r['train_s']:.1f} |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["latency", "accuracy", "tradeoff", "all"])
    parser.add_argument("--runs", type=int, default=300, help="timed runs per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-repeats", type=int, default=3)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    todo = ["latency", "accuracy", "tradeoff"] if args.what == "all" else [args.what]
    info = machine()
    print("machine:", json.dumps(info))
    for name in todo:
        if name == "latency":
            result = latency(args.runs, args.repeats)
        elif name == "accuracy":
            result = accuracy(args.train_repeats)
        else:
            result = tradeoff(max(100, args.runs // 3), 3)
        result["machine"] = info
        result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        (OUT / f"core_{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"\n## {name}\n\n{markdown(name, result)}\n")


if __name__ == "__main__":
    main()
