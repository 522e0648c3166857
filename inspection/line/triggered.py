"""Trigger mode of the line runner: the PLC handshake decides when a part is inspected.

    source -> watchdog -> capture (keeps grabbing) --> FreshestFrame (one frame: the newest wins, the others
                                                       are counted dropped)
    PLC trigger (Modbus / OPC UA / POST /trigger) -> handshake worker -> TriggeredInspector:
        the freshest frame captured after the trigger -> the recipe's model --(result queue)--> publish
        (committed to the outbox with the trigger's sequence number and recipe) -> the handshake answers

Every trigger is answered once: a verdict whose record is durable in the outbox before Result Ready, or an
error result (BUSY, CAMERA, INSPECTION_FAILED) that is committed to the outbox as well
(:class:`TriggerErrorItem`). A full outbox disk or an unrecoverable error puts the handshake in state Error
(triggers refused with NOT_READY) until space is back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from inspection.errors import ImageError
from inspection.line import metrics as m
from inspection.line.assignment_models import Judges
from inspection.line.stages import CaptureStage, Inspected, LineContext
from inspection.plant.records import CameraError, Trigger, TriggerResult
from inspection.sources.frame import Frame, SourceFinished, frame_rgb
from inspection.sources.watchdog import SourceWatchdog

log = logging.getLogger("inspection.line.triggered")
COMMIT_TIMEOUT_S = 30.0


class FreshestFrame:
    """The newest frame the capture stage took, waiting for a trigger; thread-safe."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._closed = False
        self.wanted = threading.Event()  # a trigger waits for a frame (a software-triggered camera grabs one)

    def put(self, frame: Frame) -> Frame | None:
        """Keep ``frame``; returns the one it supersedes (dropped: no trigger took it)."""
        with self._cond:
            old, self._frame = self._frame, frame
            self.wanted.clear()
            self._cond.notify_all()
            return old

    def take_after(self, when: datetime, timeout: float) -> Frame:
        """The first frame captured at or after ``when`` (taken: no other trigger gets it); CameraError when
        none comes within ``timeout`` seconds or capture has stopped."""
        with self._cond:
            if self._frame is None or self._frame.captured_at < when:
                self.wanted.set()
            ok = self._cond.wait_for(lambda: self._closed or (self._frame is not None
                                                              and self._frame.captured_at >= when), timeout)
            if self._closed:
                raise CameraError("capture has stopped")
            if not ok or self._frame is None:
                raise CameraError(f"no frame captured within {timeout:g} s after the trigger")
            frame, self._frame = self._frame, None
            return frame

    def close(self) -> Frame | None:
        """Capture has stopped: wake waiting triggers; returns the frame nobody took."""
        with self._cond:
            self._closed = True
            frame, self._frame = self._frame, None
            self._cond.notify_all()
            return frame


class TriggeredCaptureStage(CaptureStage):
    """Capture that keeps grabbing into :class:`FreshestFrame` instead of the inference queue. A camera with a
    software trigger (``source.software_trigger``, e.g. GigE with ``trigger = "software"``: each read fires
    one) is read only when a trigger wants a frame, after one first frame that shows the camera works."""

    def __init__(self, ctx: LineContext, watchdog: SourceWatchdog, frames: FreshestFrame, stop: threading.Event,
                 on_first_frame: Callable[[], None]):
        super().__init__(ctx, watchdog, queue.Queue(maxsize=1), stop)
        self.frames, self.on_first_frame = frames, on_first_frame
        self.first = True
        self.on_demand = bool(getattr(ctx.source, "software_trigger", False))

    def run(self) -> None:
        if not self.on_demand:
            super().run()
            return
        while not self.stop.is_set():
            if not self.first and not self.frames.wanted.wait(0.2):
                continue
            self.watchdog.last_frame = time.monotonic()  # idle between triggers is not a stall
            try:
                frame = self.watchdog.next_frame()  # fires the camera's software trigger
            except SourceFinished:
                return
            if frame is None:
                continue
            self.ctx.counters.frames += 1
            m.FRAMES.inc()
            self._enqueue(frame)
            self.done += 1

    def _enqueue(self, frame: Frame) -> None:
        old = self.frames.put(frame)
        if self.first:  # the camera gives frames: the handshake leaves preoperational and says Ready
            self.first = False
            self.on_first_frame()
        if old is not None:
            self._dropped(old)

    def _dropped(self, frame: Frame) -> None:
        self.ctx.counters.dropped += 1
        m.DROPPED.inc()
        self.ctx.source.finished(frame, ok=False)

    def close(self) -> None:
        self.watchdog.close()
        left = self.frames.close()
        if left is not None:
            self._dropped(left)


@dataclass
class TriggerTag:
    """What a committed record carries of the trigger it answers."""

    sequence: int
    part_id: str
    recipe: str


@dataclass
class TriggeredItem(Inspected):
    """An inspected frame for publish, with its trigger; ``committed`` is set once publish is done with it
    (``error`` None: the record is durable in the outbox)."""

    trigger: TriggerTag | None = None
    committed: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


@dataclass
class TriggerErrorItem:
    """An error result for publish to commit (it has no frame)."""

    result: TriggerResult
    recipe: str


class TriggeredInspector:
    """The handshake's inspect callable: the freshest frame after the trigger, the recipe's model, the record
    committed to the outbox (through the publish stage) before the answer."""

    def __init__(self, ctx: LineContext, frames: FreshestFrame, judges: Judges, recipe_names: dict[int, str],
                 results: queue.Queue, frame_timeout_s: float):
        self.ctx, self.frames, self.judges, self.recipe_names = ctx, frames, judges, recipe_names
        self.results, self.frame_timeout_s = results, frame_timeout_s

    def __call__(self, trig: Trigger) -> TriggerResult:
        if self.ctx.abort.is_set() or self.ctx.paused.is_set():
            raise CameraError("the station is not taking frames (outbox disk full or stopped on an error)")
        frame = self.frames.take_after(trig.triggered_at, self.frame_timeout_s)
        judge = self.judges.for_recipe(trig.recipe)  # read once: a model swap applies from the next trigger on
        model = judge.live
        started = time.monotonic()
        try:
            converted = frame_rgb(frame)
            image = converted.image
            inspection, shadow = judge.inspect(image, trig.part_id or frame.name, self.judges.cost,
                                               time.monotonic(), trig.sequence, self.judges.mapping)
            inspection.input_conversion = converted.conversion  # the model saw RGB: say what the frame was
        except ImageError as exc:
            self.ctx.counters.corrupt += 1
            m.CORRUPT.inc()
            self.ctx.source.finished(frame, ok=False)
            raise CameraError(f"corrupt frame: {exc}") from exc
        except Exception as exc:
            self.ctx.frame_failed(frame, f"inspection raised {type(exc).__name__}: {exc}")
            raise
        if trig.part_id:
            frame.part_id = trig.part_id
        item = TriggeredItem(frame, image, inspection, started, shadow,
                             trigger=TriggerTag(trig.sequence, trig.part_id, self.recipe_names[trig.recipe]))
        self.results.put(item)
        if not item.committed.wait(COMMIT_TIMEOUT_S):
            raise RuntimeError(f"the result was not committed to the outbox within {COMMIT_TIMEOUT_S:g} s")
        if item.error is not None:
            raise RuntimeError(f"the result could not be committed: {item.error}")
        return TriggerResult.inspected(trig, inspection.verdict == "PASS", inspection.score, inspection.threshold,
                                       f"{model.info.name} {model.info.version}")
