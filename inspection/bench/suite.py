"""A benchmark suite: the sweep over scenarios, depths, variants, sizes, threads and providers."""

from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from inspection.bench import engine, variants
from inspection.bench.int8 import Int8Inputs, accuracy, agreement, int8_file, speed
from inspection.bench.provenance import provenance
from inspection.bench.stats import Budget
from inspection.errors import InspectionError
from inspection.model.metadata import read_metadata


def run_suite(model: Path, scenarios: list[str], depths: list[str], threads: list[int], sizes: list[int],
              providers: list[str], variant_names: list[str], budget: Budget | None, encoded: list[bytes],
              streams: int = 4, batch: int = 8, min_duration_s: float = 10.0, min_count: int = 200,
              warmup: int = 20, progress: bool = True, int8: Int8Inputs = Int8Inputs()) -> dict:
    try:
        meta = read_metadata(model)
    except InspectionError as exc:
        raise engine.BenchError(str(exc)) from None
    engine.check_inputs(threads, providers, streams, batch)
    unknown = [v for v in variant_names if v not in ("fp32", "int8")]
    if unknown:
        raise engine.BenchError(f"variant(s) {unknown}: choose fp32 and/or int8")
    bad_sizes = [s for s in sizes if s % 16 or s < 32]
    if bad_sizes:
        raise engine.BenchError(f"input size(s) {bad_sizes}: must be multiples of 16, at least 32")
    runs: list[dict] = []
    extra: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        files: dict[tuple[str, int], Path] = {}
        for size in sizes:
            base = model if size == meta.input_size[0] == meta.input_size[1] else variants.at_size(
                model, (size, size), Path(tmp) / f"fp32-{size}.onnx")
            files[("fp32", size)] = base
            if "int8" in variant_names:
                t = time.perf_counter()
                files[("int8", size)] = int8_file(base, size, meta.input_size, int8, Path(tmp) / f"int8-{size}.onnx")
                extra.setdefault("int8_quantize_s", {})[size] = time.perf_counter() - t
        if "int8" in variant_names:
            pair = files[("fp32", sizes[0])], files[("int8", sizes[0])]
            extra["int8_agreement"] = agreement(*pair, encoded)
            if (acc := accuracy(*pair, int8)) is not None:
                extra["int8_accuracy"] = acc
        combos = list(itertools.product(scenarios, depths, variant_names, sizes, threads, providers))
        for scenario, depth, variant, size, th, provider in tqdm(combos, desc="bench", unit="run",
                                                                  disable=not progress):
            spec = engine.RunSpec(scenario, depth, th, provider, size, variant, streams, batch, min_duration_s,
                                  min_count, warmup)
            result = engine.run(files[(variant, size)], spec, encoded)
            result["provenance"] = provenance(files[(variant, size)], provider, th, result["input_shape"])
            latencies = result.pop("latencies_s")
            if budget and scenario != "offline":
                checks = budget.check(latencies)
                result["budget"] = {"checks": checks, "pass": all(c["pass"] for c in checks)}
            runs.append(result)
    if "int8" in variant_names and "fp32" in variant_names:
        extra["int8_speed"] = speed(runs)
    applicable = [r for r in runs if "budget" in r]
    meeting = [r["label"] for r in applicable if r["budget"]["pass"]]
    verdict = None if not budget else ("PASS" if meeting else "FAIL")
    first = runs[0]["provenance"] if runs else {}
    return {"tool": "inspection bench", "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "model": str(model), "model_name": meta.name, "budget": str(budget) if budget else None,
            "verdict": verdict, "meeting_budget": meeting, "machine": {k: first.get(k) for k in (
                "cpu_model", "logical_cores", "machine", "isa", "os", "python", "onnxruntime")},
            "runs": runs, **extra}
