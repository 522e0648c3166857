"""The simulated line: the synthetic generator's parts arriving at a set rate and defect rate."""

from __future__ import annotations

import time

import numpy as np

from inspection.evaluation.synthetic import DEFECT_KINDS, make_part, rng_for
from inspection.sources.frame import Frame, FrameIds, now


def defective_in_pool(pool_size: int) -> int:
    """How many of a simulated line's ``pool_size`` distinct parts are defective (the rest are good)."""
    return max(len(DEFECT_KINDS), pool_size // 4)


def line_parts(part_type: str, seed: int, count: int, defective: bool, size: int = 256) -> list[np.ndarray]:
    """The first ``count`` good (or defective: the kinds in turn) parts of the simulated line with this seed.

    Each part is drawn from its own seed, so these are the very images a :class:`SimulatedLine` of that seed
    takes its parts from: its pool is the first ``pool_size - defective_in_pool(pool_size)`` good parts and the
    first ``defective_in_pool(pool_size)`` defective ones, whatever the pool size.
    """
    if count < 0:
        raise ValueError(f"part count {count} must not be negative")
    if not defective:
        return [make_part(part_type, rng_for(seed, "sim", "good", i), None, size).image for i in range(count)]
    kinds = [DEFECT_KINDS[i % len(DEFECT_KINDS)] for i in range(count)]
    return [make_part(part_type, rng_for(seed, "sim", kind, i), kind, size).image for i, kind in enumerate(kinds)]


class SimulatedLine:
    """The synthetic line: parts arrive at ``rate`` per second, a ``defect_rate`` share of them defective.

    The generator is too slow to draw every part live on a small box, so a pool of distinct parts is drawn
    at start (good parts and each defect kind) and parts are taken from it at random, each with its own
    frame id, part id and capture time. Live: behaves like a camera. ``gain`` and ``offset`` change the
    brightness of every frame from now on (pixel * gain + offset): a lighting or camera change, for trying the
    runner's drift figure. With ``software_trigger`` it behaves
    like a triggered camera: each read grabs one frame at once (no free-running at ``rate``), after
    ``exposure_us`` when given.
    """

    live = True

    def __init__(self, part_type: str = "flange", rate: float = 10.0, defect_rate: float = 0.1, seed: int = 0,
                 pool_size: int = 40, size: int = 256, software_trigger: bool = False,
                 exposure_us: float | None = None):
        self.part_type, self.rate, self.defect_rate, self.seed = part_type, rate, defect_rate, seed
        self.software_trigger, self.exposure_s = software_trigger, (exposure_us or 0.0) / 1e6
        self.pool_size, self.size = pool_size, size
        self.name = (f"simulated {part_type} camera, software-triggered" if software_trigger
                     else f"simulated {part_type} line at {rate:g}/s")
        self.good: list[np.ndarray] = []
        self.bad: list[np.ndarray] = []
        self.rng = np.random.default_rng(seed)
        self.next_at = 0.0
        self.ids = FrameIds()
        self.gain, self.offset = 1.0, 0.0

    def open(self) -> None:
        if not self.good:
            n_bad = defective_in_pool(self.pool_size)
            self.good = line_parts(self.part_type, self.seed, self.pool_size - n_bad, defective=False, size=self.size)
            self.bad = line_parts(self.part_type, self.seed, n_bad, defective=True, size=self.size)
        self.next_at = time.monotonic()

    def read(self, timeout: float) -> Frame | None:
        if self.software_trigger:  # the trigger fired: expose and read out one frame now
            if self.exposure_s:
                time.sleep(self.exposure_s)
            return self._frame()
        wait = self.next_at - time.monotonic()
        if wait > timeout:
            time.sleep(timeout)
            return None
        if wait > 0:
            time.sleep(wait)
        self.next_at = max(self.next_at + 1.0 / self.rate, time.monotonic() - 1.0)
        return self._frame()

    def _frame(self) -> Frame:
        fid = self.ids.next()
        pool = self.bad if self.rng.random() < self.defect_rate else self.good
        image = pool[int(self.rng.integers(len(pool)))]
        if self.gain != 1.0 or self.offset != 0.0:
            image = np.clip(image.astype(np.float32) * self.gain + self.offset, 0, 255).astype(np.uint8)
        return Frame(fid, now(), f"sim#{fid}", image=image, part_id=f"SIM-{self.seed}-{fid:07d}")

    def close(self) -> None:
        pass

    def finished(self, frame: Frame, ok: bool) -> None:
        pass
