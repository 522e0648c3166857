"""Latency statistics and latency budgets."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

PERCENTILES = (50, 90, 95, 99, 99.9)


def pkey(q: float) -> str:
    return "p" + (f"{q:g}".replace(".", "_"))


def summarize(latencies_s, duration_s: float) -> dict:
    """count, duration, mean, std, min, max, p50/p90/p95/p99/p99.9 (ms) and throughput (per second).

    Percentiles use linear interpolation between order statistics (numpy's default, the usual definition).
    """
    lat = np.asarray(latencies_s, np.float64) * 1e3
    if len(lat) == 0:
        return {"count": 0, "duration_s": duration_s, "throughput_per_s": 0.0}
    out = {"count": len(lat), "duration_s": float(duration_s), "mean_ms": float(lat.mean()),
           "std_ms": float(lat.std(ddof=1)) if len(lat) > 1 else 0.0, "min_ms": float(lat.min()),
           "max_ms": float(lat.max())}
    for q in PERCENTILES:
        out[pkey(q) + "_ms"] = float(np.percentile(lat, q))
    out["throughput_per_s"] = len(lat) / duration_s if duration_s > 0 else 0.0
    return out


class BudgetError(ValueError):
    pass


_UNITS = {"ms": 1.0, "s": 1000.0, "us": 0.001, "µs": 0.001}
_TERM = re.compile(r"^p(\d+(?:\.\d+)?)\s*(?:=|<=|<)\s*(\d+(?:\.\d+)?)\s*(ms|s|us|µs)$")


@dataclass(frozen=True)
class Budget:
    """Latency limits by percentile, e.g. ``p90=20ms`` or ``p90=20ms,p99=35ms``."""

    limits: tuple[tuple[float, float], ...]  # (percentile, limit in ms)

    @classmethod
    def parse(cls, text: str) -> Budget:
        terms = [t.strip() for t in text.split(",") if t.strip()]
        if not terms:
            raise BudgetError(f"budget {text!r} is empty; write it like p90=20ms")
        limits = []
        for t in terms:
            m = _TERM.match(t.lower())
            if not m:
                raise BudgetError(f"budget term {t!r} does not parse; write percentile=limit with a unit, like "
                                  "p90=20ms, p99.9=40ms or p50=0.01s")
            q, value, unit = float(m.group(1)), float(m.group(2)), m.group(3)
            if not 0 < q < 100:
                raise BudgetError(f"budget term {t!r}: percentile must be between 0 and 100")
            if value <= 0:
                raise BudgetError(f"budget term {t!r}: the limit must be positive")
            limits.append((q, value * _UNITS[unit]))
        return cls(tuple(limits))

    def check(self, latencies_s) -> list[dict]:
        """One verdict per limit: the measured percentile (ms) and whether it is within the limit."""
        lat = np.asarray(latencies_s, np.float64) * 1e3
        out = []
        for q, limit in self.limits:
            measured = float(np.percentile(lat, q)) if len(lat) else float("inf")
            out.append({"percentile": q, "limit_ms": limit, "measured_ms": measured, "pass": measured <= limit})
        return out

    def __str__(self) -> str:
        return ",".join(f"p{q:g}={v:g}ms" for q, v in self.limits)
