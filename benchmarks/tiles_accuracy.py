"""Accuracy of the frame mappings on large frames with small defects: `resize` against `tiles`, each with a model
trained for it by the product's own commands.

    python benchmarks/tiles_accuracy.py                        # 3 categories, balanced, tiles of 512 px
    python benchmarks/tiles_accuracy.py --preset fast --tile-px 256 --category fundus

The frames (``benchmarks/.data/tiles_frames/<category>``, made once, deterministic): 1024 x 1024 crops of the
real-surfaces photographs (``datasets/real_surfaces.py``: the same photograph, region, nuisance and camera),
each covering ``FRAME_SIDE`` photograph pixels, so the photograph is *enlarged* 1.5-2.3x (no photograph here
has 1024 px of texture at its own scale); the defects are drawn on the frame at frame scale by the same
renderers (``pit`` radius 3-7 px, ``stain`` radius 6-16 px, ``scratch`` 35-100 px long and 1.2-2.6 px wide;
a quarter subtle and smaller), with the set's visibility floor, so they are small against the frame (a pit
is ~1 % of its side). Splits: ``train/good`` (40), ``calib/good`` (20, the held-out frames both models are
calibrated on), ``test/good`` (20), ``test/<kind>`` (8 each) with ``ground_truth/<kind>/NNN_mask.png``.

The models (commands printed and stored in the JSON):
- resize: ``inspection train --good train/good --calib-good calib/good`` (the model resizes each frame);
- tiles: ``inspection dataset tiles`` on ``train/good``, ``inspection train`` on those tiles, then
  ``inspection calibrate --frame-mapping tiles`` on ``calib/good`` (whole frames, as the station scores them).

Evaluation: every test frame through ``InspectionModel.inspect(frame, mapping=...)`` (what the station calls),
onnxruntime 1 thread: image AUROC of the frame score, pixel AUROC of the frame-sized map against the frame
mask (every second pixel of every second row, all test frames), false-reject rate on the good test frames and
miss rate on the defective ones at the model's own threshold (FAIL when score > threshold), and the wall time
of each ``inspect`` call (median and p90 over the test frames), with the load average around it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from core_benchmark import machine  # noqa: E402

from datasets.real_surfaces import load_manifest, load_source, make_sample, rng_for  # noqa: E402
from inspection.evaluation.metrics import auroc  # noqa: E402
from inspection.imaging import load_image  # noqa: E402
from inspection.model.runtime import InspectionModel  # noqa: E402
from inspection.model.tiling import FrameMapping, plan_views  # noqa: E402

FRAME = 1024
FRAME_SIDE = {"fundus": 680, "regolith": 440, "tissue": 440}  # photograph pixels a frame covers
KINDS = ("pit", "stain", "scratch")
COUNTS = {"train": 40, "calib": 20, "test": 20, "per_kind": 8}
SEED = 2026
DATA = HERE / ".data" / "tiles_frames"
PIXEL_STRIDE = 2
_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1]


def _write(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb, _PNG)


def make_frames(category: str, out: Path) -> Path:
    """Write the category's frames (once: a stamp file records what was made); returns its folder."""
    base = out / category
    stamp = {"frame": FRAME, "side": FRAME_SIDE[category], "kinds": KINDS, "counts": COUNTS, "seed": SEED}
    if (base / "frames.json").is_file() and json.loads((base / "frames.json").read_text()) == json.loads(
            json.dumps(stamp)):
        return base
    manifest = load_manifest()
    entry = {**manifest["categories"][category], "crop": FRAME_SIDE[category]}
    frame_manifest = {**manifest, "size": FRAME}
    source = load_source(entry)
    jobs = [("train", "good", COUNTS["train"]), ("calib", "good", COUNTS["calib"]), ("test", "good", COUNTS["test"]),
            *[("test", k, COUNTS["per_kind"]) for k in KINDS]]
    records = {}
    for split, kind, count in jobs:
        for i in range(count):
            keys = (SEED, "tiles_frames", category, split, kind, i)
            subtle = kind != "good" and i % 4 == 3  # a quarter subtle, as in the real-surfaces set
            s = make_sample(source, entry, frame_manifest, rng_for(*keys), None if kind == "good" else kind, subtle,
                            redraw=lambda attempt, keys=keys: rng_for(*keys, "visibility", attempt))
            _write(base / split / kind / f"{i:03d}.png", s.image)
            if kind != "good":
                _write(base / "ground_truth" / kind / f"{i:03d}_mask.png", s.mask)
                records[f"test/{kind}/{i:03d}.png"] = {"kind": kind, "subtle": subtle, "snr": round(s.snr, 3),
                                                       "area": int((s.mask > 0).sum())}
    (base / "defects.json").write_text(json.dumps(records, indent=1) + "\n")
    (base / "frames.json").write_text(json.dumps(stamp) + "\n")
    return base


def _cli(args: list[str], log: list[str]) -> None:
    """Run one product command (`python -m inspection.cli ...`, this worktree's code), keep its line."""
    log.append("inspection " + shlex.join(a.replace(f"{ROOT}/", "") for a in args))  # paths from the repo root
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "inspection.cli", *args], env=env, capture_output=True, text=True)
    print(f"  [{time.perf_counter() - t:5.1f} s] {log[-1]}", file=sys.stderr)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {log[-1]}\n{done.stdout}\n{done.stderr}")


def train_resize(data: Path, models: Path, preset: str, log: list[str]) -> Path:
    out = models / f"resize_{preset}.onnx"
    if not out.is_file():
        _cli(["train", "--good", str(data / "train" / "good"), "--calib-good", str(data / "calib" / "good"),
              "--out", str(out), "--preset", preset, "--quiet"], log)
    return out


def train_tiles(data: Path, models: Path, preset: str, tile_px: int, overlap: float, log: list[str]) -> Path:
    tiles = data / f"tiles_{tile_px}_{overlap}"
    out = models / f"tiles{tile_px}_{preset}.onnx"
    if out.is_file():
        return out
    if not tiles.is_dir():
        _cli(["dataset", "tiles", "--frames", str(data / "train" / "good"), "--out", str(tiles),
              "--tile-px", str(tile_px), "--overlap", str(overlap)], log)
    _cli(["train", "--good", str(tiles), "--out", str(out), "--preset", preset, "--quiet"], log)
    _cli(["calibrate", "--model", str(out), "--good", str(data / "calib" / "good"), "--frame-mapping", "tiles",
          "--tile-px", str(tile_px), "--overlap", str(overlap), "--quiet"], log)
    return out


def test_split(data: Path) -> list[tuple[Path, str, Path | None]]:
    """(frame, kind, mask or None) of the test split, good first."""
    items: list[tuple[Path, str, Path | None]] = [(p, "good", None)
                                                  for p in sorted((data / "test" / "good").glob("*.png"))]
    for kind in KINDS:
        items += [(p, kind, data / "ground_truth" / kind / f"{p.stem}_mask.png")
                  for p in sorted((data / "test" / kind).glob("*.png"))]
    return items


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def evaluate(model_path: Path, mapping: FrameMapping, data: Path) -> dict:
    """Frame-level figures of one model under one mapping on the category's test frames."""
    model = InspectionModel.load(model_path, threads=1)
    labels, scores, fails, times, kinds = [], [], [], [], []
    pix_maps, pix_masks = [], []
    load = [loadavg()]
    views = 1
    for path, kind, mask_path in test_split(data):
        frame = load_image(path)
        t = time.perf_counter()
        result = model.inspect(frame, name=str(path), mapping=mapping)
        times.append((time.perf_counter() - t) * 1e3)
        views = result.frame_mapping.views if result.frame_mapping else 1
        labels.append(kind != "good")
        kinds.append(kind)
        scores.append(result.score)
        fails.append(result.verdict == "FAIL")
        mask = np.zeros(frame.shape[:2], bool) if mask_path is None else cv2.imread(str(mask_path), 0) > 0
        pix_maps.append(result.anomaly_map[::PIXEL_STRIDE, ::PIXEL_STRIDE])
        pix_masks.append(mask[::PIXEL_STRIDE, ::PIXEL_STRIDE])
    load.append(loadavg())
    y, f, k = np.array(labels), np.array(fails), np.array(kinds)
    pixel = auroc(np.stack(pix_masks), np.stack(pix_maps))
    return {"model": model_path.name, "mapping": mapping.model_dump(exclude_none=True), "views": views,
            "threshold": model.threshold, "image_auroc": auroc(y, np.array(scores)), "pixel_auroc": pixel,
            "frr": float(f[~y].mean()), "miss_rate": float((~f[y]).mean()), "good": int((~y).sum()),
            "defective": int(y.sum()),
            "miss_by_kind": {kind: float((~f[k == kind]).mean()) for kind in KINDS if (k == kind).any()},
            "p50_ms": statistics.median(times), "p90_ms": float(np.percentile(times, 90)), "load": load}


def run_category(category: str, presets: list[str], tile_pxs: list[int], overlap: float) -> dict:
    data = make_frames(category, DATA)
    models = data / "models"
    models.mkdir(exist_ok=True)
    log: list[str] = []
    rows = []
    for preset in presets:
        resize = train_resize(data, models, preset, log)
        rows.append({"category": category, "preset": preset, "name": "resize",
                     **evaluate(resize, FrameMapping(), data)})
        print(f"  {preset} resize: {_brief(rows[-1])}", file=sys.stderr)
        for tile_px in tile_pxs:
            tiles = train_tiles(data, models, preset, tile_px, overlap, log)
            mapping = FrameMapping(mode="tiles", tile_px=tile_px, overlap=overlap)
            rows.append({"category": category, "preset": preset, "name": f"tiles {tile_px} px",
                         **evaluate(tiles, mapping, data)})
            print(f"  {preset} {rows[-1]['name']}: {_brief(rows[-1])}", file=sys.stderr)
    return {"category": category, "commands": log, "rows": rows}


def _brief(r: dict) -> str:
    return (f"image AUROC {r['image_auroc']:.3f}, pixel AUROC {r['pixel_auroc']:.3f}, FRR {r['frr']:.2f}, "
            f"miss {r['miss_rate']:.2f}, p50 {r['p50_ms']:.0f} ms")


def markdown(results: list[dict]) -> str:
    lines = ["| category | preset | mapping | model runs per frame | threshold | image AUROC | pixel AUROC | FRR | "
             "miss rate | miss pit / stain / scratch | p50 ms | p90 ms | load avg |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for res in results:
        for r in res["rows"]:
            miss = " / ".join(f"{r['miss_by_kind'].get(k, float('nan')):.2f}" for k in KINDS)
            lines.append(f"| {r['category']} | {r['preset']} | {r['name']} | {r['views']} | {r['threshold']:.3f} | "
                         f"{r['image_auroc']:.3f} | {r['pixel_auroc']:.3f} | {r['frr']:.2f} ({r['good']}) | "
                         f"{r['miss_rate']:.2f} ({r['defective']}) | {miss} | {r['p50_ms']:.0f} | "
                         f"{r['p90_ms']:.0f} | {r['load'][0]:.1f}-{r['load'][1]:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--category", action="append", choices=sorted(FRAME_SIDE), help="repeatable")
    parser.add_argument("--preset", action="append", choices=("fast", "balanced"), help="repeatable")
    parser.add_argument("--tile-px", action="append", type=int, help="repeatable (default 512)")
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "tiles_accuracy.json")
    args = parser.parse_args()
    for tile_px in args.tile_px or [512]:
        plan_views(FrameMapping(mode="tiles", tile_px=tile_px, overlap=args.overlap), (FRAME, FRAME), (256, 256))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = [run_category(c, args.preset or ["balanced"], args.tile_px or [512], args.overlap)
               for c in args.category or sorted(FRAME_SIDE)]
    report = {"started": started, "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": machine(), "frame": FRAME, "frame_side": FRAME_SIDE, "counts": COUNTS,
              "pixel_stride": PIXEL_STRIDE, "results": results}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(markdown(results))


if __name__ == "__main__":
    main()
