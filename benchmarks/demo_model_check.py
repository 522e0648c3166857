"""The shipped demo models on the simulated line: false rejects of good parts, escapes of defective ones.

    python benchmarks/demo_model_check.py [--good 300] [--defective 80] [--seed 0] [--model PART=FILE ...]

For each part type, the first --good good and --defective defective parts of the simulated line with --seed
(`inspection.sources.simulated.line_parts`: the very images `inspection demo` takes its parts from; the demo
runs seed 0 with a pool of 40, i.e. the first 30 good and 10 defective of these) are scored by the model
(the shipped `models/demo_<part>.onnx` unless --model names another file for that part) and judged with the
model's own threshold (FAIL when score > threshold). Printed and written to
benchmarks/results/demo_model_check.json (--out): the false-reject rate on the good parts with its 95 %
Clopper-Pearson interval, the escape rate per defect kind, the same two for the demo's own pool, and the
PASS/FAIL split `inspection demo` should then deliver at --defect-rate.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from inspection.evaluation.synthetic import DEFECT_KINDS, PART_TYPES  # noqa: E402
from inspection.model.runtime import InspectionModel  # noqa: E402
from inspection.model.shipped import demo_model_path  # noqa: E402
from inspection.sources.simulated import defective_in_pool, line_parts  # noqa: E402

DEMO_POOL = 40  # SimulatedLine's default pool_size, as `inspection demo` runs it (seed 0)


@dataclass
class PartCheck:
    part: str
    model: str
    threshold: float
    good: int
    false_rejects: int
    frr: float
    frr_ci95: tuple[float, float]
    defective: int
    escapes: int
    escape_rate: float
    escapes_per_kind: dict[str, str]
    demo_pool_false_rejects: str
    demo_pool_escapes: str
    demo_fail_share: float | None  # the FAIL share `inspection demo` delivers at its defect rate (None: fewer
    # parts checked than its pool holds)
    good_score_p50: float
    good_score_max: float
    seconds: float


def _binom_cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k + 1))


def _solve(f, lo: float = 0.0, hi: float = 1.0) -> float:
    """The root of a decreasing function on [lo, hi] by bisection."""
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) > 0 else (lo, mid)
    return (lo + hi) / 2


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) binomial confidence interval of a rate seen k times in n."""
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else _solve(lambda p: a - (1 - _binom_cdf(k - 1, n, p)))  # P(X >= k) = a
    hi = 1.0 if k == n else _solve(lambda p: _binom_cdf(k, n, p) - a)  # P(X <= k) = a
    return lo, hi


def scores(model: InspectionModel, images: list[np.ndarray], batch: int = 16) -> np.ndarray:
    if not images:
        return np.zeros(0)
    return np.concatenate([model.run(np.stack(images[i:i + batch]))[1] for i in range(0, len(images), batch)])


def check_part(part: str, model_path: Path, n_good: int, n_defective: int, seed: int, defect_rate: float
               ) -> PartCheck:
    t = time.perf_counter()
    model = InspectionModel.load(model_path, threads=1)
    good = scores(model, line_parts(part, seed, n_good, defective=False))
    bad = scores(model, line_parts(part, seed, n_defective, defective=True))
    rejected, passed = good > model.threshold, bad <= model.threshold
    kinds = np.array([DEFECT_KINDS[i % len(DEFECT_KINDS)] for i in range(n_defective)])
    per_kind = {k: f"{int(passed[kinds == k].sum())}/{int((kinds == k).sum())}" for k in DEFECT_KINDS}
    pool_bad = defective_in_pool(DEMO_POOL)
    pool_good = DEMO_POOL - pool_bad
    whole_pool = n_good >= pool_good and n_defective >= pool_bad
    pool_frr, pool_escape = float(rejected[:pool_good].mean()), float(passed[:pool_bad].mean())
    return PartCheck(
        part=part, model=_shown(model_path), threshold=model.threshold, good=n_good,
        false_rejects=int(rejected.sum()), frr=float(rejected.mean()),
        frr_ci95=clopper_pearson(int(rejected.sum()), n_good), defective=n_defective, escapes=int(passed.sum()),
        escape_rate=float(passed.mean()), escapes_per_kind=per_kind,
        demo_pool_false_rejects=f"{int(rejected[:pool_good].sum())}/{min(pool_good, n_good)}",
        demo_pool_escapes=f"{int(passed[:pool_bad].sum())}/{min(pool_bad, n_defective)}",
        demo_fail_share=(1 - defect_rate) * pool_frr + defect_rate * (1 - pool_escape) if whole_pool else None,
        good_score_p50=float(np.median(good)), good_score_max=float(good.max()),
        seconds=time.perf_counter() - t)


def _shown(path: Path) -> str:
    """A model's path as recorded: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(HERE.parent))
    except ValueError:
        return str(path)


def _model_overrides(items: list[str]) -> dict[str, Path]:
    out = {}
    for item in items:
        part, sep, file = item.partition("=")
        if not sep or part not in PART_TYPES:
            raise SystemExit(f"--model {item!r}: write PART=FILE with PART one of {', '.join(PART_TYPES)}")
        if not Path(file).is_file():
            raise SystemExit(f"--model {item!r}: no file {file}")
        out[part] = Path(file)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--good", type=int, default=300, help="good parts per part type")
    ap.add_argument("--defective", type=int, default=80, help="defective parts per part type (kinds in turn)")
    ap.add_argument("--seed", type=int, default=0, help="the simulated line's seed (the demo runs 0)")
    ap.add_argument("--defect-rate", type=float, default=0.15, help="the demo's defect rate (its default)")
    ap.add_argument("--part", action="append", choices=PART_TYPES, help="only this part type (repeatable)")
    ap.add_argument("--model", action="append", default=[], metavar="PART=FILE", help="another model for a part")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "demo_model_check.json")
    args = ap.parse_args()
    if args.good < 1 or args.defective < 1:
        raise SystemExit(f"--good {args.good} --defective {args.defective}: both must be at least 1")
    overrides = _model_overrides(args.model)
    checks = [check_part(p, overrides.get(p, demo_model_path(p)), args.good, args.defective, args.seed,
                         args.defect_rate) for p in args.part or PART_TYPES]
    for c in checks:
        lo, hi = c.frr_ci95
        print(f"{c.part}: threshold {c.threshold:.4f}; FRR {c.false_rejects}/{c.good} = {c.frr:.1%} "
              f"(95 % CI {lo:.1%}-{hi:.1%}); escapes {c.escapes}/{c.defective} = {c.escape_rate:.1%} "
              f"({', '.join(f'{k} {v}' for k, v in c.escapes_per_kind.items())}); demo pool: "
              f"{c.demo_pool_false_rejects} good rejected, {c.demo_pool_escapes} defective passed"
              + (f" -> {c.demo_fail_share:.1%} FAIL at defect rate {args.defect_rate:g}" if c.demo_fail_share
                 is not None else " (fewer parts than its pool of 40)") + f"; {c.seconds:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "seed": args.seed, "defect_rate": args.defect_rate, "checks": [asdict(c) for c in checks],
        "cpu": platform.processor() or platform.machine(), "load_average": os.getloadavg(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=2) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
