"""The camera watchdog: opens the source, reopens it with backoff when it fails or stalls, and says which
state it is in (connecting / running / stalled / error / finished). Capture asks it for the next frame and
never sees an open, a reopen or a stall (as Frigate separates capture from its watchdog)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

from inspection.line.backoff import Backoff
from inspection.sources.frame import Frame, FrameSource, SourceError, SourceFinished

log = logging.getLogger("inspection.sources.watchdog")
SourceState = Literal["connecting", "running", "stalled", "error", "finished"]
SOURCE_STATES: tuple[SourceState, ...] = ("connecting", "running", "stalled", "error", "finished")


class SourceWatchdog:
    def __init__(self, source: FrameSource, stall_timeout_s: float, stop: threading.Event,
                 on_state: Callable[[SourceState], None] | None = None, on_reopen: Callable[[], None] | None = None,
                 backoff: Backoff | None = None, poll_s: float = 0.5):
        self.source, self.stall_timeout_s, self.stop, self.poll_s = source, stall_timeout_s, stop, poll_s
        self.on_state, self.on_reopen = on_state, on_reopen
        self.backoff = backoff or Backoff(base=0.5, cap=30.0)
        self.state: SourceState = "connecting"
        self.opened = False
        self.last_frame = time.monotonic()
        self.reopens = 0
        self.stalls = 0
        self.open_failures = 0

    def _set_state(self, state: SourceState) -> None:
        self.state = state
        if self.on_state:
            self.on_state(state)

    def _open(self) -> bool:
        self._set_state("connecting")
        try:
            self.source.open()
        except SourceError as exc:
            self._set_state("error")
            self.open_failures += 1
            log.warning("source %s: %s", self.source.name, exc)
            self.stop.wait(self.backoff.next())
            return False
        self.opened, self.last_frame = True, time.monotonic()
        self._set_state("running")
        self.backoff.reset()
        return True

    def _reopen(self) -> None:
        self.close()
        self.opened = False
        self.reopens += 1
        if self.on_reopen:
            self.on_reopen()

    def next_frame(self) -> Frame | None:
        """The next frame, or None when none came this time (the caller checks its stop flag and asks again).
        Raises SourceFinished when a finite source has no more frames."""
        if not self.opened and not self._open():
            return None
        try:
            frame = self.source.read(timeout=self.poll_s)
        except SourceFinished:
            self._set_state("finished")
            raise
        except SourceError as exc:
            log.warning("source %s: %s; reopening", self.source.name, exc)
            self._reopen()
            self.stop.wait(self.backoff.next())
            return None
        if frame is None:
            if time.monotonic() - self.last_frame > self.stall_timeout_s:
                self._set_state("stalled")
                self.stalls += 1
                log.warning("source %s: no frame for %.1f s; reopening", self.source.name, self.stall_timeout_s)
                self._reopen()
            return None
        self.last_frame = time.monotonic()
        if self.state != "running":
            self._set_state("running")
        return frame

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.source.close()
