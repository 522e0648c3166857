"""Latency of a 5 MP camera frame (2448 x 2048) under each frame-to-model mapping, side by side.

    python benchmarks/frame_mapping.py                  # shipped demo model, 1 thread, Markdown on stdout
    python benchmarks/frame_mapping.py --threads 2 --repeats 5

Every mapping is timed on the same frame with the same loaded model through ``InspectionModel.inspect``
(what `inspection inspect` and the line runner call): preprocess (conversion, cutting and resizing the
views), inference (one batch of all views through the ONNX model), postprocess (stitching, regions, the map at
frame size). The mappings are interleaved within each repeat, so a change of machine load hits all of them;
the load average is read before and after each repeat. Each figure is the median over repeats of the
per-repeat median (p90: of the per-repeat 90th percentile). Peak memory: the process's peak RSS after the
mapping's first run (the mappings run in the order listed, so it only grows: ``--only NAME`` runs one
mapping alone, to see its own peak).

The frame: a good flange sample (256 x 256) enlarged to fill a 5 MP frame, i.e. a part filling the camera's
view. Resize shows the model the part at its training scale; tiles show it magnified pieces it was not trained
on (a tiles station needs a model trained on tiles, see README), so the regions found differ, and with them
a little of the postprocess time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from core_benchmark import machine  # noqa: E402

from inspection.imaging import load_image  # noqa: E402
from inspection.model.runtime import InspectionModel  # noqa: E402
from inspection.model.shipped import demo_model_path  # noqa: E402
from inspection.model.tiling import FrameMapping, plan_views  # noqa: E402

FRAME_HW = (2048, 2448)
SAMPLE = HERE.parent / "datasets" / "samples" / "flange" / "test" / "good" / "000.png"
MAPPINGS: dict[str, tuple[FrameMapping, int]] = {  # name: (mapping, runs per repeat)
    "resize": (FrameMapping(), 20),
    "roi 1024x1024": (FrameMapping(mode="roi", roi={"x": 712, "y": 512, "width": 1024, "height": 1024}), 20),
    "tiles 1024 px, overlap 0.25": (FrameMapping(mode="tiles", tile_px=1024, overlap=0.25), 6),
    "tiles 512 px, overlap 0.25": (FrameMapping(mode="tiles", tile_px=512, overlap=0.25), 4),
    "tiles 256 px, overlap 0.25": (FrameMapping(mode="tiles", tile_px=256, overlap=0.25), 2),
    "tiles 256 px, overlap 0.25, max_batch 16": (FrameMapping(mode="tiles", tile_px=256, overlap=0.25,
                                                              max_batch=16), 2),
}
STAGES = ("preprocess_ms", "inference_ms", "postprocess_ms")


def frame() -> np.ndarray:
    h, w = FRAME_HW
    return cv2.resize(load_image(SAMPLE), (w, h), interpolation=cv2.INTER_CUBIC)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def quiet_postprocess_ms(model: InspectionModel, mapping: FrameMapping, runs: int = 5) -> float:
    """Postprocess of a frame with nothing above the threshold (maps of zeros): stitching and the search for
    regions without any to find, the common case of a PASS; the timed rows above depend on what the frame
    shows the model."""
    h, w = FRAME_HW
    mh, mw = model.input_size
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        if mapping.mode == "resize":
            model.postprocess((h, w), np.zeros((mh, mw), np.float32), 0.0)
        else:
            plan = plan_views(mapping, (h, w), model.input_size)
            n = len(plan.views)
            model.postprocess_views(plan, np.zeros((n, mh, mw), np.float32), np.zeros(n, np.float32))
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))


def measure(model: InspectionModel, image: np.ndarray, repeats: int) -> dict:
    per: dict[str, list[dict]] = {name: [] for name in MAPPINGS}
    rss: dict[str, float] = {}
    regions: dict[str, int] = {}
    for name, (mapping, _) in MAPPINGS.items():  # warm-up: the first run of each batch size allocates
        regions[name] = len(model.inspect(image, mapping=mapping).regions)
        rss[name] = peak_rss_mb()
    loads = []
    for r in range(repeats):
        loads.append(os.getloadavg()[0])
        for name, (mapping, runs) in MAPPINGS.items():
            walls, stages = [], {s: [] for s in STAGES}
            for _ in range(runs):
                t = time.perf_counter()
                result = model.inspect(image, mapping=mapping)
                walls.append((time.perf_counter() - t) * 1e3)
                for s in STAGES:
                    stages[s].append(getattr(result.timings, s))
            per[name].append({"p50": float(np.median(walls)), "p90": float(np.percentile(walls, 90)),
                              **{s: float(np.median(v)) for s, v in stages.items()}})
        loads.append(os.getloadavg()[0])
        print(f"repeat {r + 1}/{repeats} done, load {loads[-1]:.2f}", file=sys.stderr)
    h, w = FRAME_HW
    out = {}
    for name, (mapping, runs) in MAPPINGS.items():
        views = len(plan_views(mapping, (h, w), model.input_size).views) if mapping.mode != "resize" else 1
        out[name] = {"views": views, "runs_per_repeat": runs, "regions": regions[name],
                     "peak_rss_mb": rss[name], "postprocess_pass_ms": quiet_postprocess_ms(model, mapping),
                     **{k: statistics.median(x[k] for x in per[name]) for k in ("p50", "p90", *STAGES)}}
    return {"mappings": out, "load_average": loads}


def markdown(result: dict, threads: int) -> str:
    rows = ["| mapping | model runs (tiles) | p50 ms | p90 ms | preprocess | inference | postprocess | "
            "per view (inference) | regions | postprocess, nothing above threshold | peak RSS MB |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, m in result["mappings"].items():
        rows.append(f"| {name} | {m['views']} | {m['p50']:.0f} | {m['p90']:.0f} | {m['preprocess_ms']:.1f} | "
                    f"{m['inference_ms']:.0f} | {m['postprocess_ms']:.1f} | {m['inference_ms'] / m['views']:.1f} | "
                    f"{m['regions']} | {m['postprocess_pass_ms']:.1f} | {m['peak_rss_mb']:.0f} |")
    loads = result["load_average"]
    return "\n".join(rows) + (f"\n\n{threads} onnxruntime thread(s); 1-minute load average {min(loads):.1f}-"
                              f"{max(loads):.1f} during the runs.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", type=Path, default=None, help="default: the shipped demo flange model")
    ap.add_argument("--only", choices=list(MAPPINGS), default=None, help="measure this mapping alone")
    args = ap.parse_args()
    if args.only:
        for name in [n for n in MAPPINGS if n != args.only]:
            del MAPPINGS[name]
    model = InspectionModel.load(args.model or demo_model_path("flange"), threads=args.threads)
    info = machine()
    print("machine:", json.dumps(info), file=sys.stderr)
    result = measure(model, frame(), args.repeats) | {"machine": info, "threads": args.threads,
                                                      "model": model.info.model_dump()}
    (HERE / "results").mkdir(exist_ok=True)
    suffix = "" if not args.only else "_" + "".join(c if c.isalnum() else "_" for c in args.only)
    (HERE / "results" / f"frame_mapping{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result, args.threads))


if __name__ == "__main__":
    main()
