"""Study of the EfficientNet-Lite backbones and of the memory bank's size up to the full bank (every training
patch), on the VALIDATION split of the real-surfaces set (issue 12, item 3).

Each line is a backbone (Lite0 = the shipped `models/efficientnet_lite0_features.onnx`; Lite1/Lite2 exported
by `models/export_backbone.py --variant liteN` into ``--backbones``, not shipped), an input size and a head
fitted with the training code (:func:`inspection.model.training.fit_head` with a preset's settings, bank size
overridden where the line says so). The pooled features of the training feature graph
(:func:`inspection.model.graph.feature_graph`) are cached per backbone, category and size under
``benchmarks/.data/backbone_cache``; scoring uses `benchmarks/head_study.py`'s float32 numpy code (its
:func:`evaluate`: image AUROC = maximum of the upsampled map after the border, pixel AUROC over all
validation pixels at 256 px). ``--check`` compares that scoring with the training code's numpy reference.
``--latency`` builds each line's inspection graph (:func:`inspection.model.graph.inspection_graph`) from one
category's head and times ``session.run`` at 1 thread, all lines interleaved round by round, wall and
process-CPU time, with the load average beside.

    python models/export_backbone.py --variant lite1 --out benchmarks/.data/backbones/efficientnet_lite1_features.onnx
    python benchmarks/backbone_study.py [--lines "substr;substr"] [--categories a,b] [--check] [--table]
    python benchmarks/backbone_study.py --latency [--lines ...] [--runs 40 --repeats 5]
    python benchmarks/backbone_study.py --full-bank 24 ; python benchmarks/backbone_study.py --full-bank-latency

The full bank (every training patch) is its own mode: fit_head's leave-one-image-out statistics against
163,840 entries would take minutes per category, so ``--full-bank`` runs the same steps with one exact search
per image that gives k=1 and k=3 together.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.accuracy_protocol import DATA, cpu_flags, real_surfaces  # noqa: E402
from benchmarks.head_study import Fitted, Split, Variant, _labelled, evaluate  # noqa: E402
from datasets.real_surfaces import load_manifest  # noqa: E402
from inspection.imaging import list_images, load_image  # noqa: E402
from inspection.model.anomaly_head import HeadParams, nearest_distances, patch_features, patch_map_to_outputs  # noqa: E402
from inspection.model.presets import preset_settings  # noqa: E402
from inspection.model.runtime import resize_for_model, session_options  # noqa: E402
from inspection.model.shipped import backbone_path  # noqa: E402
from inspection.model.training import TrainConfig, extract_pooled, fit_head  # noqa: E402

CACHE = DATA / "backbone_cache"
BACKBONES = DATA / "backbones"


@dataclass(frozen=True)
class Line:
    name: str
    backbone: str  # lite0 | lite1 | lite2
    preset: str  # fast | balanced: the head's settings
    size: int = 256
    overrides: dict = field(default_factory=dict)  # TrainConfig fields changed against the preset

    def config(self) -> TrainConfig:
        settings = preset_settings(self.preset) | {"input_size": (self.size, self.size)} | self.overrides
        return TrainConfig(name="backbone-study", progress=False, **settings)


LINES = [
    Line("Lite0, fast", "lite0", "fast"),
    Line("Lite0, balanced", "lite0", "balanced"),
    Line("Lite1, fast", "lite1", "fast"),
    Line("Lite1, balanced", "lite1", "balanced"),
    Line("Lite2, fast", "lite2", "fast"),
    Line("Lite2, balanced", "lite2", "balanced"),
    Line("Lite0, accurate (the balanced head at 384 px)", "lite0", "accurate", size=384),
    Line("Lite0, coreset 4,096, k=3", "lite0", "balanced", overrides={"bank_size": 4096}),
    Line("Lite0, coreset 8,192, k=3", "lite0", "balanced", overrides={"bank_size": 8192}),
]


def backbone_file(name: str, exported: Path) -> Path:
    """The shipped Lite0, or an exported Lite1/Lite2 (FileNotFoundError saying how to make it)."""
    if name == "lite0":
        return backbone_path()
    path = exported / f"efficientnet_{name}_features.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: export it first: python models/export_backbone.py --variant {name} "
                                f"--out {path}")
    return path


def _pooled(session, paths: list[Path], size: int) -> tuple[np.ndarray, np.ndarray]:
    images = np.stack([resize_for_model(load_image(p), (size, size)) for p in paths])
    return extract_pooled(session, images, 16, progress=False)


def load_features(backbone: str, exported: Path, cat: str, size: int) -> tuple[Split, Split]:
    """(train, validation) pooled features of a category with a backbone at an input size (cached)."""
    import onnx
    import onnxruntime as ort

    from inspection.model.graph import feature_graph

    CACHE.mkdir(parents=True, exist_ok=True)
    file = CACHE / f"{backbone}_{cat}_{size}.npz"
    root = real_surfaces() / cat
    vpaths, labels, masks, meta = _labelled(root / "validation")
    if not file.exists():
        graph = feature_graph(onnx.load(str(backbone_file(backbone, exported))), (size, size))
        session = ort.InferenceSession(graph.SerializeToString(), session_options(2),
                                       providers=["CPUExecutionProvider"])
        t8, t16 = _pooled(session, list_images(root / "train" / "good"), size)
        v8, v16 = _pooled(session, vpaths, size)
        np.savez(file, t8=t8, t16=t16, v8=v8, v16=v16)
    z = np.load(file)
    n = len(z["t8"])
    train = Split(z["t8"], z["t16"], {}, np.zeros(n, int), np.zeros((0, 256, 256), bool), np.zeros(n),
                  np.zeros(n, bool), np.array(["good"] * n))
    val = Split(z["v8"], z["v16"], {}, np.array(labels), np.stack(masks), np.array([m["snr"] for m in meta]),
                np.array([m["subtle"] for m in meta]), np.array([m["kind"] for m in meta]))
    return train, val


def as_fitted(head: HeadParams, config: TrainConfig) -> Fitted:
    """The training code's head in head_study's scoring form (same parameters, float32 search)."""
    v = Variant("backbone-study", size=config.input_size[0], bank=len(head.bank), k=head.k_nearest,
                border=head.border, normalise=head.position_mean is not None, whiten=head.whiten is not None,
                top_k=head.top_k)
    stats = None if head.position_mean is None or head.position_std is None else (
        head.position_mean, head.position_std)
    return Fitted(v, list(head.layer_scales), head.whiten_mean, head.whiten, head.bank.astype(np.float32),
                  head.bank_sq.astype(np.float32), head.projection, stats=stats)


def check(train: Split, val: Split, line: Line) -> float:
    """Largest image-score difference between head_study's float32 scoring and the numpy reference."""
    config = line.config()
    head = fit_head(train.p8, train.p16, config)
    f = as_fitted(head, config)
    from benchmarks.head_study import distances, features
    part = Split(val.p8[:4], val.p16[:4], {}, val.labels[:4], val.masks[:4], val.snr[:4], val.subtle[:4],
                 val.kinds[:4])
    d = distances(features(part, f), f)
    h = config.input_size[0] // 8
    x = head.transform(patch_features(part.p8.astype(np.float64), part.p16.astype(np.float64), head.layer_scales))
    _, ref = patch_map_to_outputs(nearest_distances(x, head).reshape(4, 1, h, -1), head)
    _, mine = patch_map_to_outputs(d.reshape(4, 1, h, -1).astype(np.float64), head)
    return float(np.max(np.abs(mine - ref)))


def study(lines: list[Line], cats: list[str], exported: Path, out: Path) -> None:
    for line in lines:
        row: dict = {"line": line.name, "backbone": line.backbone, "size": line.size, "categories": {}}
        t = time.perf_counter()
        for cat in cats:
            train, val = load_features(line.backbone, exported, cat, line.size)
            config = line.config()
            fit_t = time.perf_counter()
            head = fit_head(train.p8, train.p16, config)
            fit_s = time.perf_counter() - fit_t
            row["categories"][cat] = evaluate(as_fitted(head, config), val) | {
                "bank": len(head.bank), "fit_s": round(fit_s, 1)}
        for key in ("image", "pixel", "image_clear"):
            row[key] = float(np.mean([c[key] for c in row["categories"].values()]))
        row["seconds"] = round(time.perf_counter() - t, 1)
        row["load_average"] = round(os.getloadavg()[0], 1)
        print(f"{line.name:40s} img {row['image']:.4f} pix {row['pixel']:.4f} clear {row['image_clear']:.4f} "
              + " ".join(f"{c[:4]} {m['image']:.3f}" for c, m in row["categories"].items())
              + f"  ({row['seconds']} s, load {row['load_average']})", flush=True)
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")


def _nearest_1_and_3(queries: np.ndarray, bank: np.ndarray, exclude: np.ndarray | None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(N, P) distances to the nearest and mean distance to the 3 nearest of a full bank (every training
    patch, image by image in order), from one search; ``exclude`` (N,) the training image each query image is
    (its own patches skipped: leave one image out). Same metric as the graph and k_nearest_mean.

    Exact and cheaper than a partition over the whole bank: the 3 nearest entries lie in the 3 training
    images whose own nearest entry is nearest (any other image has 3 closer entries in front of it), so the
    search takes each image's minimum, then partitions only those 3 images' entries."""
    n, p, _ = queries.shape
    images = len(bank) // p
    if images * p != len(bank):
        raise ValueError(f"a full bank of {len(bank)} entries is not whole images of {p} patches")
    bank_t = np.ascontiguousarray(-2 * bank.T)
    bank_sq = np.sum(bank * bank, axis=1)
    rows = np.arange(p)[:, None, None]
    k1, k3 = np.empty((n, p), np.float32), np.empty((n, p), np.float32)
    for i in range(n):
        q = queries[i]
        cross = q @ bank_t
        cross += bank_sq
        per_image = cross.reshape(p, images, p)
        if exclude is not None:
            per_image[:, exclude[i]] = np.inf
        best = np.argpartition(per_image.min(axis=2), 2, axis=1)[:, :3]  # (P, 3) candidate images
        candidates = per_image[rows, best[:, :, None], np.arange(p)[None, None]].reshape(p, -1)
        near = np.sqrt(np.maximum(np.sum(q * q, axis=1)[:, None] + np.partition(candidates, 2, axis=1)[:, :3], 0))
        k1[i], k3[i] = near.min(axis=1), near.mean(axis=1)
    return k1, k3


def full_bank_ceiling(cats: list[str], exported: Path, stats_images: int, out: Path) -> None:
    """The full bank on Lite0 at 256 px (whitened, normalised, border 1), k=1 and k=3 from one search per
    image: the training code's steps (layer scales, whitening, leave-one-image-out position statistics on
    ``stats_images`` bank images, the numpy reference's steps 6-8), without the greedy coreset."""
    from inspection.evaluation.metrics import auroc
    from inspection.model.anomaly_head import layer_scales, whitening
    from inspection.model.normalisation import position_stats
    from inspection.model.training import stats_subset

    rows: dict[int, dict] = {k: {"line": f"Lite0, full bank, k={k}", "backbone": "lite0", "size": 256,
                                 "stats_images": stats_images, "categories": {}} for k in (1, 3)}
    for cat in cats:
        t = time.perf_counter()
        train, val = load_features("lite0", exported, cat, 256)
        scales = layer_scales(train.p8, train.p16)
        x = patch_features(train.p8, train.p16, scales).astype(np.float32)
        mean, white = whitening(x, seed=0)
        x = (x - mean) @ white
        bank = np.ascontiguousarray(x.reshape(-1, x.shape[2]))
        take = stats_subset(len(x), stats_images, 0)
        train_d = _nearest_1_and_3(x[take], bank, exclude=take)
        v = (patch_features(val.p8, val.p16, scales).astype(np.float32) - mean) @ white
        val_d = _nearest_1_and_3(v, bank, exclude=None)
        for k, td, vd in ((1, train_d[0], val_d[0]), (3, train_d[1], val_d[1])):
            st = position_stats(td, (32, 32))
            head = HeadParams(scales, None, bank[:1], np.zeros(1), 0.0, (256, 256), position_mean=st.mean,
                              position_std=st.std, border=1)
            maps, score = patch_map_to_outputs(vd.reshape(len(vd), 1, 32, 32).astype(np.float64), head)
            clear = (val.labels == 0) | ~val.subtle
            rows[k]["categories"][cat] = {"image": auroc(val.labels, score),
                                          "pixel": auroc(val.masks.ravel(), maps[:, 0].ravel()),
                                          "image_clear": auroc(val.labels[clear], score[clear]),
                                          "bank": len(bank)}
            print(f"full bank k={k} {cat}: {rows[k]['categories'][cat]} ({time.perf_counter() - t:.0f} s, "
                  f"load {os.getloadavg()[0]:.1f})", flush=True)
    for row in rows.values():
        for key in ("image", "pixel", "image_clear"):
            row[key] = float(np.mean([c[key] for c in row["categories"].values()]))
        row["load_average"] = round(os.getloadavg()[0], 1)
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")


def full_bank_latency(cat: str, exported: Path, k: int, runs: int) -> dict:
    """CPU time of the full-bank graph at 1 thread (no position statistics: they do not change the cost of
    the search, which dominates; fitting them with the full bank takes minutes)."""
    import onnx
    import onnxruntime as ort

    from inspection.model.anomaly_head import layer_scales, whitening
    from inspection.model.graph import inspection_graph

    train, _ = load_features("lite0", exported, cat, 256)
    scales = layer_scales(train.p8, train.p16)
    x = patch_features(train.p8, train.p16, scales).astype(np.float32)
    mean, white = whitening(x, seed=0)
    bank = np.ascontiguousarray(((x - mean) @ white).reshape(-1, x.shape[2]))
    head = HeadParams(scales, None, bank, np.sum(bank.astype(np.float64) ** 2, axis=1), 0.0, (256, 256),
                      border=1, k_nearest=k, whiten_mean=mean, whiten=white)
    session = ort.InferenceSession(inspection_graph(onnx.load(str(backbone_path())), head).SerializeToString(),
                                   session_options(1), providers=["CPUExecutionProvider"])
    image = resize_for_model(load_image(list_images(real_surfaces() / cat / "validation" / "test" / "good")[0]),
                             (256, 256))[None]
    session.run(None, {"image": image})
    cpu = []
    for _ in range(runs):
        c = time.process_time()
        session.run(None, {"image": image})
        cpu.append(time.process_time() - c)
    return {"line": f"Lite0, full bank, k={k}", "latency": True, "threads": 1, "runs": runs,
            "cpu_p50_ms": round(float(np.percentile(cpu, 50)) * 1e3, 1),
            "cpu_p90_ms": round(float(np.percentile(cpu, 90)) * 1e3, 1), "load_average": round(os.getloadavg()[0], 1)}


def latency(lines: list[Line], cat: str, exported: Path, runs: int, repeats: int, out: Path) -> None:
    """Each line's whole inspection graph at 1 thread, timed interleaved: for each repeat, every line runs
    ``runs`` times in turn; per line the median over repeats of each repeat's p50 / p90."""
    import onnx
    import onnxruntime as ort

    from inspection.model.graph import inspection_graph

    sessions, images = {}, {}
    image = load_image(list_images(real_surfaces() / cat / "validation" / "test" / "good")[0])
    for line in lines:
        train, _ = load_features(line.backbone, exported, cat, line.size)
        head = fit_head(train.p8, train.p16, line.config())
        graph = inspection_graph(onnx.load(str(backbone_file(line.backbone, exported))), head)
        sessions[line.name] = ort.InferenceSession(graph.SerializeToString(), session_options(1),
                                                   providers=["CPUExecutionProvider"])
        images[line.name] = resize_for_model(image, (line.size, line.size))[None]
        for _ in range(5):  # warm-up
            sessions[line.name].run(None, {"image": images[line.name]})
    per: dict[str, list[dict]] = {line.name: [] for line in lines}
    loads = []
    for _ in range(repeats):
        for line in lines:
            wall, cpu = np.empty(runs), np.empty(runs)
            for i in range(runs):
                t, c = time.perf_counter(), time.process_time()
                sessions[line.name].run(None, {"image": images[line.name]})
                wall[i], cpu[i] = time.perf_counter() - t, time.process_time() - c
            per[line.name].append({f"{n}{q}": float(np.percentile(v, q) * 1e3)
                                   for n, v in (("p", wall), ("cpu_p", cpu)) for q in (50, 90)})
        loads.append(os.getloadavg()[0])
    for line in lines:
        row = {"line": line.name, "latency": True, "threads": 1, "runs": runs, "repeats": repeats,
               "load_average": [round(min(loads), 1), round(max(loads), 1)], "isa": cpu_flags()}
        row |= {f"{k}_ms": round(statistics.median(r[k] for r in per[line.name]), 2) for k in per[line.name][0]}
        print(json.dumps(row), flush=True)
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")


def table(path: Path) -> str:
    """The recorded lines as Markdown: accuracy (the last row per line), then every latency row in order."""
    acc: dict[str, dict] = {}
    lat: list[dict] = []
    for r in map(json.loads, path.read_text().splitlines()):
        if r.get("latency"):
            lat.append(r)
        else:
            acc[r["line"]] = r
    cats = list(next(iter(acc.values()))["categories"])
    lines = ["| line | mean image AUROC | mean pixel AUROC | image AUROC, clear | " + " | ".join(cats)
             + " (image / pixel AUROC) |", "|---|---|---|---|" + "---|" * len(cats)]
    for name, r in acc.items():
        lines.append(f"| {name} | {r['image']:.4f} | {r['pixel']:.4f} | {r['image_clear']:.4f} | "
                     + " | ".join(f"{r['categories'][c]['image']:.3f} / {r['categories'][c]['pixel']:.3f}"
                                  for c in cats) + " |")
    lines += ["", "| line | CPU p50 ms | CPU p90 ms | wall p50 ms | wall p90 ms | runs x repeats | load average |",
              "|---|---|---|---|---|---|---|"]
    for r in lat:
        lines.append(f"| {r['line']} | {r['cpu_p50_ms']} | {r['cpu_p90_ms']} | {r.get('p50_ms', '-')} | "
                     f"{r.get('p90_ms', '-')} | {r['runs']} x {r.get('repeats', 1)} | {r['load_average']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", default="", help="substrings of line names, separated by ';' (default all)")
    parser.add_argument("--categories", default=",".join(load_manifest()["categories"]))
    parser.add_argument("--backbones", type=Path, default=BACKBONES, help="folder of the exported Lite1/Lite2")
    parser.add_argument("--out", type=Path, default=DATA / "backbone_study.jsonl")
    parser.add_argument("--check", action="store_true", help="compare the scoring with the numpy reference")
    parser.add_argument("--latency", action="store_true", help="time each line's graph (first category's head)")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--table", action="store_true", help="print the recorded lines as a Markdown table")
    parser.add_argument("--full-bank", type=int, metavar="STATS_IMAGES", default=0,
                        help="only the full-bank ceiling (k=1 and k=3 from one search), position statistics "
                             "from this many bank images")
    parser.add_argument("--full-bank-latency", action="store_true", help="only time the full-bank graphs")
    args = parser.parse_args()
    if args.table:
        print(table(args.out))
        return
    cats = args.categories.split(",")
    if args.full_bank_latency:
        for k in (1, 3):
            row = full_bank_latency(cats[0], args.backbones, k, args.runs)
            print(json.dumps(row), flush=True)
            with args.out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
        return
    if args.full_bank:
        full_bank_ceiling(cats, args.backbones, args.full_bank, args.out)
        return
    wanted = [w for w in args.lines.split(";") if w]
    chosen = [line for line in LINES if not wanted or any(w in line.name for w in wanted)]
    if not chosen:
        parser.error(f"no line matches {args.lines!r}; lines: {'; '.join(line.name for line in LINES)}")
    if args.check:
        for line in chosen:
            train, val = load_features(line.backbone, args.backbones, cats[0], line.size)
            print(f"{line.name}: largest image-score difference against the numpy reference "
                  f"{check(train, val, line):.2e}")
        return
    if args.latency:
        latency(chosen, cats[0], args.backbones, args.runs, args.repeats, args.out)
        return
    study(chosen, cats, args.backbones, args.out)


if __name__ == "__main__":
    main()
