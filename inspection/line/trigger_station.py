"""Builds trigger mode for the line runner from the ``[plant]`` section: one model per recipe, the frame
holder, the handshake with its protocol servers (Modbus TCP, OPC UA) around :class:`TriggeredInspector`, and
the stages (capture into the holder, publish with the trigger's fields)."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path

from inspection.errors import InspectionError
from inspection.line import metrics as m
from inspection.line.assignment_models import Judges
from inspection.line.config import ConfigError, StationConfig
from inspection.line.image_writer import ImageWriter, PendingImages
from inspection.line.local_images import LocalImages
from inspection.line.stages import LineContext, PublishHooks, PublishSettings, Stage
from inspection.line.status import TriggerStatus
from inspection.line.trigger_publish import TriggeredPublishStage
from inspection.line.triggered import FreshestFrame, TriggeredCaptureStage, TriggeredInspector, TriggerErrorItem
from inspection.model.runtime import InspectionModel
from inspection.model.shipped import demo_model_path
from inspection.plant.records import TriggerResult
from inspection.plant.station import PlantStation, build_station
from inspection.sources.watchdog import SourceWatchdog


def recipe_models(cfg: StationConfig, station_model: InspectionModel) -> dict[int, InspectionModel]:
    """Each recipe's model: its own ``model``; else, when it names a ``part_type``, that part's shipped demo
    model; else the station's model (``model.path``, or the default)."""
    models: dict[int, InspectionModel] = {}
    for number, recipe in cfg.plant.numbered().items():
        path: Path | None = recipe.model
        if path is None and "part_type" in recipe.model_fields_set:
            path = demo_model_path(recipe.part_type)
        try:
            models[number] = InspectionModel.load(path, threads=cfg.model.threads) if path else station_model
        except InspectionError as exc:  # no such file, not a model of this tool
            raise ConfigError(f"plant.recipes.{number}.model: {exc}") from None
    return models


@dataclass
class TriggerMode:
    """The pieces of a triggered station, started and stopped by the runner."""

    plant: PlantStation
    frames: FreshestFrame
    results: queue.Queue
    judges: Judges  # each recipe's model, swapped by the service's assignment

    def stages(self, ctx: LineContext, watchdog: SourceWatchdog, stop: threading.Event, settings: PublishSettings,
               images: LocalImages, hooks: PublishHooks, rng, pending_images: PendingImages) -> list[Stage]:
        """Capture into the frame holder; publish, whose images are written after Result Ready (``pending_images``:
        what the HTTP forwarder waits for)."""
        writer = ImageWriter(images, pending_images)
        return [TriggeredCaptureStage(ctx, watchdog, self.frames, stop, self.plant.core.start),
                TriggeredPublishStage(ctx, settings, self.results, images, hooks, rng, writer,
                                      self.plant.core.wait_answered)]

    def set_fault(self, message: str | None) -> None:
        self.plant.core.set_fault(message)

    def status(self) -> TriggerStatus:
        snap = self.plant.core.snapshot()
        c = snap.counters
        return TriggerStatus(
            state=snap.state.name.capitalize(), buffered=snap.buffered, depth=snap.depth, recipe=snap.recipe,
            recipe_name=self.plant.core.recipes[snap.recipe],
            last_trigger_sequence=snap.last_trigger.sequence if snap.last_trigger else None,
            presented_sequence=snap.presented.sequence if snap.presented else None,
            last_error=snap.last_error.name, last_error_message=snap.last_error_message,
            counters={"triggers": c.triggers, "ok": c.ok, "ng": c.ng, "errors": c.errors, "refused": c.refused,
                      "missed": c.missed, "buffer_full": c.buffer_full, "ack_errors": c.ack_errors,
                      "processing_ms_min": round(c.processing_ms_min, 3),
                      "processing_ms_mean": round(c.processing_ms_mean, 3),
                      "processing_ms_max": round(c.processing_ms_max, 3)},
            servers=list(self.plant.lines))


def build_trigger_mode(cfg: StationConfig, ctx: LineContext, station_model: InspectionModel) -> TriggerMode:
    if not ctx.source.live:
        raise ConfigError(f"plant.enabled: trigger mode needs a live source (camera, gige, stream, simulated), "
                          f"not {cfg.source.kind!r}")
    judges = Judges(recipe_models(cfg, station_model), cfg.frame_mapping)
    names = {n: r.name for n, r in cfg.plant.numbered().items()}
    frames = FreshestFrame()
    results: queue.Queue = queue.Queue()  # bounded by the handshake's buffer: at most one inspection at a time

    def record_error(result: TriggerResult) -> None:
        results.put(TriggerErrorItem(result, names.get(result.recipe, str(result.recipe))))

    inspector = TriggeredInspector(ctx, frames, judges, names, results, cfg.plant.frame_timeout_s)
    plant = build_station(cfg.plant, inspector, on_error_result=record_error)
    m.TRIGGERS.watch(lambda: plant.core.snapshot().counters)  # /metrics reads the handshake's own counters
    return TriggerMode(plant, frames, results, judges)
