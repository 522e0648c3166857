"""The line runner: one inspection station on the edge box.

    source --(capture queue: wait, or drop oldest when live)--> inference --(result queue)--> publish
    publish: overlay + local images, then the result committed to the outbox (durable)
    forwarders: outbox --> results service (HTTP) and MQTT broker, each with retries

A watchdog in the capture stage reopens a failed or stalled source with backoff; the source's state
(connecting / running / stalled / error / finished) shows in status and metrics. On stop (SIGINT/SIGTERM),
frames already taken are inspected and committed, then the forwarders deliver what they can within the
flush timeout. Whatever is not delivered stays in the outbox for the next start.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from prometheus_client import generate_latest

from inspection.errors import ImageError
from inspection.imaging import as_rgb8, decode_image, save_image
from inspection.line import metrics as m
from inspection.line.config import StationConfig
from inspection.line.forwarders import Backoff, HttpForwarder, MqttForwarder
from inspection.line.outbox import Outbox
from inspection.model.runtime import InspectionModel
from inspection.model.shipped import default_model_path
from inspection.results.overlay import render_overlay
from inspection.schema import StageTimings, StationContext
from inspection.sources.frames import (
    FolderSource,
    Frame,
    FrameSource,
    OpenCVSource,
    SimulatedLine,
    SourceError,
    SourceFinished,
    WatchFolderSource,
)

log = logging.getLogger("inspection.line.runner")
SOURCE_STATES = ("connecting", "running", "stalled", "error", "finished")
_END = object()


def make_source(cfg: StationConfig) -> FrameSource:
    s = cfg.source
    if s.kind == "simulated":
        return SimulatedLine(s.part_type, s.rate, s.defect_rate, s.seed)
    if s.kind == "camera":
        return OpenCVSource(s.device, live=True)
    if s.kind == "stream":
        return OpenCVSource(s.url, live=True)
    if s.kind == "video":
        return OpenCVSource(str(s.path), live=False, loop=s.loop)
    if s.kind == "folder":
        return FolderSource(s.path)
    return WatchFolderSource(s.path)


@dataclass
class _Inspected:
    frame: Frame
    image: np.ndarray | None
    result: object | None  # Inspection
    error: str | None
    started: float


class LocalImages:
    """Originals and overlays kept on the edge box, with retention by age and total bytes (oldest first)."""

    def __init__(self, root: Path, max_age_days: float, max_bytes: int):
        self.root, self.max_age_s, self.max_bytes = Path(root), max_age_days * 86400, max_bytes
        self.last_sweep = 0.0

    def save(self, inspection_id: str, image: np.ndarray, overlay: np.ndarray) -> tuple[str | None, str | None]:
        day = self.root / datetime.now(UTC).strftime("%Y%m%d")
        paths = (day / f"{inspection_id}-original.png", day / f"{inspection_id}-overlay.jpg")
        try:
            day.mkdir(parents=True, exist_ok=True)
            save_image(paths[0], image)
            save_image(paths[1], overlay)
            return str(paths[0]), str(paths[1])
        except (OSError, ImageError) as exc:  # disk full, read-only: inspection goes on without the images
            m.IMAGE_ERRORS.inc()
            log.error("could not keep images of %s: %s", inspection_id, exc)
            for p in paths:
                with contextlib.suppress(OSError):
                    p.unlink(missing_ok=True)
            return None, None

    def sweep(self, every_s: float = 60.0) -> int:
        if time.monotonic() - self.last_sweep < every_s or not self.root.is_dir():
            return 0
        self.last_sweep = time.monotonic()
        files = sorted((p.stat().st_mtime, p.stat().st_size, p) for p in self.root.rglob("*") if p.is_file())
        total = sum(s for _, s, _ in files)
        cutoff = time.time() - self.max_age_s
        removed = 0
        for mtime, size, p in files:
            if mtime >= cutoff and total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                p.unlink()
                total -= size
                removed += 1
        return removed


class LineRunner:
    def __init__(self, cfg: StationConfig, flush_timeout: float = 10.0):
        self.cfg = cfg
        self.station = StationContext(**cfg.station.model_dump())  # the plain context, without config strictness
        self.model = InspectionModel.load(cfg.model.path or default_model_path(), threads=cfg.model.threads)
        self.source = make_source(cfg)
        self.flush_timeout = flush_timeout
        self.enabled = tuple(d for d, on in (("http", cfg.service.url), ("mqtt", cfg.mqtt.host)) if on)
        self.outbox_path = Path(cfg.outbox)
        Outbox(self.outbox_path, self.enabled).close()  # create, and mark switched-off destinations done
        self.images = LocalImages(cfg.images.dir, cfg.images.max_age_days, int(cfg.images.max_gb * 1024**3))
        self.capture_q: queue.Queue = queue.Queue(maxsize=cfg.source.queue_size)
        self.result_q: queue.Queue = queue.Queue(maxsize=64)
        self.stop_capture = threading.Event()
        self.stop_forwarding = threading.Event()
        self.finished = threading.Event()
        self.source_state = "connecting"
        self.counts = {"frames": 0, "dropped": 0, "corrupt": 0, "PASS": 0, "FAIL": 0, "reopens": 0, "stalls": 0}
        self.rng = np.random.default_rng()
        self.forwarders = []
        if cfg.service.url:
            self.forwarders.append(HttpForwarder(self.outbox_path, cfg.service.url, cfg.service.secret(),
                                                 self.stop_forwarding, batch=cfg.service.batch))
        if cfg.mqtt.host:
            self.forwarders.append(MqttForwarder(self.outbox_path, cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.topic_prefix,
                                                 self.station, self.stop_forwarding, cfg.mqtt.username,
                                                 cfg.mqtt.secret()))
        self.threads = [threading.Thread(target=self._capture, name="capture", daemon=True),
                        threading.Thread(target=self._inference, name="inference", daemon=True),
                        threading.Thread(target=self._publish, name="publish", daemon=True)]
        self.status_server: ThreadingHTTPServer | None = None
        self.started_at = time.time()
        self.latencies: list[float] = []  # capture -> commit, seconds (kept for benchmarks; bounded)

    # ------------------------------------------------------------------------------------------ stages

    def _set_state(self, state: str) -> None:
        self.source_state = state
        for s in SOURCE_STATES:
            m.SOURCE_STATE.labels(state=s).set(1 if s == state else 0)

    def _capture(self) -> None:
        backoff = Backoff(base=0.5, cap=30.0)
        opened = False
        last_frame = time.monotonic()
        stall = self.cfg.source.stall_timeout_s
        try:
            while not self.stop_capture.is_set():
                if not opened:
                    self._set_state("connecting")
                    try:
                        self.source.open()
                        opened, last_frame = True, time.monotonic()
                        self._set_state("running")
                        backoff.reset()
                    except SourceError as exc:
                        self._set_state("error")
                        log.warning("source %s: %s", self.source.name, exc)
                        self.stop_capture.wait(backoff.next())
                        continue
                try:
                    frame = self.source.read(timeout=0.5)
                except SourceFinished:
                    self._set_state("finished")
                    break
                except SourceError as exc:
                    log.warning("source %s: %s; reopening", self.source.name, exc)
                    self._reopen()
                    opened = False
                    self.stop_capture.wait(backoff.next())
                    continue
                if frame is None:
                    if time.monotonic() - last_frame > stall:
                        self._set_state("stalled")
                        self.counts["stalls"] += 1
                        log.warning("source %s: no frame for %.1f s; reopening", self.source.name, stall)
                        self._reopen()
                        opened = False
                    continue
                last_frame = time.monotonic()
                if self.source_state != "running":
                    self._set_state("running")
                self.counts["frames"] += 1
                m.FRAMES.inc()
                self._enqueue(frame)
        finally:
            with contextlib.suppress(Exception):
                self.source.close()
            self.capture_q.put(_END)

    def _reopen(self) -> None:
        with contextlib.suppress(Exception):
            self.source.close()
        self.counts["reopens"] += 1
        m.SOURCE_REOPENS.inc()

    def _enqueue(self, frame: Frame) -> None:
        if self.source.live:
            while True:
                try:
                    self.capture_q.put_nowait(frame)
                    return
                except queue.Full:
                    try:
                        self.capture_q.get_nowait()  # the freshest frame wins; count what was dropped
                        self.counts["dropped"] += 1
                        m.DROPPED.inc()
                    except queue.Empty:
                        pass
        while not self.stop_capture.is_set():
            try:
                self.capture_q.put(frame, timeout=0.2)
                return
            except queue.Full:
                continue
        self.capture_q.put(frame)  # stopping: the frame was taken, so it is still inspected

    def _inference(self) -> None:
        while True:
            frame = self.capture_q.get()
            if frame is _END:
                self.result_q.put(_END)
                return
            started = time.monotonic()
            try:
                image = decode_image(frame.data, frame.name) if frame.data is not None else as_rgb8(
                    frame.image, frame.name)
                result = self.model.inspect(image, name=frame.name)
                self.result_q.put(_Inspected(frame, image, result, None, started))
            except ImageError as exc:
                self.counts["corrupt"] += 1
                m.CORRUPT.inc()
                log.warning("skipped frame: %s", exc)
                self.result_q.put(_Inspected(frame, None, None, str(exc), started))

    def _publish(self) -> None:
        outbox = Outbox(self.outbox_path, self.enabled)
        keep_pass = self.cfg.images.keep_pass_fraction
        last_prune = time.monotonic()
        try:
            while True:
                item = self.result_q.get()
                if item is _END:
                    return
                if item.result is None:
                    self.source.finished(item.frame, ok=False)
                    continue
                t0 = time.monotonic()
                r, frame = item.result, item.frame
                timings = r.timings.model_dump() | {"capture_wait_ms": (item.started - frame.captured_mono) * 1e3}
                record = r.to_result(station=self.station, part_id=frame.part_id, source=frame.name,
                                     captured_at=frame.captured_at, timings=StageTimings(**timings))
                rid = str(record.inspection_id)
                original = overlay = None
                if r.verdict == "FAIL" or (keep_pass and self.rng.random() < keep_pass):
                    original, overlay = self.images.save(
                        rid, item.image, render_overlay(item.image, r, self.model.meta.good_scores.p50))
                record.timings.publish_ms = (time.monotonic() - t0) * 1e3
                outbox.add(rid, record.model_dump_json(), original, overlay)
                done = time.monotonic()
                self.latencies.append(done - frame.captured_mono)
                if len(self.latencies) > 100_000:
                    del self.latencies[:50_000]
                m.LATENCY.observe(done - frame.captured_mono)
                m.RESULTS.labels(verdict=r.verdict).inc()
                self.counts[r.verdict] += 1
                self.source.finished(frame, ok=True)
                for f in self.forwarders:
                    f.wake.set()
                self.images.sweep()
                if time.monotonic() - last_prune > 5:  # delivered everywhere: no longer needed
                    outbox.prune()
                    last_prune = time.monotonic()
        finally:
            outbox.close()
            self.finished.set()

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        for t in self.threads:
            t.start()
        for f in self.forwarders:
            f.start()
        if self.cfg.status.port:
            self._start_status_server()

    def stop(self) -> None:
        """Stop taking frames, finish the ones in flight, flush the outbox as far as the links allow."""
        self.stop_capture.set()
        if not self.finished.wait(timeout=30):
            log.error("inspection did not finish within 30 s")
        deadline = time.monotonic() + self.flush_timeout
        for f in self.forwarders:
            f.drain_deadline = deadline
        self.stop_forwarding.set()
        for f in self.forwarders:
            f.wake.set()
            f.join(timeout=self.flush_timeout + 5)
        if self.status_server:
            self.status_server.shutdown()
            self.status_server.server_close()

    def wait(self, poll: float = 0.5) -> None:
        """Block until a finite source is exhausted and everything committed (or stop() was called)."""
        while not self.finished.wait(poll):
            pass

    # --------------------------------------------------------------------------------------- status

    def status(self) -> dict:
        ob = Outbox(self.outbox_path, self.enabled)
        try:
            box = ob.stats()
        finally:
            ob.close()
        for dest, s in box.items():
            m.OUTBOX_DEPTH.labels(dest=dest).set(s["depth"])
            m.OUTBOX_AGE.labels(dest=dest).set(s["oldest_age_s"])
        return {
            "station": self.station.path, "uptime_s": round(time.time() - self.started_at, 1),
            "model": self.model.info.model_dump(),
            "source": {"name": self.source.name, "state": self.source_state, "live": self.source.live,
                       "frames": self.counts["frames"], "dropped": self.counts["dropped"],
                       "corrupt": self.counts["corrupt"], "reopens": self.counts["reopens"],
                       "stalls": self.counts["stalls"]},
            "results": {"PASS": self.counts["PASS"], "FAIL": self.counts["FAIL"]},
            "outbox": box,
            "links": {f.dest: {"state": f.state, "last_error": f.last_error} for f in self.forwarders},
        }

    def _start_status_server(self) -> None:
        runner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/status":
                    body, ctype = json.dumps(runner.status()).encode(), "application/json"
                elif self.path == "/metrics":
                    runner.status()  # refresh the outbox gauges
                    body, ctype = generate_latest(m.REGISTRY), "text/plain; version=0.0.4"
                elif self.path == "/healthz":
                    body, ctype = b'{"status": "ok"}', "application/json"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args):  # no request logging
                pass

        self.status_server = ThreadingHTTPServer((self.cfg.status.host, self.cfg.status.port), Handler)
        threading.Thread(target=self.status_server.serve_forever, name="status", daemon=True).start()
