"""INT8 against fp32, side by side: each category of the real-surfaces set and each synthetic part is trained
with a preset (fp32), quantised with `inspection quantize` (bank rebuilt from the int8 features), and both
are evaluated on the test split; latency p50/p90 at 1 and 2 threads, fp32 and int8 interleaved in one run.

    python benchmarks/int8_protocol.py [--presets balanced,fast] [--categories a,b] [--method minmax]

Writes benchmarks/results/int8_protocol.json and prints the Markdown tables (RESULTS.md, "Reduced precision").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.accuracy_protocol import real_surfaces, synthetic_line  # noqa: E402
from benchmarks.core_benchmark import machine  # noqa: E402
from datasets.real_surfaces import load_manifest  # noqa: E402
from inspection.evaluation.evaluate import evaluate  # noqa: E402
from inspection.evaluation.synthetic import PART_TYPES  # noqa: E402
from inspection.imaging import list_images, load_image  # noqa: E402
from inspection.model.presets import preset_settings  # noqa: E402
from inspection.model.quantize import quantize_model  # noqa: E402
from inspection.model.runtime import InspectionModel  # noqa: E402
from inspection.model.training import TrainConfig, train  # noqa: E402

MODELS = HERE / ".data" / "int8-models"


def flags() -> list[str]:
    line = next((x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("flags")), "")
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")
    return [f for f in wanted if f in line.split()]


def interleaved(paths: dict[str, Path], image: np.ndarray, threads: int, runs: int, repeats: int) -> dict:
    """Wall and process-CPU p50/p90 per model: repeats alternate between the models (median over repeats)."""
    models = {k: InspectionModel.load(p, threads=threads) for k, p in paths.items()}
    batch = image[None]
    for m in models.values():
        for _ in range(30):
            m.run(batch)
    per: dict[str, list[dict]] = {k: [] for k in models}
    for _ in range(repeats):
        for k, m in models.items():
            wall, cpu = np.empty(runs), np.empty(runs)
            for i in range(runs):
                t, c = time.perf_counter(), time.process_time()
                m.run(batch)
                wall[i], cpu[i] = time.perf_counter() - t, time.process_time() - c
            per[k].append({"p50_ms": np.percentile(wall, 50) * 1e3, "p90_ms": np.percentile(wall, 90) * 1e3,
                           "cpu_p50_ms": np.percentile(cpu, 50) * 1e3, "cpu_p90_ms": np.percentile(cpu, 90) * 1e3})
    return {k: {q: round(statistics.median(r[q] for r in rows), 3) for q in rows[0]} for k, rows in per.items()}


def pair(name: str, good: Path, data: Path, preset: str, method: str) -> dict:
    fp32, int8 = MODELS / preset / f"{name}.onnx", MODELS / preset / f"{name}-int8.onnx"
    config = TrainConfig(name=name, progress=False, **preset_settings(preset))
    t = time.perf_counter()
    train(good, fp32, config)
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    quantize_model(fp32, good, int8, method=method, progress=False)  # type: ignore[arg-type]
    quant_s = time.perf_counter() - t
    out: dict = {"train_s": round(train_s, 1), "quantize_s": round(quant_s, 1)}
    for key, path in (("fp32", fp32), ("int8", int8)):
        rep = evaluate(InspectionModel.load(path), data, progress=False)
        out[key] = {"image_auroc": rep.overall.image_auroc, "pixel_auroc": rep.overall.pixel_auroc,
                    "aupro": rep.overall.aupro, "f1": rep.overall.f1, "frr": rep.false_reject_rate}
    print(preset, name, out, file=sys.stderr, flush=True)
    return out


def run(presets: list[str], categories: list[str], method: str, runs: int, repeats: int) -> dict:
    surfaces, line = real_surfaces(), synthetic_line()
    result: dict = {"machine": machine() | {"flags": flags()}, "method": method,
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "presets": {}}
    for preset in presets:
        entry: dict = {"sets": {}}
        for cat in categories:
            entry["sets"][cat] = pair(cat, surfaces / cat / "train" / "good", surfaces / cat, preset, method)
        for part in PART_TYPES:
            entry["sets"][f"synthetic_{part}"] = pair(f"synthetic_{part}", line / part / "train" / "good",
                                                      line / part, preset, method)
        first = categories[0]
        image = load_image(list_images(surfaces / first / "test" / "good")[0])
        paths = {"fp32": MODELS / preset / f"{first}.onnx", "int8": MODELS / preset / f"{first}-int8.onnx"}
        entry["latency"] = {str(th): interleaved(paths, image, th, runs, repeats) | {
            "load_average": os.getloadavg()} for th in (1, 2)}
        print(preset, entry["latency"], file=sys.stderr, flush=True)
        result["presets"][preset] = entry
    return result


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, flags {', '.join(m['flags'])}; onnxruntime "
             f"{m['onnxruntime']}; {r['date']}; range calibration {r['method']}.", "",
             "| preset | set | fp32 image AUROC | int8 image AUROC | change | fp32 pixel AUROC | int8 pixel AUROC "
             "| fp32 FRR | int8 FRR |", "|---|---|---|---|---|---|---|---|---|"]
    for preset, e in r["presets"].items():
        for name, s in e["sets"].items():
            a, b = s["fp32"], s["int8"]
            lines.append(f"| {preset} | {name} | {a['image_auroc']:.4f} | {b['image_auroc']:.4f} | "
                         f"{b['image_auroc'] - a['image_auroc']:+.4f} | {a['pixel_auroc']:.4f} | "
                         f"{b['pixel_auroc']:.4f} | {a['frr']:.3f} | {b['frr']:.3f} |")
        real = [s for n, s in e["sets"].items() if not n.startswith("synthetic_")]
        fa = np.mean([s["fp32"]["image_auroc"] for s in real])
        fb = np.mean([s["int8"]["image_auroc"] for s in real])
        lines.append(f"| **{preset}** | **real-surfaces mean** | **{fa:.4f}** | **{fb:.4f}** | **{fb - fa:+.4f}** "
                     "| | | | |")
    lines += ["", "| preset | threads | model | p50 ms | p90 ms | CPU p50 ms | CPU p90 ms | load average |",
              "|---|---|---|---|---|---|---|---|"]
    for preset, e in r["presets"].items():
        for th, rows in e["latency"].items():
            load = ", ".join(f"{x:.2f}" for x in rows["load_average"])
            for k in ("fp32", "int8"):
                v = rows[k]
                lines.append(f"| {preset} | {th} | {k} | {v['p50_ms']:.2f} | {v['p90_ms']:.2f} | "
                             f"{v['cpu_p50_ms']:.2f} | {v['cpu_p90_ms']:.2f} | {load} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", default="balanced,fast")
    parser.add_argument("--categories", default=",".join(load_manifest()["categories"]))
    parser.add_argument("--method", default="minmax")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    result = run(args.presets.split(","), args.categories.split(","), args.method, args.runs, args.repeats)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"int8_protocol_{args.method}.json").write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
