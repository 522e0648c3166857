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
from inspection.model import InspectionModel, resize_for_model
from inspection.outbox import Outbox

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


def run(model_path: Path, spec: RunSpec, encoded: list[bytes], progress: Callable[[float], None] | None = None
        ) -> dict:
    """One measured run; returns its statistics, timing of set-up, CPU and memory."""
    t0 = time.perf_counter()
    model = InspectionModel.load(model_path, threads=spec.threads, providers=[spec.provider])
    session_s = time.perf_counter() - t0
    used = model.session.get_providers()[0]
    if used != spec.provider:
        raise BenchError(f"onnxruntime fell back to {used} instead of {spec.provider}; not measuring that")
    size = tuple(model.input_size)
    images = [decode_image(b, f"sample {i}") for i, b in enumerate(encoded)]
    ready = [resize_for_model(im, size) for im in images]
    n = len(ready)

    def frames(i: int, k: int) -> np.ndarray:
        return np.stack([ready[(i + j) % n] for j in range(k)])

    per_call = {"single-stream": 1, "multi-stream": spec.streams, "offline": spec.batch}[spec.scenario]
    t = time.perf_counter()
    model.run(frames(0, per_call))
    first_s = time.perf_counter() - t
    stage_times: dict[str, list[float]] = {s: [] for s in STAGES}
    errors = 0
    with tempfile.TemporaryDirectory() as tmp:
        outbox = Outbox(Path(tmp) / "bench-outbox.db", enabled=("http",)) if spec.depth == "e2e" else None

        def one(i: int) -> None:
            if spec.depth == "model":
                model.run(frames(i, per_call))
                return
            for j in range(per_call):  # e2e: each frame through every stage
                marks = [time.perf_counter()]
                image = decode_image(encoded[(i + j) % n], "sample")
                marks.append(time.perf_counter())
                batch = resize_for_model(image, size)[None]
                marks.append(time.perf_counter())
                maps, scores = model.run(batch)
                marks.append(time.perf_counter())
                inspection = model.postprocess(image.shape[:2], maps[0], float(scores[0]))
                marks.append(time.perf_counter())
                record = inspection.to_result()
                outbox.add(str(record.inspection_id), record.model_dump_json())
                marks.append(time.perf_counter())
                for s, (a, b) in zip(STAGES, itertools.pairwise(marks), strict=True):
                    stage_times[s].append(b - a)

        for i in range(spec.warmup):
            one(i)
        for s in STAGES:
            stage_times[s].clear()
        latencies: list[float] = []
        cpu0, wall0 = time.process_time(), time.perf_counter()
        i = 0
        limit = wall0 + 10 * spec.min_duration_s
        while True:
            elapsed = time.perf_counter() - wall0
            if (elapsed >= spec.min_duration_s and len(latencies) >= spec.min_count) or time.perf_counter() > limit:
                break
            s = time.perf_counter()
            try:
                one(i)
                latencies.append(time.perf_counter() - s)
            except Exception:  # counted, the run goes on
                errors += 1
            i += per_call
            if progress and i % (per_call * 10) == 0:
                progress(min(1.0, elapsed / spec.min_duration_s))
        duration = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        if outbox:
            outbox.close()
    stats = summarize(latencies, duration)
    frames_done = len(latencies) * per_call
    stats["frames_per_s"] = frames_done / duration if duration else 0.0
    hist_edges = np.linspace(min(latencies), max(latencies), 41) if latencies else np.zeros(2)
    hist, _ = np.histogram(latencies, bins=hist_edges)
    return {
        "spec": asdict(spec), "label": spec.label, "stats": stats,
        "stages": {s: summarize(v, duration) for s, v in stage_times.items() if v},
        "session_create_ms": session_s * 1e3, "first_inference_ms": first_s * 1e3,
        "cpu_percent": 100 * cpu / duration if duration else 0.0, "peak_rss_mb": peak_rss_mb(),
        "dropped_frames": 0, "errors": errors,
        "valid": duration >= spec.min_duration_s and len(latencies) >= spec.min_count,
        "histogram": {"edges_ms": (hist_edges * 1e3).tolist(), "counts": hist.tolist()},
        "input_shape": [per_call, size[0], size[1], 3],
        "latencies_s": latencies,  # for budget checks; not written to reports
    }


def sample_images(folder: Path | None, count: int = 16, part: str = "flange") -> list[bytes]:
    """Encoded sample frames: from a folder, or drawn by the synthetic line (some of them defective)."""
    if folder is not None:
        from inspection.imaging import list_images

        paths = list_images(folder)
        if not paths:
            raise BenchError(f"{folder}: no images for the benchmark")
        return [p.read_bytes() for p in paths[:count]]
    from inspection.synthetic import DEFECT_KINDS, make_part, rng_for

    out = []
    for i in range(count):
        kind = DEFECT_KINDS[i % 4] if i % 4 == 3 else None
        img = make_part(part, rng_for(99, "bench", i), kind).image
        out.append(cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes())
    return out
