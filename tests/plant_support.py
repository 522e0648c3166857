"""Helpers for the plant tests: fake inspect callables (fast, gated, failing) and deadline waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from inspection.plant.handshake import PlcHandshake
from inspection.plant.records import CameraError, Trigger, TriggerResult


def fake_inspect(trigger: Trigger) -> TriggerResult:
    """OK for even sequence numbers, NG for odd ones; score = sequence / 1000."""
    return TriggerResult.inspected(trigger, passed=trigger.sequence % 2 == 0, score=trigger.sequence / 1000,
                                   threshold=0.5, model_version="fake-1")


class GatedInspect:
    """An inspect callable that waits for ``release()`` (so a test can hold an inspection in progress)."""

    def __init__(self) -> None:
        self.gate = threading.Semaphore(0)
        self.started = threading.Event()
        self.seen: list[Trigger] = []

    def __call__(self, trigger: Trigger) -> TriggerResult:
        self.seen.append(trigger)
        self.started.set()
        if not self.gate.acquire(timeout=10):
            raise TimeoutError("gate never released")
        return fake_inspect(trigger)

    def release(self, n: int = 1) -> None:
        for _ in range(n):
            self.gate.release()


def failing_inspect(trigger: Trigger) -> TriggerResult:
    if trigger.part_id == "camera":
        raise CameraError("device vanished")
    if trigger.part_id == "boom":
        raise RuntimeError("model exploded")
    return fake_inspect(trigger)


def wait_until(core: PlcHandshake, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    """Wait on the core's change notifications until ``predicate()`` holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {what or predicate}: {core.snapshot()}")
        core.wait_for_change(core.snapshot().version, min(left, 0.5))


def presented_seq(core: PlcHandshake) -> int | None:
    p = core.snapshot().presented
    return p.sequence if p else None
