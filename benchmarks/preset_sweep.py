"""Resolution x bank-size sweep of the anomaly head for the presets' latency budgets (issue 12): `fast` p90
<= 10 ms, `accurate` p90 <= 25 ms, 1 thread. VALIDATION split of the real-surfaces set for choosing; the test
split only to confirm a candidate (``--split test``).

Extends `benchmarks/backbone_study.py` (its Line, cached features, study and scoring; Lite0 only) with:
- ``--quick-latency``: each candidate's whole inspection graph (:func:`inspection.model.graph.inspection_graph`)
  with a *random* head of the right shape (bank size, k, whitening, position statistics, border): the cost
  does not depend on the values, so the budget can be checked before fitting anything. All graphs are timed
  interleaved round by round at 1 thread (wall and process-CPU time, /proc/loadavg before and after);
  ``--fitted CATEGORY`` also times each line with the head fitted on that category, to check that claim;
- the accuracy lines (``--lines``, substrings; default all) fitted with the training code (`fit_head`). The
  greedy coreset is incremental (each step adds the row farthest from the chosen ones, the size only says
  when to stop), so one selection of the largest bank of a category and input size serves the smaller banks
  as its prefix (``--check-prefix`` verifies this against an unshared selection);
- ``--train-time``: `inspection.model.training.train` on a category's 160 train/good images (its real path:
  read, features, coreset, position statistics, calibration), seconds per step;
- ``--table``: the Markdown table (accuracy lines joined with the last latency row of the same name, from
  ``--out`` and the ``preset_sweep_latency*.jsonl`` beside it; CPU p90 also scaled to the quiet machine by
  the `accurate` preset's line timed in the same run).

    python benchmarks/preset_sweep.py --quick-latency [--lines ...] [--runs 30 --repeats 5]
    python benchmarks/preset_sweep.py [--lines "288 px;320 px"] [--categories a,b] [--split test]
    python benchmarks/preset_sweep.py --train-time --lines "..." [--categories wood]
    python benchmarks/preset_sweep.py --table [--out benchmarks/results/preset_sweep.jsonl]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import benchmarks.backbone_study as bs  # noqa: E402
import inspection.model.training as training  # noqa: E402
from benchmarks.accuracy_protocol import DATA, cpu_flags, real_surfaces  # noqa: E402
from benchmarks.head_study import _labelled  # noqa: E402
from datasets.real_surfaces import load_manifest  # noqa: E402
from inspection.model.anomaly_head import HeadParams  # noqa: E402

OUT = DATA / "preset_sweep.jsonl"


def _line(size: int, bank: int, k: int) -> bs.Line:
    if bank == 1:
        return bs.Line(f"{size} px, Gaussian", "lite0", "fast", size=size)
    return bs.Line(f"{size} px, coreset {bank:,}, k={k}", "lite0", "balanced", size=size,
                   overrides={"bank_size": bank, "k_nearest": k})


LINES = list({x.name: x for x in [_line(s, 1, 1) for s in (224, 256, 288, 320)]
              + [_line(s, b, k) for s in (224, 256) for b in (256, 512, 1024, 2048) for k in (1, 3)]
              + [_line(s, b, k) for s in (256, 288, 320, 352, 384) for b in (1024, 2048, 3072, 4096)
                 for k in (1, 3)]}.values())


# -- latency with random heads -------------------------------------------------------------------------------

def random_head(size: int, bank: int, k: int, dim: int = 120, seed: int = 0) -> HeadParams:
    """A head of the shape a line trains (whitened, normalised, border 1), with random values."""
    rng = np.random.default_rng(seed)
    h = size // 8
    entries = rng.standard_normal((bank, dim)).astype(np.float32)
    if bank == 1:
        entries[:] = 0
    return HeadParams((1.0, 1.0), None, entries, np.sum(entries.astype(np.float64) ** 2, axis=1), 0.0,
                      (size, size), position_mean=rng.random((h, h)).astype(np.float32),
                      position_std=(0.5 + rng.random((h, h))).astype(np.float32), border=1,
                      k_nearest=1 if bank == 1 else k, whiten_mean=rng.standard_normal(dim).astype(np.float32),
                      whiten=(rng.standard_normal((dim, dim)) / np.sqrt(dim)).astype(np.float32))


def _loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def _sessions(lines: list[bs.Line], fitted_cat: str | None) -> dict[str, tuple]:
    """A session per line with a random head, and with ``fitted_cat`` also one per line with the head fitted
    on that category (named ``<line> [fitted head]``), to check that the values do not change the cost."""
    import onnx
    import onnxruntime as ort

    from inspection.model.graph import inspection_graph
    from inspection.model.runtime import session_options
    from inspection.model.shipped import backbone_path

    backbone = onnx.load(str(backbone_path()))
    out = {}
    for line in lines:
        cfg = line.config()
        heads = {line.name: random_head(line.size, cfg.bank_size, cfg.k_nearest)}
        if fitted_cat:
            train, _ = bs.load_features("lite0", bs.BACKBONES, fitted_cat, line.size)
            heads[f"{line.name} [fitted head]"] = training.fit_head(train.p8, train.p16, cfg)
        img = np.random.default_rng(1).integers(0, 256, (1, line.size, line.size, 3), dtype=np.uint8)
        for name, head in heads.items():
            session = ort.InferenceSession(inspection_graph(backbone, head).SerializeToString(),
                                           session_options(1), providers=["CPUExecutionProvider"])
            for _ in range(5):  # warm-up
                session.run(None, {"image": img})
            out[name] = (session, img)
    return out


def quick_latency(lines: list[bs.Line], runs: int, repeats: int, out: Path, fitted_cat: str | None = None) -> None:
    """Every line's graph (random head) ``runs`` times in turn, ``repeats`` rounds; per line the median over
    rounds of each round's wall and CPU p50 / p90."""
    sessions = _sessions(lines, fitted_cat)
    per: dict[str, list[dict]] = {name: [] for name in sessions}
    loads = [_loadavg()]
    t0 = time.strftime("%H:%M", time.gmtime())
    for _ in range(repeats):
        for name, (session, img) in sessions.items():
            wall, cpu = np.empty(runs), np.empty(runs)
            for i in range(runs):
                t, c = time.perf_counter(), time.process_time()
                session.run(None, {"image": img})
                wall[i], cpu[i] = time.perf_counter() - t, time.process_time() - c
            per[name].append({f"{n}{q}": float(np.percentile(v, q) * 1e3)
                              for n, v in (("p", wall), ("cpu_p", cpu)) for q in (50, 90)})
        loads.append(_loadavg())
    when = f"{time.strftime('%Y-%m-%d', time.gmtime())} {t0}-{time.strftime('%H:%M', time.gmtime())} UTC"
    for name in sessions:
        row = {"line": name, "latency": True, "random_head": not name.endswith("[fitted head]"), "threads": 1,
               "runs": runs, "repeats": repeats, "when": when, "isa": cpu_flags(),
               "load_average": [round(min(x[0] for x in loads), 2), round(max(x[0] for x in loads), 2)]}
        row |= {f"{k}_ms": round(statistics.median(r[k] for r in per[name]), 2) for k in per[name][0]}
        print(f"{name:45s} CPU p50 {row['cpu_p50_ms']:6.2f} p90 {row['cpu_p90_ms']:6.2f}  wall p50 "
              f"{row['p50_ms']:6.2f} p90 {row['p90_ms']:6.2f}  load {row['load_average']}", flush=True)
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")


# -- accuracy: shared greedy selections ----------------------------------------------------------------------

_SELECTIONS: dict[tuple, np.ndarray] = {}
_PLAN: dict[int, int] = {}  # number of chooser rows (a category at one size) -> the largest bank to select
_greedy = training.greedy_coreset


def _shared_greedy(features: np.ndarray, size: int, seed: int = 0, progress=None) -> np.ndarray:
    """The greedy selection of the largest planned bank, computed once; a smaller bank is its prefix."""
    key = (features.shape, seed, features[:8].tobytes())
    have = _SELECTIONS.get(key)
    if have is None or len(have) < size:
        have = _greedy(features, max(size, _PLAN.get(len(features), size)), seed=seed)
        _SELECTIONS[key] = have
    return have[:size]


def check_prefix(cat: str, size: int, small: int, large: int) -> bool:
    """An unshared selection of ``small`` entries equals the first ``small`` of a ``large`` one."""
    train, _ = bs.load_features("lite0", bs.BACKBONES, cat, size)
    cfg = _line(size, small, 3).config()
    a = training.fit_head(train.p8, train.p16, cfg)
    b_full = training.fit_head(train.p8, train.p16, _line(size, large, 3).config())
    return bool(np.array_equal(a.bank, b_full.bank[:small]))


def sweep(lines: list[bs.Line], cats: list[str], out: Path, split: str) -> None:
    """backbone_study's study (fit_head, float32 scoring) with the selections shared between bank sizes."""
    for line in lines:
        n = line.size // 8
        rows = 160 * n * n
        _PLAN[rows] = max([_PLAN.get(rows, 0)] + [x.config().bank_size for x in lines if x.size == line.size])
    training.greedy_coreset = _shared_greedy
    try:
        if split == "test":
            bs.load_features = _with_test_split(bs.load_features)
        bs.study(lines, cats, bs.BACKBONES, out)
    finally:
        training.greedy_coreset = _greedy


def _with_test_split(load):
    """load_features with the validation split replaced by the test split (same cache folder, own files)."""
    def load_test(backbone: str, exported: Path, cat: str, size: int):
        import onnx
        import onnxruntime as ort

        from inspection.model.graph import feature_graph
        from inspection.model.runtime import session_options

        train, _ = load(backbone, exported, cat, size)
        file = bs.CACHE / f"{backbone}_{cat}_{size}_test.npz"
        paths, labels, masks, meta = _labelled(real_surfaces() / cat)
        if not file.exists():
            graph = feature_graph(onnx.load(str(bs.backbone_file(backbone, exported))), (size, size))
            session = ort.InferenceSession(graph.SerializeToString(), session_options(2),
                                           providers=["CPUExecutionProvider"])
            v8, v16 = bs._pooled(session, paths, size)
            np.savez(file, v8=v8, v16=v16)
        z = np.load(file)
        return train, bs.Split(z["v8"], z["v16"], {}, np.array(labels), np.stack(masks),
                               np.array([m["snr"] for m in meta]), np.array([m["subtle"] for m in meta]),
                               np.array([m["kind"] for m in meta]))
    return load_test


# -- training time ---------------------------------------------------------------------------------------------

def train_time(lines: list[bs.Line], cats: list[str], out: Path) -> None:
    """The product's training path on each category's 160 train/good images (15 % held out to calibrate)."""
    folder = DATA / "preset_sweep_models"
    folder.mkdir(parents=True, exist_ok=True)
    for line in lines:
        for cat in cats:
            cfg = line.config()
            cfg.progress, cfg.threads = False, 1
            t, c = time.perf_counter(), time.process_time()
            report = training.train(real_surfaces() / cat / "train" / "good", folder / f"{cat}.onnx", cfg)
            row = {"line": line.name, "train_time": True, "category": cat, "threads": 1,
                   "bank_images": report.bank_images, "held_out": report.held_out,
                   "seconds": round(time.perf_counter() - t, 1), "cpu_seconds": round(time.process_time() - c, 1),
                   "steps": {k: round(v, 1) for k, v in report.seconds.items()}, "load_average": _loadavg()}
            print(json.dumps(row), flush=True)
            with out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")


# -- table -------------------------------------------------------------------------------------------------------

ACCURATE = "384 px, coreset 1,024, k=3"  # the accurate preset: the reference timed in every latency run
ACCURATE_QUIET_P90_MS = 19.2  # its CPU p90 on the quiet machine (RESULTS.md, "Latency per preset", 13:16 UTC)


def _latency_rows(paths: list[Path]) -> dict[str, dict]:
    """The last random-head latency row per line over the files in order, with ``quiet_est``: its CPU p90
    scaled by the accurate preset's quiet p90 over accurate's CPU p90 in the same run (same ``when``)."""
    rows = [r for p in paths if p.exists() for r in map(json.loads, p.read_text().splitlines())
            if r.get("latency") and r.get("random_head")]
    ref = {r["when"]: r["cpu_p90_ms"] for r in rows if r["line"] == ACCURATE}
    out = {}
    for r in rows:
        if r["when"] in ref:
            r["quiet_est"] = r["cpu_p90_ms"] * ACCURATE_QUIET_P90_MS / ref[r["when"]]
        out[r["line"]] = r
    return out


def table(path: Path, latency: list[Path]) -> str:
    acc = {r["line"]: r for r in map(json.loads, path.read_text().splitlines())
           if not r.get("latency") and not r.get("train_time")}
    lat = _latency_rows([path, *latency])
    head = ["| line | mean image AUROC | mean pixel AUROC | tissue (image / pixel) | petals (image / pixel) | "
            "CPU p90 ms | wall p90 ms | load | CPU p90 scaled to quiet ms |", "|---|---|---|---|---|---|---|---|---|"]
    for name in [line.name for line in LINES if line.name in acc or line.name in lat]:
        a, t = acc.get(name), lat.get(name)
        cells = [f"{a['image']:.4f}", f"{a['pixel']:.4f}",
                 *(f"{a['categories'][c]['image']:.3f} / {a['categories'][c]['pixel']:.3f}"
                   if c in a["categories"] else "-" for c in ("tissue", "petals"))] if a else ["-"] * 4
        cells += [str(t["cpu_p90_ms"]), str(t["p90_ms"]), "{}-{}".format(*t["load_average"]),
                  f"{t['quiet_est']:.1f}" if "quiet_est" in t else "-"] if t else ["-"] * 4
        head.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(head)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", default="", help="substrings of line names, separated by ';' (default all)")
    parser.add_argument("--categories", default=",".join(load_manifest()["categories"]))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--split", choices=["validation", "test"], default="validation")
    parser.add_argument("--quick-latency", action="store_true", help="time the graphs with random heads")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-time", action="store_true", help="time training.train per line and category")
    parser.add_argument("--fitted", default=None, metavar="CATEGORY",
                        help="with --quick-latency: each line also with the head fitted on this category")
    parser.add_argument("--check-prefix", action="store_true", help="check the shared greedy selections")
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    if args.table:
        print(table(args.out, sorted(args.out.parent.glob("preset_sweep_latency*.jsonl"))))
        return
    wanted = [w for w in args.lines.split(";") if w]
    chosen = [line for line in LINES if not wanted or any(w[1:] == line.name if w.startswith("=") else w in line.name
                                                          for w in wanted)]
    if not chosen:
        parser.error(f"no line matches {args.lines!r}")
    cats = args.categories.split(",")
    if args.split == "test" and args.out == OUT:
        args.out = OUT.with_name("preset_sweep_test.jsonl")
    if args.check_prefix:
        print("prefix of the 2,048 selection equals the 1,024 one:", check_prefix(cats[0], 256, 1024, 2048))
    elif args.quick_latency:
        quick_latency(chosen, args.runs, args.repeats, args.out, args.fitted)
    elif args.train_time:
        train_time(chosen, cats, args.out)
    else:
        sweep(chosen, cats, args.out, args.split)


if __name__ == "__main__":
    main()
