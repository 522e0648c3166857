"""The line runner: one inspection station on the edge box.

    source -> watchdog -> capture --(queue: wait, or drop oldest when live)--> inference --> publish -> outbox
    forwarders: outbox --> results service (HTTP) and MQTT broker, each with retries

The three stages run under a supervisor (restart with backoff after an unexpected exception; state ``error``
when a stage cannot recover, e.g. the outbox cannot be written). The watchdog reopens a failed or stalled
source with backoff. On stop (SIGINT/SIGTERM), frames already taken are inspected and committed, then the
forwarders deliver what they can within the flush timeout. Whatever is not delivered stays in the outbox.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np

from inspection.line import metrics as m
from inspection.line.assignment import make_poller
from inspection.line.assignment_models import FREE_RUNNING, Judges
from inspection.line.config import StationConfig
from inspection.line.counters import LineCounters
from inspection.line.drift import DriftMonitor
from inspection.line.forwarders import Forwarder, HttpForwarder, MqttForwarder
from inspection.line.http_trigger import handle_trigger
from inspection.line.image_writer import PendingImages
from inspection.line.local_images import LocalImages
from inspection.line.outbox import Outbox
from inspection.line.sparkplug import make_sparkplug
from inspection.line.stages import (
    END,
    CaptureStage,
    InferenceStage,
    LineContext,
    PublishHooks,
    PublishSettings,
    PublishStage,
)
from inspection.line.status import (
    RUNNER_STATES,
    LineStatus,
    LinkStatus,
    OutboxStatus,
    RunnerState,
    SourceStatus,
    StageStatus,
    StatusServer,
    export_drift,
)
from inspection.line.supervisor import Supervisor
from inspection.line.trigger_station import TriggerMode, build_trigger_mode
from inspection.model.runtime import InspectionModel
from inspection.model.shipped import default_model_path
from inspection.schema import StationContext
from inspection.sources.factory import make_source
from inspection.sources.frame import FrameSource
from inspection.sources.watchdog import SOURCE_STATES, SourceState, SourceWatchdog

log = logging.getLogger("inspection.line.runner")


def _export_source_state(state: SourceState) -> None:
    for s in SOURCE_STATES:
        m.SOURCE_STATE.labels(state=s).set(1 if s == state else 0)


class LineRunner:
    def __init__(self, cfg: StationConfig, flush_timeout: float = 10.0, source: FrameSource | None = None,
                 model: InspectionModel | None = None):
        self.cfg = cfg
        self.station = StationContext(**cfg.station.model_dump())  # the plain context, without config strictness
        self.model = model or InspectionModel.load(cfg.model.path or default_model_path(), threads=cfg.model.threads)
        self.source = source or make_source(cfg.source)
        self.flush_timeout = flush_timeout
        self.enabled = tuple(d for d, on in (("http", cfg.service.url), ("mqtt", cfg.mqtt.host)) if on)
        self.outbox_path = Path(cfg.outbox)
        Outbox(self.outbox_path, self.enabled).close()  # create, and mark switched-off destinations done
        self.stop_capture = threading.Event()
        self.stop_forwarding = threading.Event()
        self.finished = threading.Event()  # publish has ended: everything taken is committed or counted
        self.fatal = threading.Event()  # stopped on an unrecoverable error (not a full disk: that resumes)
        self.counters = LineCounters()
        self.drift = self._drift_for(self.model)
        self._drift_sent = 0.0
        self.trigger_mode: TriggerMode | None = None
        self.watchdog = SourceWatchdog(self.source, cfg.source.stall_timeout_s, self.stop_capture,
                                       on_state=_export_source_state, on_reopen=m.SOURCE_REOPENS.inc)
        self.pending_images = PendingImages()  # trigger mode: committed results whose images are being written
        self.forwarders = self._make_forwarders()
        self.supervisor = self._make_stages()
        self.status_server: StatusServer | None = None
        self.started_at = time.time()
        self._state: RunnerState = "starting"
        self.error: str | None = None
        self._state_lock = threading.Lock()
        self._set_state("starting")

    def _make_stages(self) -> Supervisor:
        cfg = self.cfg
        self.ctx = LineContext(self.counters, self.source)
        capture_q: queue.Queue = queue.Queue(maxsize=cfg.source.queue_size)
        result_q: queue.Queue = queue.Queue(maxsize=64)
        self.publish_settings = PublishSettings(self.outbox_path, self.enabled, self.station,
                                                cfg.images.keep_pass_fraction, self.model.meta.good_scores.p50,
                                                keep_near_threshold=cfg.images.keep_near_threshold)
        self.latencies = self.publish_settings.latencies  # capture -> commit, seconds (for benchmarks)
        images = LocalImages(cfg.images.dir, cfg.images.max_age_days, int(cfg.images.max_gb * 1024**3))
        self.sparkplug = make_sparkplug(cfg, self.station)
        hooks = PublishHooks(self._wake_forwarders, self.finished.set, self._disk_full, self._space_back,
                             self.stop_capture, self._on_record)
        if cfg.plant.enabled:
            self.trigger_mode = build_trigger_mode(cfg, self.ctx, self.model)
            self.judges = self.trigger_mode.judges
            stages = self.trigger_mode.stages(self.ctx, self.watchdog, self.stop_capture, self.publish_settings,
                                              images, hooks, np.random.default_rng(), self.pending_images)
        else:
            self.judges = Judges({FREE_RUNNING: self.model}, cfg.frame_mapping)
            stages = [CaptureStage(self.ctx, self.watchdog, capture_q, self.stop_capture),
                      InferenceStage(self.ctx, self.judges, capture_q, result_q),
                      PublishStage(self.ctx, self.publish_settings, result_q, images, hooks, np.random.default_rng())]
        self.assignment = make_poller(cfg, self.station.path, self.judges, self._active_recipe, self._swapped)
        if self.assignment:
            self.assignment.restore()  # the last assignment from the cache: run it from the first frame
        return Supervisor(stages, on_fatal=self.fail)

    def _active_recipe(self) -> int:
        return self.trigger_mode.plant.core.snapshot().recipe if self.trigger_mode else FREE_RUNNING

    def running_model(self) -> InspectionModel:
        """The model judging now (trigger mode: the active recipe's)."""
        return self.judges.for_recipe(self._active_recipe()).live

    def _swapped(self) -> None:
        """A new model judges: the overlay's colour scale follows it."""
        self.publish_settings.overlay_reference = self.running_model().meta.good_scores.p50

    def _drift_for(self, model: InspectionModel) -> DriftMonitor:
        self._drift_sha = model.info.sha256
        return DriftMonitor(model.meta.good_scores, model.meta.threshold, self.cfg.drift.window_s,
                            self.cfg.drift.min_count)

    def _make_forwarders(self) -> list[Forwarder]:
        cfg = self.cfg
        forwarders: list[Forwarder] = []
        if cfg.service.url:
            forwarders.append(HttpForwarder(self.outbox_path, cfg.service.url, cfg.service.secret(),
                                            self.stop_forwarding, batch=cfg.service.batch,
                                            pending_images=self.pending_images))
        if cfg.mqtt.host:
            forwarders.append(MqttForwarder(self.outbox_path, cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.topic_prefix,
                                            self.station, self.stop_forwarding, cfg.mqtt.username,
                                            cfg.mqtt.secret()))
        return forwarders

    def _on_record(self, record) -> None:
        """A committed record: to Sparkplug B; an inspection by the model judging now into the drift window (a
        new model, swapped in or another recipe's, starts a new window; trigger errors have no score), the
        drift figures to MQTT now and then."""
        if self.sparkplug:
            self.sparkplug.on_record(record)
        running = self.running_model()
        if running.info.sha256 != self._drift_sha:
            self.drift = self._drift_for(running)
        model = getattr(record, "model", None)
        if model is None or model.sha256 != self._drift_sha:
            return
        self.drift.add(record.verdict, record.score)
        if time.monotonic() - self._drift_sent >= self.cfg.drift.publish_s:
            self._drift_sent = time.monotonic()
            payload = self.drift.status().model_dump_json()
            for f in self.forwarders:
                if isinstance(f, MqttForwarder):
                    f.set_drift(payload)

    def _wake_forwarders(self) -> None:
        for f in self.forwarders:
            f.wake.set()

    # ------------------------------------------------------------------------------------------ state

    def _set_state(self, state: RunnerState) -> None:
        self._state = state
        for s in RUNNER_STATES:
            m.STATE.labels(state=s).set(1 if s == state else 0)

    @property
    def state(self) -> RunnerState:
        self.check()
        return self._state

    @property
    def source_state(self) -> SourceState:
        return self.watchdog.state

    def fail(self, reason: str) -> None:
        """Stop inspecting for good: state error with the reason; frames still queued are counted failed."""
        with self._state_lock:
            if self.fatal.is_set():
                return
            self.fatal.set()
            self.error = reason
            self._set_state("error")
        log.error("the line stops on an error: %s", reason)
        self.ctx.abort.set()
        if self.trigger_mode:
            self.trigger_mode.set_fault(reason)
        self.stop_capture.set()
        self._announce(f"error: {reason}")

    def _disk_full(self, reason: str) -> None:
        """The outbox's disk is full: stop taking frames (live ones are dropped and counted), say so, wait."""
        with self._state_lock:
            if self.fatal.is_set():
                return
            self.ctx.paused.set()
            self.error = reason
            self._set_state("error")
        m.OUTBOX_FULL.set(1)
        if self.trigger_mode:
            self.trigger_mode.set_fault(reason)
        log.error("%s: inspection paused until there is space again", reason)
        self._announce("error: outbox disk full")

    def _space_back(self) -> None:
        with self._state_lock:
            if self.fatal.is_set():
                return
            self.ctx.paused.clear()
            self.error = None
            self._set_state("stopping" if self.stop_capture.is_set() else "running")
        m.OUTBOX_FULL.set(0)
        if self.trigger_mode:
            self.trigger_mode.set_fault(None)
        log.warning("the outbox has space again: inspection resumes")
        self._announce("online")

    def _announce(self, status: str) -> None:
        if self.sparkplug:
            self.sparkplug.set_state(status)
        for f in self.forwarders:
            if isinstance(f, MqttForwarder):
                f.set_status(status)

    def check(self) -> None:
        """Never a dead thread while the state says running: a stage or forwarder thread that ended
        unexpectedly puts the runner in error. A finished source and everything committed: finished."""
        dead = [f"stage {name}" for name in self.supervisor.dead()]
        if not self.stop_forwarding.is_set():
            dead += [f"forwarder {f.dest}" for f in self.forwarders if f.ident is not None and not f.is_alive()]
        if dead:
            self.fail("thread ended unexpectedly: " + ", ".join(dead))
        with self._state_lock:
            if self._state == "running" and self.finished.is_set():
                self._set_state("finished")

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._set_state("running")
        self.supervisor.start()
        for f in self.forwarders:
            f.start()
        if self.sparkplug:
            self.sparkplug.start()
        if self.assignment:
            self.assignment.start()
        if self.trigger_mode:
            try:
                self.trigger_mode.plant.start(ready=False)  # Ready once the camera gives frames
            except Exception as exc:
                self.fail(f"the plant servers could not start: {type(exc).__name__}: {exc}")
                raise
        if self.cfg.status.port:
            post = None
            if self.trigger_mode:
                core = self.trigger_mode.plant.core
                post = partial(handle_trigger, core)
            self.status_server = StatusServer(self.cfg.status.host, self.cfg.status.port, self.snapshot, post)
            self.status_server.start()

    def stop(self) -> None:
        """Stop taking frames, finish the ones in flight, flush the outbox as far as the links allow."""
        with self._state_lock:
            if self._state != "error":
                self._set_state("stopping")
        if self.trigger_mode:  # the inspection in progress is finished and committed first
            self.trigger_mode.plant.stop()
        self.stop_capture.set()
        if self.trigger_mode:
            self.trigger_mode.results.put(END)
        if not self.finished.wait(timeout=30):
            log.error("inspection did not finish within 30 s")
        deadline = time.monotonic() + self.flush_timeout
        for f in self.forwarders:
            f.drain_deadline = deadline
        self.stop_forwarding.set()
        for f in self.forwarders:
            f.wake.set()
            f.join(timeout=self.flush_timeout + 5)
        if self.sparkplug:
            self.sparkplug.stop()
        if self.assignment:
            self.assignment.stop()
        if self.status_server:
            self.status_server.stop()
        with self._state_lock:
            if self._state != "error":
                self._set_state("stopped")

    def wait(self, poll: float = 0.5) -> None:
        """Block until a finite source is exhausted and everything committed (or counted failed)."""
        while not self.finished.wait(poll):
            self.check()

    # --------------------------------------------------------------------------------------- status

    def _outbox_status(self) -> tuple[dict[str, OutboxStatus], str | None]:
        try:
            ob = Outbox(self.outbox_path, self.enabled, prepare=False)
            try:
                stats = ob.stats()
            finally:
                ob.close()
        except (sqlite3.Error, OSError) as exc:
            return {}, f"{type(exc).__name__}: {exc}"
        for dest, s in stats.items():
            m.OUTBOX_DEPTH.labels(dest=dest).set(s.depth)
            m.OUTBOX_AGE.labels(dest=dest).set(s.oldest_age_s)
        return {d: OutboxStatus(**asdict(s)) for d, s in stats.items()}, None

    def snapshot(self) -> LineStatus:
        state = self.state
        c, w = self.counters, self.watchdog
        outbox, outbox_error = self._outbox_status()
        drift = self.drift.status()
        export_drift(drift)
        stages = {name: StageStatus(state=h.state, alive=self.supervisor.threads[name].is_alive(),
                                    crashes=h.crashes, restarts=h.restarts, last_error=h.last_error)
                  for name, h in self.supervisor.health.items()}
        return LineStatus(
            station=self.station.path, state=state, error=self.error,
            uptime_s=round(time.time() - self.started_at, 1), model=self.running_model().info.model_dump(),
            source=SourceStatus(name=self.source.name, state=w.state, live=self.source.live, frames=c.frames,
                                dropped=c.dropped, corrupt=c.corrupt, failed=c.failed, reopens=w.reopens,
                                stalls=w.stalls),
            stages=stages, results={"PASS": c.passed, "FAIL": c.rejected_parts}, outbox=outbox,
            outbox_error=outbox_error,
            links={f.dest: LinkStatus(state=f.state, last_error=f.last_error) for f in self.forwarders},
            trigger=self.trigger_mode.status() if self.trigger_mode else None,
            assignment=self.assignment.status() if self.assignment else None, drift=drift)

    def status(self) -> dict:
        return self.snapshot().model_dump()
