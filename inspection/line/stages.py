"""The runner's three stages as objects, each run in its own thread by the supervisor:

    capture:   watchdog.next_frame() --(capture queue: wait, or drop oldest when live)-->
    inference: decode + model --(result queue)-->
    publish:   overlay + local images, then the result committed to the outbox (durable)

Every frame taken from the source ends one way: committed (PASS or FAIL), dropped (live, the freshest frame
won), corrupt (could not be decoded), or failed (a stage crashed on it, or the runner stopped on an error),
each counted in :class:`LineCounters`. A stage keeps what it holds (``in_flight``) so that the supervisor can
count it as failed when the stage crashes; after an unrecoverable error a stage drains its input queue
counting every frame as failed, so nothing taken is silently lost and the end marker still reaches publish.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inspection.errors import ImageError
from inspection.line import metrics as m
from inspection.line.assignment_models import Judges
from inspection.line.backoff import Backoff
from inspection.line.counters import LineCounters
from inspection.line.image_writer import ImageJob, write_images
from inspection.line.local_images import LocalImages, keeps_images
from inspection.line.outbox import Outbox
from inspection.model.tiling import FrameMappingError
from inspection.results.inspection import Inspection
from inspection.schema import InspectionResult, ShadowVerdict, StageTimings, StationContext
from inspection.sources.frame import Frame, FrameSource, SourceFinished, frame_rgb
from inspection.sources.watchdog import SourceWatchdog

log = logging.getLogger("inspection.line.stages")


class End:
    """The end marker: passed down the queues once the capture stage stops."""


END = End()


class FatalStageError(Exception):
    """A stage cannot go on (the outbox cannot be written): the runner stops inspecting with state error."""


def disk_full(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


@dataclass
class Inspected:
    frame: Frame
    image: np.ndarray | None  # None: the frame was corrupt
    result: Inspection | None
    started: float
    shadow: ShadowVerdict | None = None  # shadow mode: the candidate model's verdict on the same frame


@dataclass
class LineContext:
    """What the stages share: the counters, the source (told how each frame ended) and the abort flag."""

    counters: LineCounters
    source: FrameSource
    abort: threading.Event = field(default_factory=threading.Event)  # set on an unrecoverable error
    paused: threading.Event = field(default_factory=threading.Event)  # set while the outbox's disk is full

    def frame_failed(self, frame: Frame, why: str) -> None:
        self.counters.count_failed()
        log.error("frame %s failed: %s", frame.name, why)
        with contextlib.suppress(Exception):
            self.source.finished(frame, ok=False)


class Stage:
    """A stage's life under the supervisor: ``run`` until the end marker (may raise), ``abandon`` what it
    held when it crashed, ``drain_failed`` after an unrecoverable error, ``close`` once at the very end."""

    name = ""

    def __init__(self, ctx: LineContext):
        self.ctx = ctx
        self.in_flight: Frame | None = None
        self.done = 0  # items completed: progress, as the supervisor sees it

    def run(self) -> None:
        raise NotImplementedError

    def abandon(self, why: str) -> None:
        frame, self.in_flight = self.in_flight, None
        if frame is not None:
            self.ctx.frame_failed(frame, why)

    def drain_failed(self) -> None:
        pass

    def close(self) -> None:
        pass


class CaptureStage(Stage):
    name = "capture"

    def __init__(self, ctx: LineContext, watchdog: SourceWatchdog, out: queue.Queue, stop: threading.Event):
        super().__init__(ctx)
        self.watchdog, self.out, self.stop = watchdog, out, stop

    def run(self) -> None:
        while not self.stop.is_set():
            if self.ctx.paused.is_set() and not self.ctx.source.live:
                self.stop.wait(0.2)  # the outbox is full: files wait where they are
                continue
            try:
                frame = self.watchdog.next_frame()
            except SourceFinished:
                return
            if frame is None:
                continue
            self.ctx.counters.frames += 1
            if self.ctx.paused.is_set():  # the outbox is full: a live frame cannot be kept, count it dropped
                self.ctx.counters.dropped += 1
                m.DROPPED.inc()
                self.ctx.source.finished(frame, ok=False)
                continue
            self.in_flight = frame
            m.FRAMES.inc()
            self._enqueue(frame)
            self.in_flight = None
            self.done += 1

    def _enqueue(self, frame: Frame) -> None:
        if self.ctx.source.live:
            while True:
                try:
                    self.out.put_nowait(frame)
                    return
                except queue.Full:
                    try:
                        self.out.get_nowait()  # the freshest frame wins; count what was dropped
                        self.ctx.counters.dropped += 1
                        m.DROPPED.inc()
                    except queue.Empty:
                        pass
        while not self.stop.is_set():
            try:
                self.out.put(frame, timeout=0.2)
                return
            except queue.Full:
                continue
        self.out.put(frame)  # stopping: the frame was taken, so it is still inspected

    def close(self) -> None:
        self.watchdog.close()
        self.out.put(END)


class InferenceStage(Stage):
    name = "inference"

    def __init__(self, ctx: LineContext, judges: Judges, inbox: queue.Queue, out: queue.Queue):
        super().__init__(ctx)
        self.judges, self.inbox, self.out = judges, inbox, out
        self.last_mapping_error: str | None = None

    def run(self) -> None:
        while True:
            frame = self.inbox.get()
            if isinstance(frame, End):
                return
            if self.ctx.abort.is_set():
                self.ctx.frame_failed(frame, "the runner stopped on an error")
                continue
            self.in_flight = frame
            self.out.put(self._inspect(frame))
            self.done += 1

    def _inspect(self, frame: Frame) -> Inspected:
        started = time.monotonic()
        try:
            converted = frame_rgb(frame)
            image = converted.image
            judge = self.judges.for_recipe()  # read once: a model swap applies from the next frame on
            result, shadow = judge.inspect(image, frame.name, self.judges.cost, frame.captured_mono,
                                           self.ctx.counters.frames, self.judges.mapping)
            result.input_conversion = converted.conversion  # the model saw RGB: say what the frame was
        except ImageError as exc:
            self.ctx.counters.corrupt += 1
            m.CORRUPT.inc()
            log.warning("skipped frame: %s", exc)
            self.in_flight = None
            return Inspected(frame, None, None, started)
        except FrameMappingError as exc:  # the station's mapping does not fit this frame: counted, the line goes on
            self.ctx.counters.count_failed()
            self._mapping_error(frame, str(exc))
            self.in_flight = None
            return Inspected(frame, None, None, started)
        self.in_flight = None  # handed on: publish answers for it now
        return Inspected(frame, image, result, started, shadow)

    def _mapping_error(self, frame: Frame, message: str) -> None:
        """Logged as an error when it is new, then only at debug level (every frame of a camera would repeat it)."""
        if message != self.last_mapping_error:
            self.last_mapping_error = message
            log.error("frame %s not inspected: %s", frame.name, message)
        else:
            log.debug("frame %s not inspected: %s", frame.name, message)

    def drain_failed(self) -> None:
        while not isinstance(frame := self.inbox.get(), End):
            self.ctx.frame_failed(frame, "the runner stopped on an error")

    def close(self) -> None:
        self.out.put(END)


@dataclass
class PublishSettings:
    outbox_path: Path
    enabled: tuple[str, ...]
    station: StationContext
    keep_pass_fraction: float
    overlay_reference: float  # the model's good-score median: the overlay's colour scale
    keep_near_threshold: float = 0.0  # results this close to the threshold (relative) keep their images
    latencies: list[float] = field(default_factory=list)  # capture -> commit, seconds (bounded; benchmarks)


@dataclass
class PublishHooks:
    """How publish tells the runner what happened."""

    on_commit: Callable[[], None]  # a result is durable: wake the forwarders
    on_closed: Callable[[], None]  # publish has ended: everything taken is committed or counted
    on_disk_full: Callable[[str], None]  # the outbox's disk is full: pause, report
    on_space: Callable[[], None]  # space is back: resume
    stopping: threading.Event  # the runner is stopping: give up waiting for space
    on_record: Callable[[Any], None] | None = None  # the committed record (Sparkplug B DDATA)

    def committed(self, record: Any) -> None:
        if self.on_record is None:
            return
        try:
            self.on_record(record)
        except Exception:  # a live feed must never stop the durable path
            log.exception("on_record hook failed")


class PublishStage(Stage):
    name = "publish"

    def __init__(self, ctx: LineContext, settings: PublishSettings, inbox: queue.Queue, images: LocalImages,
                 hooks: PublishHooks, rng: np.random.Generator):
        super().__init__(ctx)
        self.s, self.inbox, self.images, self.rng, self.hooks = settings, inbox, images, rng, hooks
        self.outbox: Outbox | None = None
        self.last_prune = time.monotonic()

    def _open(self) -> Outbox:
        if self.outbox is None:
            try:
                self.outbox = Outbox(self.s.outbox_path, self.s.enabled)
            except sqlite3.Error as exc:
                raise FatalStageError(f"outbox {self.s.outbox_path} cannot be opened: {exc}") from exc
        return self.outbox

    def run(self) -> None:
        outbox = self._open()
        while True:
            item = self.inbox.get()
            if isinstance(item, End):
                return
            if item.result is None or item.image is None:  # corrupt: counted by inference
                self.ctx.source.finished(item.frame, ok=False)
                continue
            self.in_flight = item.frame
            record, _job = self._commit(outbox, item, item.result, item.image)
            self.hooks.committed(record)
            self.in_flight = None
            self.done += 1
            self.ctx.source.finished(item.frame, ok=True)
            self.hooks.on_commit()
            self.images.sweep()
            if time.monotonic() - self.last_prune > 5:  # delivered everywhere: no longer needed
                self._prune(outbox)

    def _commit(self, outbox: Outbox, item: Inspected, r: Inspection, image: np.ndarray,
                defer_images: bool = False) -> tuple[InspectionResult, ImageJob | None]:
        """Commit the record (durable when this returns); the images it keeps are written first, or, with
        ``defer_images``, only named in the outbox and returned as a job for the :class:`ImageWriter` (the
        caller submits it once the result is announced). The caller passes the record to ``hooks.committed``."""
        t0 = time.monotonic()
        frame = item.frame
        timings = r.timings.model_dump() | {"capture_wait_ms": (item.started - frame.captured_mono) * 1e3}
        record = r.to_result(station=self.s.station, part_id=frame.part_id, source=frame.name,
                             captured_at=frame.captured_at, timings=StageTimings(**timings), shadow=item.shadow,
                             **self._context(item))
        rid = str(record.inspection_id)
        original = overlay = None
        job = None
        if keeps_images(r.verdict, r.score, r.threshold, self.s.keep_near_threshold, float(self.rng.random()),
                        self.s.keep_pass_fraction):
            paths = self.images.paths(rid)
            pictures = ImageJob(rid, paths, image, r, self.s.overlay_reference)
            if defer_images:
                original, overlay = str(paths.original), str(paths.overlay)
                job = pictures
                self._images_planned(rid, True)  # pending before the row exists: no forwarder sees it without
            elif write_images(self.images, pictures):
                original, overlay = str(paths.original), str(paths.overlay)
        record.timings.publish_ms = (time.monotonic() - t0) * 1e3
        try:
            self._add(outbox, rid, record.model_dump_json(), original, overlay)
        except BaseException:
            if job is not None:
                self._images_planned(rid, False)
            raise
        done = time.monotonic()
        self.s.latencies.append(done - frame.captured_mono)
        if len(self.s.latencies) > 100_000:
            del self.s.latencies[:50_000]
        m.LATENCY.observe(done - frame.captured_mono)
        m.RESULTS.labels(verdict=r.verdict).inc()
        if r.verdict == "PASS":
            self.ctx.counters.passed += 1
        else:
            self.ctx.counters.rejected_parts += 1
        return record, job

    def _images_planned(self, inspection_id: str, planned: bool) -> None:
        """Deferred images of ``inspection_id`` are about to be named in the outbox (``planned``), or will not
        be after all (the commit failed): trigger mode marks them pending for the forwarder."""

    def _context(self, item: Inspected) -> dict:
        """More fields of the record (trigger mode: the trigger's sequence number and the recipe)."""
        return {}

    def _prune(self, outbox: Outbox) -> None:
        self.last_prune = time.monotonic()
        try:
            outbox.prune()
        except sqlite3.Error as exc:  # a full disk: pruning waits for the next round, the commit decides
            log.warning("outbox prune failed: %s", exc)

    def _add(self, outbox: Outbox, rid: str, record: str, original: str | None, overlay: str | None) -> None:
        """Commit, waiting while the disk is full (the runner pauses capture and says so); a read-only file or
        an I/O error, or a stop while the disk is full, is fatal."""
        backoff, full = Backoff(0.2, 5.0), False
        while True:
            try:
                outbox.add(rid, record, original, overlay)
                break
            except sqlite3.Error as exc:
                if not disk_full(exc):
                    raise FatalStageError(f"outbox {self.s.outbox_path} cannot be written: {exc}") from exc
                if self.hooks.stopping.is_set():
                    raise FatalStageError(f"outbox disk full at stop ({self.s.outbox_path}: {exc})") from exc
                if not full:
                    full = True
                    self.hooks.on_disk_full(f"outbox disk full ({self.s.outbox_path}: {exc})")
                self.hooks.stopping.wait(backoff.next())
        if full:
            self.hooks.on_space()

    def drain_failed(self) -> None:
        while not isinstance(item := self.inbox.get(), End):
            if item.result is None:
                self.ctx.source.finished(item.frame, ok=False)  # corrupt: already counted
            else:
                self.ctx.frame_failed(item.frame, "the runner stopped on an error")

    def close(self) -> None:
        try:
            if self.outbox is not None:
                with contextlib.suppress(sqlite3.Error):
                    self.outbox.close()
        finally:
            self.hooks.on_closed()
