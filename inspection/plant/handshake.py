"""The PLC handshake core, free of any protocol: triggers in, one result per trigger out, in order, buffered
until acknowledged.

- Every trigger gets the next sequence number (1, 2, ...) and is answered exactly once: by a result (a
  verdict, or an error result with its code) presented in sequence order, or, when it cannot be buffered, by
  an immediate refusal (:class:`TriggerAnswer` with ``BUFFER_FULL``, ``NOT_READY`` or ``BAD_PART_ID``).
- One inspection runs at a time on the core's worker thread, through the injected ``inspect`` callable. A
  trigger that arrives while one runs is answered with an error result ``BUSY`` (never silence).
- Results wait in a buffer of ``depth`` slots (default 8; the inspection in progress holds one) until the
  PLC acknowledges the presented (oldest) one. A full buffer sets Busy and refuses triggers; nothing is
  overwritten. An acknowledge for a number not in the buffer is ``UNKNOWN_SEQUENCE``, for a buffered result
  that is not the presented one ``ACK_OUT_OF_ORDER``; neither changes anything.
- A recipe change applies from the next trigger on; a trigger keeps the recipe it was taken with.

Thread-safe: protocol servers call :meth:`trigger`, :meth:`acknowledge`, :meth:`select_recipe` and
:meth:`snapshot` from their own threads or event loops; listeners are called after every change.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from inspection.plant.records import (
    PART_ID_MAX,
    CameraError,
    Counters,
    ErrorCode,
    HandshakeError,
    HandshakeSnapshot,
    InspectFn,
    StationState,
    Trigger,
    TriggerAnswer,
    TriggerResult,
)

log = logging.getLogger(__name__)
DEFAULT_DEPTH = 8


@dataclass
class _Slot:
    trigger: Trigger
    result: TriggerResult | None = None


class _Tally:
    """Counters under the core's lock."""

    def __init__(self) -> None:
        self.triggers = self.ok = self.ng = self.errors = self.refused = 0
        self.missed = self.buffer_full = self.ack_errors = 0
        self.t_min = self.t_max = self.t_sum = 0.0
        self.t_count = 0

    def result(self, r: TriggerResult, timed: bool) -> None:
        if r.verdict == "OK":
            self.ok += 1
        elif r.verdict == "NG":
            self.ng += 1
        else:
            self.errors += 1
            self.missed += 1
        if timed:
            self.t_min = r.processing_ms if not self.t_count else min(self.t_min, r.processing_ms)
            self.t_max = max(self.t_max, r.processing_ms)
            self.t_sum += r.processing_ms
            self.t_count += 1

    def frozen(self) -> Counters:
        return Counters(triggers=self.triggers, ok=self.ok, ng=self.ng, errors=self.errors, refused=self.refused,
                        missed=self.missed, buffer_full=self.buffer_full, ack_errors=self.ack_errors,
                        processing_ms_min=self.t_min, processing_ms_max=self.t_max,
                        processing_ms_mean=self.t_sum / self.t_count if self.t_count else 0.0)


def _part_id_ok(part_id: str) -> bool:
    return len(part_id) <= PART_ID_MAX and all(32 <= ord(c) < 127 for c in part_id)


class PlcHandshake:
    """The trigger/result/acknowledge handshake of one station. ``start()`` makes it ready."""

    def __init__(self, inspect: InspectFn, depth: int = DEFAULT_DEPTH, recipes: Mapping[int, str] | None = None,
                 recipe: int | None = None, on_error_result: Callable[[TriggerResult], None] | None = None):
        if depth < 1:
            raise ValueError(f"buffer depth {depth}: must be at least 1")
        self._inspect = inspect
        # called with every error result (BUSY, CAMERA, INSPECTION_FAILED) outside the lock: the line runner
        # commits it to its outbox (CAMERA and INSPECTION_FAILED before they are presented)
        self._on_error_result = on_error_result
        self._done: dict[int, TriggerResult] = {}  # the last results by sequence number (result_of)
        self.depth = depth
        self.recipes = dict(recipes or {1: "default"})
        self._recipe = recipe if recipe is not None else min(self.recipes)
        if self._recipe not in self.recipes:
            raise ValueError(f"recipe {self._recipe} is not one of {sorted(self.recipes)}")
        self._cond = threading.Condition()
        self._slots: deque[_Slot] = deque()
        self._next: Trigger | None = None  # accepted, waiting for the worker
        self._running: Trigger | None = None  # being inspected
        self._seq = 0
        self._tally = _Tally()
        self._last: TriggerResult | None = None
        self._last_trigger: TriggerAnswer | None = None
        self._last_error, self._last_error_message = ErrorCode.NONE, ""
        self._fault: str | None = None
        self._started = False
        self._stopping = False
        self._version = 0
        self._listeners: list[Callable[[], None]] = []
        self._worker: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        with self._cond:
            if self._started:
                return
            self._started, self._stopping = True, False
            self._worker = threading.Thread(target=self._work, name="plc-handshake", daemon=True)
            self._worker.start()
            self._changed()
        self._notify()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the inspection in progress, then stop (state goes back to preoperational)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._worker:
            self._worker.join(timeout)
        with self._cond:
            self._started = False
            self._changed()
        self._notify()

    def set_fault(self, message: str | None) -> None:
        """Put the station in state error (``message``) or take it out again (None)."""
        with self._cond:
            self._fault = message
            self._changed()
        self._notify()

    def subscribe(self, listener: Callable[[], None]) -> None:
        """``listener()`` is called (from any thread, outside the lock) after every change."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        self._listeners = [x for x in self._listeners if x != listener]

    # -- commands from the PLC ----------------------------------------------------------------------------
    def trigger(self, part_id: str = "") -> TriggerAnswer:
        """Take one trigger: it gets the next sequence number and is answered once (see the module doc)."""
        with self._cond:
            self._seq += 1
            self._tally.triggers += 1
            trig = Trigger(sequence=self._seq, part_id=part_id, recipe=self._recipe)
            answer = self._place(trig)
            self._last_trigger = answer
            if answer.accepted:
                self._set_error(ErrorCode.NONE, "")
            else:
                self._tally.refused += 1
                self._tally.errors += 1
                self._tally.buffer_full += answer.error == ErrorCode.BUFFER_FULL
                self._set_error(answer.error, answer.message)
                log.warning("trigger %d refused: %s", trig.sequence, answer.message)
            self._changed()
        if answer.error == ErrorCode.BUSY:
            self._record_error(self._done[answer.sequence])
        self._notify()
        return answer

    def _place(self, trig: Trigger) -> TriggerAnswer:
        seq = trig.sequence
        if not _part_id_ok(trig.part_id):
            return TriggerAnswer(seq, ErrorCode.BAD_PART_ID, f"part id {trig.part_id[:40]!r}: "
                                 + ErrorCode.BAD_PART_ID.text)
        state = self._state()
        if state in (StationState.PREOPERATIONAL, StationState.ERROR):
            why = self._fault or "not started"
            return TriggerAnswer(seq, ErrorCode.NOT_READY, f"trigger {seq}: station not ready ({why})")
        if len(self._slots) >= self.depth:
            return TriggerAnswer(seq, ErrorCode.BUFFER_FULL, f"trigger {seq}: {len(self._slots)} of {self.depth} "
                                 "results unacknowledged; acknowledge before triggering again")
        in_progress = self._running or self._next
        if in_progress is not None:
            busy = TriggerResult.failed(trig, ErrorCode.BUSY, f"trigger {seq} while inspection "
                                        f"{in_progress.sequence} was in progress")
            self._slots.append(_Slot(trig, busy))
            self._tally.result(busy, timed=False)
            self._finished(busy)
            return TriggerAnswer(seq, ErrorCode.BUSY, busy.message)
        self._slots.append(_Slot(trig))
        self._next = trig
        self._cond.notify_all()
        return TriggerAnswer(seq)

    def acknowledge(self, sequence: int = 0) -> TriggerResult:
        """Acknowledge the presented result (``sequence`` = its number, or 0 for whichever it is); returns it.
        Raises :class:`HandshakeError` (nothing changes) for an unknown or out-of-order number."""
        try:
            with self._cond:
                try:
                    result = self._pop(sequence)
                except HandshakeError as exc:
                    self._tally.ack_errors += 1
                    self._set_error(exc.code, str(exc))
                    log.warning("%s", exc)
                    raise
                else:
                    self._set_error(ErrorCode.NONE, "")
                finally:
                    self._changed()
        finally:
            self._notify()
        return result

    def _pop(self, sequence: int) -> TriggerResult:
        head = self._slots[0] if self._slots else None
        presented = head.result if head else None
        if sequence == 0:
            if presented is None:
                raise HandshakeError(ErrorCode.UNKNOWN_SEQUENCE, "acknowledge: no result is presented")
            sequence = presented.sequence
        slot = next((s for s in self._slots if s.trigger.sequence == sequence), None)
        if slot is None:
            raise HandshakeError(ErrorCode.UNKNOWN_SEQUENCE, f"acknowledge {sequence}: no buffered result has this "
                                 "sequence number" + (f" (presented: {presented.sequence})" if presented else ""))
        if slot is not head or presented is None:
            what = "is still being inspected" if slot.result is None else "is not the presented result"
            raise HandshakeError(ErrorCode.ACK_OUT_OF_ORDER, f"acknowledge {sequence}: it {what}; acknowledge "
                                 f"{head.trigger.sequence if head else '-'} first")
        self._slots.popleft()
        return presented

    def select_recipe(self, number: int) -> str:
        """Switch the recipe for the next trigger on; returns its name. Unknown: HandshakeError."""
        try:
            with self._cond:
                self._changed()
                if number not in self.recipes:
                    message = f"recipe {number}: not one of {sorted(self.recipes)}"
                    self._set_error(ErrorCode.UNKNOWN_RECIPE, message)
                    log.warning("%s", message)
                    raise HandshakeError(ErrorCode.UNKNOWN_RECIPE, message)
                self._recipe = number
                self._set_error(ErrorCode.NONE, "")
                return self.recipes[number]
        finally:
            self._notify()

    # -- what the servers show ----------------------------------------------------------------------------
    def snapshot(self) -> HandshakeSnapshot:
        with self._cond:
            state = self._state()
            head = self._slots[0].result if self._slots else None
            return HandshakeSnapshot(
                state=state, ready=state == StationState.READY, busy=state == StationState.BUSY, presented=head,
                last=self._last, buffered=len(self._slots), depth=self.depth, recipe=self._recipe,
                last_trigger=self._last_trigger, last_error=self._last_error,
                last_error_message=self._last_error_message, counters=self._tally.frozen(), version=self._version)

    def wait_for_change(self, version: int, timeout: float) -> bool:
        """Block until the version differs from ``version`` (True) or ``timeout`` seconds pass (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._version != version, timeout)

    # -- internals ----------------------------------------------------------------------------------------
    def _state(self) -> StationState:
        if not self._started:
            return StationState.PREOPERATIONAL
        if self._fault is not None:
            return StationState.ERROR
        if self._next or self._running or len(self._slots) >= self.depth:
            return StationState.BUSY
        return StationState.READY

    def _finished(self, result: TriggerResult) -> None:
        self._last = result
        self._done[result.sequence] = result
        if len(self._done) > 1024:
            del self._done[min(self._done)]

    def _record_error(self, result: TriggerResult) -> None:
        if self._on_error_result is None:
            return
        try:
            self._on_error_result(result)
        except Exception:  # recording must not stop the handshake; the PLC still gets its answer
            log.exception("trigger %d: the error result could not be recorded", result.sequence)

    def wait_answered(self, sequence: int, timeout: float) -> bool:
        """Block until trigger ``sequence`` has its result (True: it is in the buffer, Result Ready for the PLC
        once older ones are acknowledged) or ``timeout`` seconds pass (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: sequence in self._done, timeout)

    def result_of(self, sequence: int) -> TriggerResult | None:
        """The completed result of trigger ``sequence`` (one of the last 1024), None while it is pending."""
        with self._cond:
            return self._done.get(sequence)

    def _set_error(self, code: ErrorCode, message: str) -> None:
        self._last_error, self._last_error_message = code, message

    def _changed(self) -> None:
        self._version += 1
        self._cond.notify_all()

    def _notify(self) -> None:
        for listener in self._listeners:
            try:
                listener()
            except Exception:  # a broken listener must not stop the handshake
                log.exception("handshake listener failed")

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._next is not None or self._stopping)
                if self._next is None:
                    return
                trig, self._next = self._next, None
                self._running = trig
            result = self._run(trig)
            if result.error != ErrorCode.NONE:
                self._record_error(result)
            with self._cond:
                self._running = None
                slot = next(s for s in self._slots if s.trigger is trig)
                slot.result = result
                self._tally.result(result, timed=True)
                self._finished(result)
                self._changed()
            self._notify()

    def _run(self, trig: Trigger) -> TriggerResult:
        t0 = time.perf_counter()
        try:
            result = self._inspect(trig)
            if result.sequence != trig.sequence:
                raise ValueError(f"inspect returned sequence {result.sequence} for trigger {trig.sequence}")
        except CameraError as exc:
            log.warning("trigger %d: camera error: %s", trig.sequence, exc)
            result = TriggerResult.failed(trig, ErrorCode.CAMERA, f"camera: {exc}")
        except Exception as exc:
            log.exception("trigger %d: inspection failed", trig.sequence)
            result = TriggerResult.failed(trig, ErrorCode.INSPECTION_FAILED, f"{type(exc).__name__}: {exc}")
        return replace(result, processing_ms=(time.perf_counter() - t0) * 1e3)
