"""Helpers for the trigger-mode tests: a triggered station config, the runner in-process, the outbox read."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
from service_support import STATION, free_port

from inspection.line.config import StationConfig, parse_config
from inspection.line.runner import LineRunner
from inspection.model.runtime import InspectionModel
from inspection.model.shipped import default_model_path
from inspection.plant.records import StationState
from inspection.sources.frame import Frame, FrameIds, FrameSource, now


def trigger_config(tmp: Path, plant: dict | None = None, fps: float = 100.0, **sections) -> StationConfig:
    """A simulated flange camera at ``fps`` frames/s, triggered ([plant] enabled, Modbus on a free port)."""
    site, area, line, cell, station = STATION.split("/")
    plant = {"enabled": True, "modbus": {"enabled": True, "port": free_port()}} | (plant or {})
    data = {"station": dict(site=site, area=area, line=line, cell=cell, station=station),
            "source": {"kind": "simulated", "rate": fps, "defect_rate": 0.3},
            "outbox": str(tmp / "outbox.db"), "images": {"dir": str(tmp / "images")},
            "status": {"port": free_port()}, "plant": plant} | sections
    return parse_config(data, "test")


def outbox_records(path: Path) -> list[dict]:
    """Every record committed to the outbox, in commit order."""
    db = sqlite3.connect(path)
    try:
        return [json.loads(r) for (r,) in db.execute("SELECT record FROM outbox ORDER BY seq")]
    finally:
        db.close()


class FewFramesCamera:
    """A live camera that gives ``frames`` frames at once, then none (as a camera whose trigger line broke)."""

    live = True
    name = "few-frames camera"

    def __init__(self, frames: int = 1):
        self.left = frames
        self.ids = FrameIds()
        self.image = np.full((64, 64, 3), 128, np.uint8)

    def open(self) -> None:
        pass

    def read(self, timeout: float) -> Frame | None:
        if self.left <= 0:
            time.sleep(timeout)
            return None
        self.left -= 1
        return Frame(self.ids.next(), now(), "few-frames", image=self.image)

    def close(self) -> None:
        pass

    def finished(self, frame: Frame, ok: bool) -> None:
        pass


class TriggeredRunner:
    """A LineRunner in trigger mode, started and stopped around a test."""

    def __init__(self, cfg: StationConfig, source: FrameSource | None = None):
        self.cfg = cfg
        self.runner = LineRunner(cfg, flush_timeout=1, source=source)

    def __enter__(self) -> LineRunner:
        """Started, and Ready: the camera gave its first frame (a loaded box may take a while to open it)."""
        self.runner.start()
        assert self.runner.trigger_mode is not None
        core = self.runner.trigger_mode.plant.core
        deadline = time.monotonic() + 60
        while core.snapshot().state != StationState.READY:
            left = deadline - time.monotonic()
            if left <= 0:
                self.runner.stop()
                raise AssertionError(f"the triggered station never became Ready: {core.snapshot()}")
            core.wait_for_change(core.snapshot().version, min(left, 0.5))
        return self.runner

    def __exit__(self, *exc: object) -> None:
        self.runner.stop()


class GatedModel:
    """The shipped model, holding each inspection until released (to have a trigger arrive while busy)."""

    def __init__(self) -> None:
        self.model = InspectionModel.load(default_model_path())
        self.info, self.meta = self.model.info, self.model.meta
        self.started, self.gate = threading.Event(), threading.Event()

    def inspect(self, image, name=None, mapping=None):
        self.started.set()
        assert self.gate.wait(20), "gate never opened"
        return self.model.inspect(image, name=name, mapping=mapping)
