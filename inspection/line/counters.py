"""How the frames taken from the source ended: the line's counters, shared by the runner's stages."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from inspection.line import metrics as m


@dataclass
class LineCounters:
    """What happened to the frames taken from the source (every one ends in exactly one of the last five)."""

    frames: int = 0  # taken from the source
    dropped: int = 0  # live source, inference busy: the oldest waiting frame gave way to the freshest
    corrupt: int = 0  # could not be decoded, or the wrong shape
    failed: int = 0  # a stage crashed on it, or the runner stopped on an error before it was committed
    passed: int = 0  # committed with verdict PASS
    rejected_parts: int = 0  # committed with verdict FAIL
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count_failed(self) -> None:
        with self._lock:  # the only counter two stages write
            self.failed += 1
        m.FAILED.inc()

    def settled(self) -> int:
        return self.dropped + self.corrupt + self.failed + self.passed + self.rejected_parts
