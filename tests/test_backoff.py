"""Retry delays: full jitter up to an exponential ceiling, capped, back to the start after a success; the
forwarder resets its backoff once a delivery succeeds."""

from __future__ import annotations

import random
import threading

import pytest
from line_support import wait_for

from inspection.line.backoff import Backoff
from inspection.line.forwarders import Forwarder
from inspection.line.outbox import Outbox


class _Top(random.Random):
    """Always the upper end of the range: the ceiling itself."""

    def uniform(self, a, b):
        return b


def test_the_ceiling_doubles_up_to_the_cap_and_resets():
    b = Backoff(base=0.25, cap=4.0, rng=_Top())
    assert [b.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    b.reset()
    assert b.next() == 0.5
    for _ in range(5000):  # no overflow however long a link stays down
        b.next()
    assert b.next() == 4.0


def test_full_jitter_spreads_over_the_whole_range():
    b = Backoff(base=1.0, cap=8.0, rng=random.Random(7))
    samples = []
    for _ in range(4000):
        b.failures = 2  # ceiling 8
        samples.append(b.next())
    assert all(0 <= s <= 8.0 for s in samples)
    assert min(samples) < 0.2 and max(samples) > 7.8  # full jitter: from 0, not from half the ceiling
    assert 3.6 < sum(samples) / len(samples) < 4.4  # uniform: mean half the ceiling


def test_bad_backoff_settings_are_refused():
    with pytest.raises(ValueError, match="base"):
        Backoff(base=0, cap=1)
    with pytest.raises(ValueError, match="cap"):
        Backoff(base=2, cap=1)


class _FlakyLink(Forwarder):
    dest = "http"

    def __init__(self, path, stop, failures: int):
        super().__init__(path, 10, stop)
        self.backoff = Backoff(base=0.01, cap=0.05)
        self.failures_left, self.seen_failures = failures, []

    def deliver(self, outbox, entries):
        if self.failures_left:
            self.failures_left -= 1
            self.seen_failures.append(self.backoff.failures)
            raise RuntimeError("link down")
        outbox.mark(self.dest, [e.inspection_id for e in entries])


def test_the_forwarder_backs_off_while_failing_and_resets_after_a_success(tmp_path):
    box = Outbox(tmp_path / "o.db", enabled=("http",))
    box.add("id0", "{}")
    stop = threading.Event()
    link = _FlakyLink(tmp_path / "o.db", stop, failures=4)
    link.start()
    try:
        wait_for(lambda: not box.pending("http", 10), 10, "the entry to be delivered")
        wait_for(lambda: link.state == "delivering", 5, "the link to report delivering")
    finally:
        stop.set()
        link.join(timeout=5)
    assert link.seen_failures == [0, 1, 2, 3]  # each retry one step further up
    assert link.backoff.failures == 0 and link.last_error is None  # a success starts again from the bottom
    box.close()
