"""The models that judge frames, swappable while the line runs.

A :class:`Judge` is one immutable pairing: the live model (a view of a loaded model with the threshold its
verdicts are judged with: the assignment's override or the model's own), and optionally a shadow model run
beside it on the same frame (its verdict recorded, never acted on). :class:`Judges` holds one judge per
recipe (a free-running station has one, under :data:`FREE_RUNNING`) as one read-only mapping that is replaced
as a whole: a stage reads ``judges.for_recipe(n)`` once per frame and uses that judge to the end, so a swap
takes effect between two frames, never inside one, and nothing waits on a lock.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

import numpy as np

from inspection.model.runtime import InspectionModel
from inspection.model.tiling import RESIZE, FrameMapping
from inspection.results.inspection import Inspection
from inspection.schema import ShadowVerdict

FREE_RUNNING = 0  # the recipe key of a free-running station's one judge
ThresholdSource = Literal["model", "assignment"]


def with_threshold(model: InspectionModel, threshold: float | None) -> InspectionModel:
    """A view of ``model`` (same session, same metadata) judging with ``threshold`` (None: the model's own);
    the loaded model itself is never changed, so a frame in flight keeps the threshold it started with."""
    view = copy.copy(model)
    view.threshold = model.meta.threshold if threshold is None else float(threshold)
    return view


def warm_up(model: InspectionModel) -> None:
    """One inference on a blank image: the first real frame after a swap is not the slow first run, and a
    model that cannot run is found out before it judges anything."""
    h, w = model.input_size
    model.run(np.zeros((1, h, w, 3), np.uint8))


@dataclass
class ShadowCost:
    """What running a shadow model costs, against the time between frames (the frame budget); EMA-smoothed."""

    live_ms: float = 0.0
    shadow_ms: float = 0.0
    interval_ms: float | None = None  # between two frames the source gave (dropped ones too), or two triggers
    _last: tuple[float, int] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def observe(self, live_ms: float, shadow_ms: float, at: float, count: int) -> None:
        """One frame judged: ``at`` its capture time (monotonic), ``count`` how many frames (or triggers) the
        source has given so far, so the budget is the source's pace, not the pace the judges managed."""
        a = 0.1
        with self._lock:
            self.live_ms = live_ms if self.live_ms == 0 else (1 - a) * self.live_ms + a * live_ms
            self.shadow_ms = shadow_ms if self.shadow_ms == 0 else (1 - a) * self.shadow_ms + a * shadow_ms
            if self._last is not None and at > self._last[0] and count > self._last[1]:
                gap = (at - self._last[0]) * 1e3 / (count - self._last[1])
                self.interval_ms = gap if self.interval_ms is None else (1 - a) * self.interval_ms + a * gap
            self._last = (at, count)

    def over_budget(self) -> bool:
        """Live and shadow together take longer than the time between frames: frames would be dropped."""
        return self.interval_ms is not None and self.live_ms + self.shadow_ms > self.interval_ms


@dataclass(frozen=True)
class Judge:
    """The live model with the threshold it judges with, and optionally a shadow model beside it."""

    live: InspectionModel
    threshold_source: ThresholdSource = "model"
    shadow: InspectionModel | None = None

    def inspect(self, image: np.ndarray, name: str, cost: ShadowCost | None = None, at: float = 0.0,
                count: int = 0, mapping: FrameMapping = RESIZE) -> tuple[Inspection, ShadowVerdict | None]:
        """The live verdict, and the shadow's beside it, both with the station's frame ``mapping``; ``cost``
        (with the frame's capture time ``at`` and the source's frame count ``count``) measures the shadow
        against the frame budget."""
        t0 = time.perf_counter()
        result = self.live.inspect(image, name=name, mapping=mapping)
        if self.shadow is None:
            return result, None
        t1 = time.perf_counter()
        s = self.shadow.inspect(image, name=name, mapping=mapping)
        t2 = time.perf_counter()
        if cost is not None:
            cost.observe((t1 - t0) * 1e3, (t2 - t1) * 1e3, at, count)
        return result, ShadowVerdict(model=s.model, verdict=s.verdict, score=s.score, threshold=s.threshold)

    def describe(self) -> dict:
        info = self.live.info.model_dump() | {"threshold": self.live.threshold,
                                              "threshold_source": self.threshold_source}
        return info | {"shadow": self.shadow.info.model_dump() if self.shadow else None}


def valid_threshold(threshold: float | None) -> float | None:
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float)
                                  or not math.isfinite(threshold) or threshold <= 0):
        raise ValueError(f"threshold {threshold!r} is not a finite positive number")
    return threshold


class Judges:
    """One judge per recipe, swapped as a whole (an atomic reference swap). ``base`` keeps each recipe's
    configured model: an assignment without a model (or a rollback to none) goes back to it."""

    def __init__(self, base: Mapping[int, InspectionModel], mapping: FrameMapping = RESIZE):
        self.mapping = mapping  # the station's frame-to-model mapping, the same for every judge
        self.base: Mapping[int, InspectionModel] = MappingProxyType(dict(base))
        self._current: Mapping[int, Judge] = MappingProxyType({n: Judge(m) for n, m in base.items()})
        self.cost = ShadowCost()
        self.swaps = 0
        self._swap_lock = threading.Lock()  # one writer at a time; readers never take it

    @property
    def current(self) -> Mapping[int, Judge]:
        return self._current

    def for_recipe(self, recipe: int = FREE_RUNNING) -> Judge:
        return self._current[recipe]

    def swap(self, new: Mapping[int, Judge]) -> Mapping[int, Judge]:
        """Replace the judges of the recipes in ``new`` (the others stay); returns the mapping replaced."""
        with self._swap_lock:
            unknown = set(new) - set(self.base)
            if unknown:
                raise KeyError(f"no such recipe: {sorted(unknown)}")
            old = self._current
            self._current = MappingProxyType(dict(old) | dict(new))
            self.swaps += 1
            return old
