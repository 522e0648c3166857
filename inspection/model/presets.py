"""Training presets: named settings of the anomaly head with their measured trade-off.

Chosen on the validation split of the real-surfaces set (`datasets/real_surfaces.py`, study:
`benchmarks/head_study.py`); the figures reported for them come from its test split
(`benchmarks/accuracy_protocol.py`, `benchmarks/RESULTS.md`). All three whiten the patch features, normalise
the patch map per position and leave a border of one patch (8 px) out of the map and the score (the padded
backbone's edge patches dominated the maximum); they differ in the memory bank:
- ``fast``: a single Gaussian (Mahalanobis distance to the mean of the whitened patches): no bank search;
- ``balanced`` (the default: the one to start a new part type with): a whitened 1,024-entry coreset, patch
  distance = mean distance to the 3 nearest entries;
- ``accurate``: a 1,024-entry coreset on 352x352 inputs (a finer patch grid), patch distance = distance to the
  nearest entry (a ReduceMin instead of a TopK). It replaced the ``balanced`` head at 384x384, which scored the
  same on the validation split (0.923 image AUROC both, `benchmarks/preset_sweep.py`) but took 30.0 ms p90 on
  an AMD EPYC host (22.6 ms for this one): the 25 ms budget has to hold on every machine the product runs on.
  On the test split it scored 0.875 image AUROC against the 384-px head's 0.893 (benchmarks/RESULTS.md).
"""

from __future__ import annotations

from typing import Any, Literal

Preset = Literal["fast", "balanced", "accurate"]
DEFAULT_PRESET: Preset = "balanced"

_COMMON: dict[str, Any] = {"whiten": True, "normalise": True, "projection_dim": None, "border": 1}
PRESETS: dict[str, dict[str, Any]] = {
    "fast": _COMMON | {"bank_size": 1, "k_nearest": 1},
    "balanced": _COMMON | {"bank_size": 1024, "k_nearest": 3},
    "accurate": _COMMON | {"bank_size": 1024, "k_nearest": 1, "input_size": (352, 352)},
}


def preset_settings(name: str) -> dict[str, Any]:
    """The TrainConfig fields a preset sets; ValueError naming the choices for an unknown one."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return {**PRESETS[name], "preset": name}
