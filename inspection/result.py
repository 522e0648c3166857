"""The inspection result: what the model says about one part, and the schema-versioned record of it that
is published (MQTT), stored (results service) and written by `inspection inspect`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

SCHEMA_VERSION = "1.0"
Verdict = Literal["PASS", "FAIL"]


class Region(BaseModel):
    """A connected area of the anomaly map above the threshold, in the image's own pixel coordinates."""

    x: int
    y: int
    width: int
    height: int
    area_px: int
    peak_score: float


class StageTimings(BaseModel):
    """Milliseconds per stage; stages that did not run for this result are None."""

    capture_wait_ms: float | None = None
    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float
    publish_ms: float | None = None


class ModelInfo(BaseModel):
    name: str
    version: str
    sha256: str


# A segment of the station path: safe in URLs, file names and MQTT topics (no '/', '+', '#', spaces).
SEGMENT = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
STATION_LEVELS = ("site", "area", "line", "cell", "station")


class StationContext(BaseModel):
    """Where the part was inspected, as an ISA-95 equipment path."""

    site: str = Field(pattern=SEGMENT)
    area: str = Field(pattern=SEGMENT)
    line: str = Field(pattern=SEGMENT)
    cell: str = Field(pattern=SEGMENT)
    station: str = Field(pattern=SEGMENT)

    @classmethod
    def from_path(cls, path: str) -> StationContext:
        parts = path.strip("/").split("/")
        if len(parts) != len(STATION_LEVELS):
            raise ValueError(f"station path {path!r} must have five parts: site/area/line/cell/station")
        return cls(**dict(zip(STATION_LEVELS, parts, strict=True)))

    @property
    def path(self) -> str:
        return "/".join((self.site, self.area, self.line, self.cell, self.station))


class InspectionResult(BaseModel):
    """The published record of one inspection (no pixels: images travel separately, keyed by id)."""

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    inspection_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    station: StationContext | None = None
    part_id: str | None = None
    source: str | None = Field(default=None, description="where the frame came from: file name, camera, ...")
    captured_at: datetime | None = None
    inspected_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    model: ModelInfo
    verdict: Verdict
    score: float
    threshold: float
    image_width: int
    image_height: int
    regions: list[Region]
    timings: StageTimings


@dataclass
class Inspection:
    """What :meth:`InspectionModel.inspect` returns: the verdict with the anomaly map for this image."""

    verdict: Verdict
    score: float
    threshold: float
    anomaly_map: np.ndarray = field(repr=False)  # float32, the image's own height x width
    regions: list[Region]
    timings: StageTimings
    model: ModelInfo

    def to_result(self, **context) -> InspectionResult:
        """The schema-versioned record; ``context`` sets station, part_id, source, captured_at, timings, ..."""
        h, w = self.anomaly_map.shape
        fields = {"model": self.model, "verdict": self.verdict, "score": self.score, "threshold": self.threshold,
                  "image_width": w, "image_height": h, "regions": self.regions, "timings": self.timings}
        return InspectionResult(**(fields | context))
