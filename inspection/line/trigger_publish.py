"""Publish in trigger mode: inspected parts are committed like every result (with the trigger's sequence
number and recipe), and error results (a trigger answered BUSY, CAMERA or INSPECTION_FAILED) are committed
as :class:`TriggerErrorRecord` so that every trigger leaves a record in the outbox.

An error record has no verdict, so the results service (which stores inspected parts) would refuse it: it is
delivered over MQTT only (on the result topic, ``"kind": "trigger_error"``); for HTTP it is set aside in the
outbox at once, kept and listed by ``inspection outbox list`` with the reason.
"""

from __future__ import annotations

import queue
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from inspection.line.image_writer import ImageWriter
from inspection.line.local_images import LocalImages
from inspection.line.outbox import REJECTED, Outbox
from inspection.line.stages import End, Inspected, LineContext, PublishHooks, PublishSettings, PublishStage
from inspection.line.triggered import TriggeredItem, TriggerErrorItem
from inspection.schema import SCHEMA_VERSION, StationContext

ANSWER_WAIT_S = 1.0  # at most this long for the handshake to take a committed result before its images go on
HTTP_SET_ASIDE = "trigger error result: no verdict to store (delivered over MQTT only)"


class TriggerErrorRecord(BaseModel):
    """The record of a trigger answered with an error result instead of a verdict."""

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    kind: Literal["trigger_error"] = "trigger_error"
    inspection_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    station: StationContext
    part_id: str | None
    trigger_sequence: int
    recipe: str
    error_code: int
    error: str  # the code's name: BUSY, CAMERA, INSPECTION_FAILED
    message: str
    triggered_at: datetime
    inspected_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class TriggeredPublishStage(PublishStage):
    """The publish stage of a triggered station: the record is committed, then the result is announced (the
    handshake's Result Ready), then the images are written by the :class:`ImageWriter` and the live feeds
    (Sparkplug B, drift) are told: only the durable commit stands between the model and Result Ready."""

    def __init__(self, ctx: LineContext, settings: PublishSettings, inbox: queue.Queue, images: LocalImages,
                 hooks: PublishHooks, rng: np.random.Generator, writer: ImageWriter,
                 wait_answered: Callable[[int, float], bool] | None = None):
        super().__init__(ctx, settings, inbox, images, hooks, rng)
        self.writer = writer
        # the handshake's: the work after a commit waits until the result is in the handshake's buffer, so it
        # does not compete with the handshake's own bookkeeping for the interpreter
        self.wait_answered = wait_answered

    def run(self) -> None:
        outbox = self._open()
        while True:
            item = self.inbox.get()
            if isinstance(item, End):
                return
            if isinstance(item, TriggerErrorItem):
                self._commit_error(outbox, item)
                self.hooks.on_commit()
                continue
            assert isinstance(item, TriggeredItem) and item.result is not None and item.image is not None
            self.in_flight = item.frame
            try:
                record, job = self._commit(outbox, item, item.result, item.image, defer_images=True)
            except BaseException as exc:
                item.error = f"{type(exc).__name__}: {exc}"
                item.committed.set()
                raise
            self.in_flight = None
            self.done += 1
            item.committed.set()  # durable: the handshake may announce it now
            if self.wait_answered is not None and item.trigger is not None:
                self.wait_answered(item.trigger.sequence, ANSWER_WAIT_S)
            if job is not None:
                self.writer.submit(job)
            self.hooks.committed(record)
            self.ctx.source.finished(item.frame, ok=True)
            self.hooks.on_commit()
            self.images.sweep()

    def _images_planned(self, inspection_id: str, planned: bool) -> None:
        if planned:
            self.writer.pending.add(inspection_id)
        else:
            self.writer.pending.done(inspection_id)

    def _context(self, item: Inspected) -> dict:
        if isinstance(item, TriggeredItem) and item.trigger is not None:
            return {"trigger_sequence": item.trigger.sequence, "recipe": item.trigger.recipe}
        return {}

    def _commit_error(self, outbox: Outbox, item: TriggerErrorItem) -> None:
        r = item.result
        record = TriggerErrorRecord(station=self.s.station, part_id=r.part_id or None, trigger_sequence=r.sequence,
                                    recipe=item.recipe, error_code=int(r.error), error=r.error.name,
                                    message=r.message, triggered_at=r.triggered_at)
        rid = str(record.inspection_id)
        self._add(outbox, rid, record.model_dump_json(), None, None)
        if "http" in self.s.enabled:
            outbox.mark("http", [rid], REJECTED, HTTP_SET_ASIDE)
        self.hooks.committed(record)

    def close(self) -> None:
        try:
            self.writer.close()  # the images of everything committed are written before publish says it ended
        finally:
            super().close()

    def drain_failed(self) -> None:
        while not isinstance(item := self.inbox.get(), End):
            if isinstance(item, TriggeredItem):
                item.error = "the runner stopped on an error"
                item.committed.set()
                self.ctx.frame_failed(item.frame, "the runner stopped on an error")
