"""Retry delays: exponential backoff with full jitter, capped, reset after a success."""

from __future__ import annotations

import random


class Backoff:
    """Full jitter (uniform in [0, min(cap, base * 2^n)] after the n-th failure in a row), as in the AWS
    architecture note on backoff: retries of many clients spread out instead of arriving together."""

    def __init__(self, base: float = 0.25, cap: float = 15.0, rng: random.Random | None = None):
        if base <= 0 or cap < base:
            raise ValueError(f"backoff: need 0 < base <= cap (got base={base}, cap={cap})")
        self.base, self.cap, self.failures = base, cap, 0
        self.rng = rng or random.Random()

    def reset(self) -> None:
        self.failures = 0

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        return min(self.cap, self.base * 2 ** min(self.failures + 1, 60))

    def next(self) -> float:
        top = self.ceiling()
        self.failures += 1
        return self.rng.uniform(0, top)
