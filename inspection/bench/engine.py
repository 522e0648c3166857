"""Measuring: the scenarios (named after MLPerf Inference) at two depths.

- ``single-stream``: one frame at a time, back to back; headline p90 (and p99) of the per-frame latency.
- ``multi-stream``: a query carries one frame from each of N cameras, run as one batch; p99 per query.
- ``offline``: batches as fast as possible; throughput in frames per second.

Depth ``model``: the ONNX graph call only. Depth ``e2e``: per frame, by stage: decode (PNG bytes -> RGB),
preprocess (resize), inference, postprocess (regions, map at image size), publish (the result committed to
a local outbox, as the line runner does).

Warm-up runs are excluded; session creation and the first inference are timed separately. A run goes on
until both its minimum duration and minimum count are met (it is *valid*), or until 10x the duration.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from inspection.bench.stats import summarize
from inspection.imaging import decode_image
from inspection.line.outbox import Outbox
from inspection.model.runtime import InspectionModel, resize_for_model

SCENARIOS = ("single-stream", "multi-stream", "offline")
DEPTHS = ("model", "e2e")
STAGES = ("decode", "preprocess", "inference", "postprocess", "publish")


class BenchError(ValueError):
    """Bad input, reported before any measuring starts."""


@dataclass(frozen=True)
class RunSpec:
    scenario: str
    depth: str
    threads: int
    provider: str
    size: int
    variant: str
    streams: int = 4
    batch: int = 8
    min_duration_s: float = 10.0
    min_count: int = 200
    warmup: int = 20

    @property
    def label(self) -> str:
        extra = f" ×{self.streams}" if self.scenario == "multi-stream" else f" b{self.batch}" if (
            self.scenario == "offline") else ""
        provider = self.provider.removesuffix("ExecutionProvider")
        return f"{self.scenario}{extra} {self.depth} {self.variant} {self.size}px {self.threads}t {provider}"


def check_inputs(threads: list[int], providers: list[str], streams: int, batch: int) -> None:
    cores = os.cpu_count() or 1
    too_many = [t for t in threads if t > cores or t < 1]
    if too_many:
        raise BenchError(f"thread count(s) {too_many} out of range: this machine has {cores} logical cores")
    available = ort.get_available_providers()
    missing = [p for p in providers if p not in available]
    if missing:
        raise BenchError(f"execution provider(s) {missing} not installed here; available: {', '.join(available)}")
    if streams < 1 or batch < 1:
        raise BenchError("--streams and --batch must be at least 1")


def peak_rss_mb() -> float:
    """The process's peak resident set so far (VmHWM), MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Workload:
    """One query of a run: at depth ``model`` the ONNX call on ready frames; at ``e2e`` every frame through
    decode, preprocess, inference, postprocess and the outbox commit, each stage timed."""

    def __init__(self, model: InspectionModel, spec: RunSpec, encoded: list[bytes], outbox: Outbox | None):
        self.model, self.spec, self.encoded, self.outbox = model, spec, encoded, outbox
        self.per_call = {"single-stream": 1, "multi-stream": spec.streams, "offline": spec.batch}[spec.scenario]
        images = [decode_image(b, f"sample {i}") for i, b in enumerate(encoded)]
        self.ready = [resize_for_model(im, model.input_size) for im in images]
        self.stage_times: dict[str, list[float]] = {s: [] for s in STAGES}

    def frames(self, i: int, k: int) -> np.ndarray:
        return np.stack([self.ready[(i + j) % len(self.ready)] for j in range(k)])

    def __call__(self, i: int) -> None:
        if self.outbox is None:
            self.model.run(self.frames(i, self.per_call))
            return
        for j in range(self.per_call):
            marks = [time.perf_counter()]
            image = decode_image(self.encoded[(i + j) % len(self.encoded)], "sample")
            marks.append(time.perf_counter())
            batch = resize_for_model(image, self.model.input_size)[None]
            marks.append(time.perf_counter())
            maps, scores = self.model.run(batch)
            marks.append(time.perf_counter())
            record = self.model.postprocess(image.shape[:2], maps[0], float(scores[0])).to_result()
            marks.append(time.perf_counter())
            self.outbox.add(str(record.inspection_id), record.model_dump_json())
            marks.append(time.perf_counter())
            for s, (a, b) in zip(STAGES, itertools.pairwise(marks), strict=True):
                self.stage_times[s].append(b - a)


@dataclass
class _Measured:
    latencies: list[float]
    errors: int
    duration: float
    cpu: float


def _measure(work: _Workload, progress: Callable[[float], None] | None) -> _Measured:
    """Warm up, then run queries until both the minimum duration and count are met (or 10x the duration)."""
    spec = work.spec
    for i in range(spec.warmup):
        work(i)
    for s in STAGES:
        work.stage_times[s].clear()
    latencies: list[float] = []
    errors, i = 0, 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    limit = wall0 + 10 * spec.min_duration_s
    while True:
        elapsed = time.perf_counter() - wall0
        if (elapsed >= spec.min_duration_s and len(latencies) >= spec.min_count) or time.perf_counter() > limit:
            break
        began = time.perf_counter()
        try:
            work(i)
            latencies.append(time.perf_counter() - began)
        except Exception:  # counted, the run goes on
            errors += 1
        i += work.per_call
        if progress and i % (work.per_call * 10) == 0:
            progress(min(1.0, elapsed / spec.min_duration_s))
    return _Measured(latencies, errors, time.perf_counter() - wall0, time.process_time() - cpu0)


def run(model_path: Path, spec: RunSpec, encoded: list[bytes], progress: Callable[[float], None] | None = None
        ) -> dict:
    """One measured run; returns its statistics, timing of set-up, CPU and memory."""
    t0 = time.perf_counter()
    model = InspectionModel.load(model_path, threads=spec.threads, providers=[spec.provider])
    session_s = time.perf_counter() - t0
    used = model.session.get_providers()[0]
    if used != spec.provider:
        raise BenchError(f"onnxruntime fell back to {used} instead of {spec.provider}; not measuring that")
    with tempfile.TemporaryDirectory() as tmp:
        outbox = Outbox(Path(tmp) / "bench-outbox.db", enabled=("http",)) if spec.depth == "e2e" else None
        work = _Workload(model, spec, encoded, outbox)
        t = time.perf_counter()
        model.run(work.frames(0, work.per_call))
        first_s = time.perf_counter() - t
        try:
            m = _measure(work, progress)
        finally:
            if outbox:
                outbox.close()
    stats = summarize(m.latencies, m.duration)
    stats["frames_per_s"] = len(m.latencies) * work.per_call / m.duration if m.duration else 0.0
    hist_edges = np.linspace(min(m.latencies), max(m.latencies), 41) if m.latencies else np.zeros(2)
    hist, _ = np.histogram(m.latencies, bins=hist_edges)
    h, w = model.input_size
    return {
        "spec": asdict(spec), "label": spec.label, "stats": stats,
        "stages": {s: summarize(v, m.duration) for s, v in work.stage_times.items() if v},
        "session_create_ms": session_s * 1e3, "first_inference_ms": first_s * 1e3,
        "cpu_percent": 100 * m.cpu / m.duration if m.duration else 0.0, "peak_rss_mb": peak_rss_mb(),
        "errors": m.errors,
        "valid": m.duration >= spec.min_duration_s and len(m.latencies) >= spec.min_count,
        "histogram": {"edges_ms": (hist_edges * 1e3).tolist(), "counts": hist.tolist()},
        "input_shape": [work.per_call, h, w, 3],
        "latencies_s": m.latencies,  # for budget checks; not written to reports
    }


def sample_images(folder: Path | None, count: int = 16, part: str = "flange") -> list[bytes]:
    """Encoded sample frames: from a folder, or drawn by the synthetic line (some of them defective)."""
    if folder is not None:
        from inspection.imaging import list_images

        paths = list_images(folder)
        if not paths:
            raise BenchError(f"{folder}: no images for the benchmark")
        return [p.read_bytes() for p in paths[:count]]
    from inspection.evaluation.synthetic import DEFECT_KINDS, make_part, rng_for

    out = []
    for i in range(count):
        kind = DEFECT_KINDS[i % 4] if i % 4 == 3 else None
        img = make_part(part, rng_for(99, "bench", i), kind).image
        out.append(cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes())
    return out
