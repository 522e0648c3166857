"""The accuracy protocol: generate the real-surfaces set and the synthetic line, train every preset per
category (`inspection train --preset ...` as a subprocess: wall time and peak RSS), evaluate on the test
split (`inspection eval`'s code), time each preset's model (1 and 2 threads), write the JSON and the
tables into benchmarks/RESULTS.md (between the accuracy-protocol markers).

    python benchmarks/accuracy_protocol.py [--presets fast,balanced,accurate] [--categories a,b] [--no-write]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.core_benchmark import machine, percentiles  # noqa: E402
from datasets.real_surfaces import load_manifest, write_all  # noqa: E402
from inspection.evaluation.evaluate import evaluate  # noqa: E402
from inspection.evaluation.synthetic import PART_TYPES, DatasetSpec, write_dataset  # noqa: E402
from inspection.imaging import list_images, load_image  # noqa: E402
from inspection.model.runtime import InspectionModel, resize_for_model  # noqa: E402

DATA = HERE / ".data"
OUT = HERE / "results"
MODELS = DATA / "protocol-models"
BEGIN, END = "<!-- accuracy-protocol:begin -->", "<!-- accuracy-protocol:end -->"


def cpu_flags() -> list[str]:
    """The CPU's vector-extension flags that matter for inference (AVX2/FMA, AVX-512, VNNI, BF16, AMX)."""
    wanted = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16",
              "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
    try:
        line = next(x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("flags"))
    except (OSError, StopIteration):
        return []
    have = set(line.split(":", 1)[1].split())
    return [f for f in wanted if f in have]


def real_surfaces(visibility_floor: bool = True) -> Path:
    """The generated set (made once per manifest content); without ``visibility_floor``, the set as it was
    before the floor (the same good images; defects below the floor left as first drawn)."""
    manifest = load_manifest()
    root = DATA / "real_surfaces"
    if not visibility_floor:
        manifest.pop("visibility_floor", None)
        root = DATA / "real_surfaces_no_floor"
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:12]
    marker = root / f"done-{digest}"
    if not marker.exists():
        print("generating the real-surfaces set in", root, file=sys.stderr)
        write_all(root, manifest)
        marker.touch()
    return root


def synthetic_line() -> Path:
    spec = DatasetSpec()
    root = DATA / "synthetic"
    marker = root / f"done-seed{spec.seed}"
    if not marker.exists():
        for part in PART_TYPES:
            write_dataset(root, part, spec)
        marker.touch()
    return root


# Linux keeps a process's peak RSS across exec, and a forked child starts with its parent's: the peak of
# `inspection train` forked straight from this (large) process would be at least this process's RSS. So a
# small launcher runs it and reports the peak of its own child, which it forked when it was small.
_LAUNCHER = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)")


def train(good: Path, out: Path, preset: str) -> dict:
    """`inspection train` in its own process: wall seconds and that process's own peak RSS."""
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "inspection.cli", "train", "--good", str(good), "--out", str(out),
           "--preset", preset, "--quiet"]
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, *cmd], capture_output=True, text=True,
                          env=os.environ.copy())
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr}")
    peak_kb = int(proc.stderr.strip().splitlines()[-1])
    return {"train_s": round(seconds, 2), "peak_rss_mb": round(peak_kb / 1024, 1),
            "train_images": len(list_images(good))}


def evaluated(model_path: Path, data: Path, overall_only: bool = False) -> dict:
    """`inspection eval`'s report; with ``overall_only`` just its overall line (the per-kind and per-subtlety
    metrics, each a pass over all pixels, are most of the evaluation time on a loaded machine)."""
    model = InspectionModel.load(model_path)
    if not overall_only:
        return evaluate(model, data, progress=False).model_dump(mode="json")
    from inspection.evaluation.evaluate import _load_test_set, _metrics

    samples = _load_test_set(data, model.input_size, False).samples
    images = np.stack([s.image for s in samples])
    outs = [model.run(images[i:i + 16]) for i in range(0, len(images), 16)]
    maps = [m for o in outs for m in o[0]]
    scores = np.concatenate([o[1] for o in outs])
    labels = np.array([s.kind != "good" for s in samples])
    overall = _metrics("all", labels, scores, [s.mask for s in samples], maps, model.threshold,
                       [s.snr for s in samples])
    return {"overall": overall.model_dump(mode="json"), "false_reject_rate": overall.false_reject_rate or 0.0,
            "per_kind": [], "per_kind_subtlety": []}


def latency(model_path: Path, image: np.ndarray, runs: int, repeats: int) -> list[dict]:
    rows = []
    for threads in (1, 2):
        model = InspectionModel.load(model_path, threads=threads)
        at_size = resize_for_model(image, model.input_size)  # the graph call alone, at the model's input size
        rows.append({"threads": threads, "input_size": list(model.input_size)}
                    | percentiles(model, at_size, runs, repeats, warmup=30)
                    | {"load_average": round(os.getloadavg()[0], 1)})
    return rows


def trained(good: Path, out: Path, preset: str, reuse: bool) -> dict:
    """``train``, or with ``reuse`` the model an earlier run left at ``out`` (no training figures then)."""
    if reuse and out.exists():
        return {"reused_model": True, "train_images": len(list_images(good))}
    return train(good, out, preset)


def run(presets: list[str], categories: list[str], runs: int, repeats: int, overall_only: bool = False,
        visibility_floor: bool = True, reuse_models: bool = False) -> dict:
    surfaces, line = real_surfaces(visibility_floor), synthetic_line()
    results: dict = {"machine": machine() | {"isa": cpu_flags()},
                     "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "presets": {},
                     "visibility_floor": load_manifest().get("visibility_floor") if visibility_floor else None}
    for preset in presets:
        entry: dict = {"real_surfaces": {}, "synthetic": {}, "latency": []}
        for cat in categories:
            model = MODELS / preset / f"{cat}.onnx"
            entry["real_surfaces"][cat] = trained(surfaces / cat / "train" / "good", model, preset, reuse_models) | {
                "test": evaluated(model, surfaces / cat, overall_only)}
            print(preset, cat, entry["real_surfaces"][cat]["test"]["overall"], file=sys.stderr, flush=True)
        for part in PART_TYPES:
            model = MODELS / preset / f"synthetic_{part}.onnx"
            entry["synthetic"][part] = trained(line / part / "train" / "good", model, preset, reuse_models) | {
                "test": evaluated(model, line / part, overall_only)}
            print(preset, part, entry["synthetic"][part]["test"]["overall"], file=sys.stderr, flush=True)
        first = MODELS / preset / f"{categories[0]}.onnx"
        image = load_image(list_images(surfaces / categories[0] / "test" / "good")[0])
        entry["latency"] = latency(first, image, runs, repeats)
        results["presets"][preset] = entry
    return results


def write_results(text: str) -> None:
    """Replace the accuracy-protocol block of RESULTS.md (or add it before the ingest section)."""
    path = HERE / "RESULTS.md"
    current = path.read_text()
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in current:
        head, rest = current.split(BEGIN, 1)
        current = head + block + rest.split(END, 1)[1]
    else:
        anchor = "## Results service: ingest load"
        current = current.replace(anchor, block + "\n\n" + anchor, 1)
    path.write_text(current)


def merged(paths: list[Path]) -> dict:
    """Results of several runs (e.g. one process per preset) as one: the first run's machine and date."""
    runs = [json.loads(p.read_text()) for p in paths]
    out = runs[0]
    for r in runs[1:]:
        out["presets"].update(r["presets"])
    return out


def remeasure_latency(results: dict, category: str, runs: int, repeats: int) -> None:
    """Time every preset's model of ``category`` again, one preset after the other in this process."""
    image = load_image(list_images(real_surfaces() / category / "test" / "good")[0])
    for preset, entry in results["presets"].items():
        entry["latency"] = latency(MODELS / preset / f"{category}.onnx", image, runs, repeats)
    results["latency_date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def main() -> None:
    from benchmarks.protocol_report import markdown

    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", default="fast,balanced,accurate")
    parser.add_argument("--categories", default=",".join(load_manifest()["categories"]))
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print the tables, leave RESULTS.md alone")
    parser.add_argument("--overall-only", action="store_true",
                        help="evaluate only the overall line per category (no per-kind table; much faster)")
    parser.add_argument("--relatency", action="store_true",
                        help="with --from-json: time the presets' models again (all presets side by side, now)")
    parser.add_argument("--json", type=Path, default=OUT / "accuracy_protocol.json", help="where the run's JSON goes")
    parser.add_argument("--no-visibility-floor", action="store_true",
                        help="judge on the set without the manifest's visibility floor (the earlier set)")
    parser.add_argument("--reuse-models", action="store_true",
                        help="evaluate the models an earlier run left in benchmarks/.data/protocol-models "
                             "instead of training (their good training images are the same with or without "
                             "the floor)")
    parser.add_argument("--from-json", type=Path, nargs="+",
                        help="run nothing: merge these runs' JSON files (one per preset, say) and write the tables")
    args = parser.parse_args()
    if args.from_json:
        results = merged(args.from_json)
        if args.relatency:
            remeasure_latency(results, args.categories.split(",")[0], args.runs, args.repeats)
    else:
        results = run(args.presets.split(","), args.categories.split(","), args.runs, args.repeats,
                      args.overall_only, not args.no_visibility_floor, args.reuse_models)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    text = markdown(results)
    print(text)
    if not args.no_write:
        write_results(text)


if __name__ == "__main__":
    main()
