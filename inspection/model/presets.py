"""Training presets: named settings of the anomaly head with their measured trade-off.

Chosen on the validation split of the real-surfaces set (`datasets/real_surfaces.py`); the figures reported
for them come from its test split (`benchmarks/accuracy_protocol.py`, `benchmarks/RESULTS.md`). All three
whiten the patch features and normalise the patch map per position; they differ in the memory bank:
- ``fast``: a single Gaussian (Mahalanobis distance to the mean of the whitened patches): no bank search;
- ``balanced`` (the default: the one to start a new part type with): a whitened 1,024-entry coreset;
- ``accurate``: a whitened 2,048-entry coreset (more patches covered, more latency).
"""

from __future__ import annotations

from typing import Any, Literal

Preset = Literal["fast", "balanced", "accurate"]
DEFAULT_PRESET: Preset = "balanced"

PRESETS: dict[str, dict[str, Any]] = {
    "fast": {"whiten": True, "normalise": True, "bank_size": 1, "projection_dim": None},
    "balanced": {"whiten": True, "normalise": True, "bank_size": 1024, "projection_dim": None},
    "accurate": {"whiten": True, "normalise": True, "bank_size": 2048, "projection_dim": None},
}


def preset_settings(name: str) -> dict[str, Any]:
    """The TrainConfig fields a preset sets; ValueError naming the choices for an unknown one."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return {**PRESETS[name], "preset": name}
