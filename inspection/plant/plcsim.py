"""The simulated PLC: drives a station over Modbus TCP or OPC UA at a set part rate, checks every answer,
and measures trigger -> Result Ready latency.

Checked on every part: the trigger gets the next sequence number; it is accepted when the station said
Ready; its result is presented with that sequence number and part id, once, in order; the acknowledge is
taken and the next result (or none) is presented. The buffer check (before the paced run) fills the buffer
without acknowledging and expects Busy and a BUFFER_FULL refusal for the next trigger, then an
UNKNOWN_SEQUENCE error for an acknowledge of a number that was never given, then acknowledges all in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from inspection.plant.plc_view import PlcClient, PresentedView, StationView
from inspection.plant.records import ErrorCode


class SimTimeout(AssertionError):
    pass


@dataclass
class SimReport:
    protocol: str
    triggers: int = 0
    results: int = 0
    ok: int = 0
    ng: int = 0
    error_results: int = 0
    refused: int = 0
    late: int = 0  # parts whose trigger slot had passed (the station was slower than the rate)
    latencies_ms: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    buffer_check: str = "not run"
    duration_s: float = 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def summary(self) -> str:
        lat = (f"trigger -> Result Ready p50 {self.percentile(50):.2f} ms, p99 {self.percentile(99):.2f} ms, "
               f"max {max(self.latencies_ms):.2f} ms" if self.latencies_ms else "no latencies")
        return (f"{self.protocol}: {self.triggers} triggers, {self.results} results ({self.ok} OK, {self.ng} NG, "
                f"{self.error_results} error results), {self.refused} refused, {self.late} late, in "
                f"{self.duration_s:.1f} s; {lat}; buffer check: {self.buffer_check}; "
                + (f"{len(self.problems)} PROBLEMS" if self.problems else "every answer checked, no problems"))


def wait_view(plc: PlcClient, predicate: Callable[[StationView], bool], timeout: float, what: str,
              reported: bool = False) -> StationView:
    """Read the station until ``predicate(view)`` holds, waiting for changes in between (a Modbus poll
    period, an OPC UA data-change notification); SimTimeout after ``timeout``. With ``reported``, take
    what the station last reported (:meth:`PlcClient.reported`) instead of reading afresh."""
    deadline = time.monotonic() + timeout
    while True:
        view = plc.reported() if reported else plc.view()
        if predicate(view):
            return view
        if time.monotonic() > deadline:
            raise SimTimeout(f"{plc.name}: no {what} within {timeout:g} s (station: {view})")
        plc.wait_change()


class PlcSimulator:
    """One simulated PLC on one station connection."""

    def __init__(self, plc: PlcClient, timeout: float = 5.0):
        self.plc, self.timeout = plc, timeout
        self.report = SimReport(plc.name)
        self.expected_seq: int | None = None

    def _problem(self, text: str) -> None:
        self.report.problems.append(text)

    def _trigger(self, part_id: str) -> tuple[int, ErrorCode]:
        answer = self.plc.trigger(part_id)
        self.report.triggers += 1
        if self.expected_seq is not None and answer.sequence != self.expected_seq:
            self._problem(f"trigger {part_id}: sequence {answer.sequence}, expected {self.expected_seq}")
        self.expected_seq = answer.sequence + 1
        if not answer.accepted:
            self.report.refused += 1
        return answer.sequence, answer.error

    def _await_result(self, seq: int) -> PresentedView:
        # the notified view may still show the result acknowledged before this trigger: wait for this one's
        view = wait_view(self.plc, lambda v: v.presented is not None and v.presented.sequence >= seq,
                         self.timeout, f"Result Ready for trigger {seq}", reported=True)
        assert view.presented is not None
        if view.presented.sequence != seq:
            self._problem(f"presented result {view.presented.sequence}, expected {seq}")
        return view.presented

    def _take(self, result: PresentedView, part_id: str) -> None:
        """Check a presented result, count it and acknowledge it."""
        r = self.report
        r.results += 1
        if result.part_id != part_id:
            self._problem(f"result {result.sequence}: part id {result.part_id!r}, expected {part_id!r}")
        if result.verdict == "OK":
            r.ok += 1
        elif result.verdict == "NG":
            r.ng += 1
        else:
            r.error_results += 1
        code = self.plc.acknowledge(result.sequence)
        if code:
            self._problem(f"acknowledge {result.sequence} refused with code {code}")
        after = self.plc.view().presented
        if after is not None and after.sequence <= result.sequence:
            self._problem(f"result {result.sequence} still presented after its acknowledge")

    def one_part(self, part_id: str) -> None:
        view = self.plc.view()
        if not view.ready:
            view = wait_view(self.plc, lambda v: v.ready, self.timeout, "Ready")
        t0 = time.perf_counter()
        seq, error = self._trigger(part_id)
        if error not in (ErrorCode.NONE, ErrorCode.BUSY):
            self._problem(f"trigger {seq} ({part_id}) refused with code {int(error)} although Ready")
            return
        result = self._await_result(seq)
        self.report.latencies_ms.append((time.perf_counter() - t0) * 1e3)
        self._take(result, part_id)

    def check_buffer(self) -> None:
        """Fill the buffer, expect Busy and BUFFER_FULL, an UNKNOWN_SEQUENCE ack error, then drain it."""
        depth = self.plc.view().depth
        taken: list[tuple[int, str]] = []
        for i in range(depth):
            part = f"BUF-{i}"
            wait_view(self.plc, lambda v: v.ready, self.timeout, "Ready while filling the buffer")
            seq, error = self._trigger(part)
            if error != ErrorCode.NONE:
                self._problem(f"buffer fill: trigger {seq} refused with {int(error)} at {i} of {depth}")
            taken.append((seq, part))
        full = wait_view(self.plc, lambda v: v.buffered == depth and v.busy and not v.ready and v.presented is not None,
                         self.timeout, "Busy with a full buffer")
        seq, error = self._trigger("OVERFLOW")
        if error != ErrorCode.BUFFER_FULL:
            self._problem(f"trigger into a full buffer answered {int(error)}, expected {int(ErrorCode.BUFFER_FULL)}")
        if self.plc.view().presented != full.presented:
            self._problem("the presented result changed when a trigger was refused (overwritten?)")
        unknown = self.plc.acknowledge(seq + 1000)
        if unknown != ErrorCode.UNKNOWN_SEQUENCE:
            self._problem(f"acknowledge of an unknown sequence answered {unknown}, expected "
                          f"{int(ErrorCode.UNKNOWN_SEQUENCE)}")
        for want, part in taken:
            self._take(self._await_result(want), part)
        self.report.buffer_check = "failed" if self.report.problems else (
            f"{depth} buffered, Busy set, trigger refused with BUFFER_FULL, unknown ack refused, drained in order")

    def run(self, count: int, rate: float, buffer_check: bool = True, prefix: str = "SIM",
            jitter_s: float = 0.0, seed: int = 0) -> SimReport:
        """``count`` parts at ``rate`` parts/s; with ``jitter_s`` each trigger comes up to that much (uniform)
        after its slot, so that a part's arrival is not locked to the phase of a free-running camera (a
        benchmark then measures the frame wait over all phases, not the one phase its run happened to get)."""
        if jitter_s < 0 or jitter_s >= 1.0 / rate:
            raise ValueError(f"jitter {jitter_s:g} s: give 0 or more, less than one part period ({1.0 / rate:g} s)")
        start = time.monotonic()
        if buffer_check:
            self.check_buffer()
        period = 1.0 / rate
        rng = np.random.default_rng(seed)
        t_next = time.monotonic()
        for i in range(count):
            delay = t_next + (float(rng.uniform(0, jitter_s)) if jitter_s else 0.0) - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -period:
                self.report.late += 1
            t_next += period
            self.one_part(f"{prefix}-{i:05d}")
        self.report.duration_s = time.monotonic() - start
        return self.report
