"""A triggered station for ``inspection plant serve``: one model per recipe, a simulated camera of synthetic
parts as the frame source, the handshake core and the protocol servers the ``[plant]`` config switches on.

The line runner will later provide its own :data:`~inspection.plant.records.InspectFn` (the freshest frame
of its source after the trigger); :class:`ModelInspector` is the piece it can reuse: frames in, one
:class:`TriggerResult` per trigger out, with the recipe's model.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inspection.evaluation.synthetic import make_part, rng_for
from inspection.model.runtime import InspectionModel
from inspection.model.shipped import demo_model_path
from inspection.plant.config import PlantSection
from inspection.plant.handshake import PlcHandshake
from inspection.plant.modbus import ModbusStation
from inspection.plant.opcua import OpcUaStation
from inspection.plant.opcua_security import OpcUaSecurity
from inspection.plant.records import CameraError, Trigger, TriggerResult

log = logging.getLogger(__name__)
FrameSource = Callable[[Trigger], np.ndarray]


class SimulatedCamera:
    """Synthetic parts of each recipe's part type (a pool drawn once, then cycled): a frame per trigger."""

    def __init__(self, part_types: dict[int, str], defect_rate: float = 0.2, pool: int = 10, seed: int = 0):
        kinds = ("scratch", "spot", "crack", "missing")
        defective = round(pool * defect_rate)
        self._frames: dict[int, itertools.cycle[np.ndarray]] = {}
        for recipe, part in part_types.items():
            rng = rng_for(seed, "plant", part)
            frames = [make_part(part, rng, kinds[i % 4] if i < defective else None).image for i in range(pool)]
            order = rng.permutation(pool)
            self._frames[recipe] = itertools.cycle([frames[i] for i in order])
        self._lock = threading.Lock()

    def __call__(self, trigger: Trigger) -> np.ndarray:
        with self._lock:
            if trigger.recipe not in self._frames:
                raise CameraError(f"no simulated part for recipe {trigger.recipe}")
            return next(self._frames[trigger.recipe])


class ModelInspector:
    """The inspect callable: the trigger's recipe picks the model; the frame source gives the image."""

    def __init__(self, models: dict[int, InspectionModel], frames: FrameSource):
        self.models, self.frames = models, frames

    def __call__(self, trigger: Trigger) -> TriggerResult:
        model = self.models[trigger.recipe]
        try:
            frame = self.frames(trigger)
        except CameraError:
            raise
        except Exception as exc:  # a frame source that fails in its own way is a camera error to the PLC
            raise CameraError(f"{type(exc).__name__}: {exc}") from exc
        inspection = model.inspect(frame, name=trigger.part_id or f"trigger {trigger.sequence}")
        return TriggerResult.inspected(trigger, inspection.verdict == "PASS", inspection.score,
                                       inspection.threshold, f"{model.info.name} {model.info.version}")


def recipe_models(cfg: PlantSection, threads: int = 1) -> dict[int, InspectionModel]:
    models: dict[int, InspectionModel] = {}
    for number, recipe in cfg.numbered().items():
        path: Path = recipe.model or demo_model_path(recipe.part_type)
        models[number] = InspectionModel.load(path, threads=threads)
    return models


@dataclass
class PlantStation:
    """The core and its servers, started and stopped together."""

    core: PlcHandshake
    modbus: ModbusStation | None = None
    opcua: OpcUaStation | None = None
    lines: list[str] = field(default_factory=list)  # what to tell the operator once started

    def start(self, ready: bool = True) -> None:
        """Start the servers; with ``ready`` the core too (else it stays preoperational until
        ``core.start()``, e.g. until the line runner's camera gave its first frame)."""
        if ready:
            self.core.start()
        try:
            if self.modbus:
                self.modbus.start()
                self.lines.append(f"Modbus TCP on {self.modbus.host}:{self.modbus.port} (register map: "
                                  "README.md, Modbus TCP: register map)")
            if self.opcua:
                self.opcua.start()
                self.lines.append(self._opcua_line())
        except Exception:
            self.stop()
            raise

    def _opcua_line(self) -> str:
        assert self.opcua is not None
        cert = self.opcua.certificate
        made = "created" if cert and cert.created else "loaded"
        return (f"OPC UA on {self.opcua.endpoint} (Basic256Sha256 SignAndEncrypt); server certificate {made}: "
                f"{cert.cert_file if cert else '?'}, SHA-1 thumbprint {cert.sha1 if cert else '?'}")

    def stop(self) -> None:
        for server in (self.opcua, self.modbus):
            if server:
                server.stop()
        self.core.stop()


def build_station(cfg: PlantSection, inspect: Callable[[Trigger], TriggerResult],
                  on_error_result: Callable[[TriggerResult], None] | None = None) -> PlantStation:
    """The station the config describes around ``inspect`` (OPC UA passwords read from the environment
    where the config says so); ``on_error_result`` is told of every error result."""
    names = {n: r.name for n, r in cfg.numbered().items()}
    core = PlcHandshake(inspect, depth=cfg.buffer_depth, recipes=names, recipe=cfg.initial_recipe,
                        on_error_result=on_error_result)
    station = PlantStation(core)
    if cfg.modbus.enabled:
        station.modbus = ModbusStation(core, cfg.modbus.host, cfg.modbus.port)
    if cfg.opcua.enabled:
        o = cfg.opcua
        security = OpcUaSecurity(cert_dir=o.cert_dir, users={u.name: u.secret() for u in o.users},
                                 allow_anonymous=o.allow_anonymous,
                                 allow_unencrypted=o.allow_unencrypted, trusted_clients=o.trusted_clients)
        station.opcua = OpcUaStation(core, security, o.host, o.port)
    return station
