"""What the colour channels cost in the inspection graph: the same head with and without them, side by side.

For each head shape (the presets' banks at their input sizes) two graphs are built that differ only in the
colour channels (random bank and whitening of the right sizes: the cost does not depend on the values); each
round times one batch-of-one call of every graph in turn (interleaved, so a change of load hits all alike),
on 1 onnxruntime thread. Wall and process-CPU percentiles in ms, and the load average.

    python benchmarks/colour_channels_cost.py [--runs 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inspection.model.anomaly_head import HeadParams
from inspection.model.colour_channels import ColourChannels
from inspection.model.graph import inspection_graph
from inspection.model.shipped import backbone_path

SHAPES = {"fast (Gaussian, 256 px)": (1, 1, 256), "balanced (bank 1,024, k=3, 256 px)": (1024, 3, 256),
          "accurate (bank 1,024, k=3, 384 px)": (1024, 3, 384)}


def head(bank: int, k: int, size: int, colour: ColourChannels | None) -> HeadParams:
    rng = np.random.default_rng(0)
    dim = 120 + (colour.count if colour else 0)
    entries = (rng.standard_normal((bank, dim)) * 0.3).astype(np.float32)
    h = size // 8
    return HeadParams((0.05, 0.04), None, entries, np.sum(entries.astype(np.float64) ** 2, 1), 0.0, (size, size),
                      position_mean=np.ones((h, h), np.float32), position_std=np.ones((h, h), np.float32),
                      border=1, k_nearest=k, whiten_mean=np.zeros(dim, np.float32),
                      whiten=np.eye(dim, dtype=np.float32), colour=colour)


def session(h: HeadParams) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(inspection_graph(onnx.load(str(backbone_path())), h).SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=int, default=9)
    args = parser.parse_args()
    colour = ColourChannels(args.window, True, 1.0)
    graphs = {}
    for name, (bank, k, size) in SHAPES.items():
        plain = head(bank, k, size, None)
        graphs[(name, "without")] = (session(plain), size)
        graphs[(name, "with colour")] = (session(replace(plain, colour=colour,
                                                           **_widened(plain, colour))), size)
    images = {s: np.random.default_rng(1).integers(0, 256, (1, s, s, 3), dtype=np.uint8) for s in (256, 384)}
    times: dict = {key: ([], []) for key in graphs}
    for sess, size in graphs.values():  # warm-up
        for _ in range(20):
            sess.run(None, {"image": images[size]})
    load = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for _ in range(args.runs):
            for key, (sess, size) in graphs.items():
                t, c = time.perf_counter(), time.process_time()
                sess.run(None, {"image": images[size]})
                times[key][0].append(time.perf_counter() - t)
                times[key][1].append(time.process_time() - c)
        load.append(os.getloadavg()[0])
    for (name, variant), (wall, cpu) in times.items():
        print(json.dumps({"head": name, "graph": variant, "runs": len(wall),
                          **{f"wall_p{q}_ms": round(float(np.percentile(wall, q)) * 1e3, 2) for q in (50, 90)},
                          **{f"cpu_p{q}_ms": round(float(np.percentile(cpu, q)) * 1e3, 2) for q in (50, 90)},
                          "load_average": [round(x, 1) for x in load]}))


def _widened(plain: HeadParams, colour: ColourChannels) -> dict:
    """The bank and whitening of ``plain`` with the colour channels' dimensions added."""
    dim = plain.bank.shape[1] + colour.count
    bank = np.pad(plain.bank, ((0, 0), (0, colour.count)))
    return {"bank": bank, "whiten_mean": np.zeros(dim, np.float32), "whiten": np.eye(dim, dtype=np.float32)}


if __name__ == "__main__":
    main()
