"""The schema-versioned result record: what is published (MQTT), stored (results service) and written by
`inspection inspect` for one part. Pydantic only (no numpy, OpenCV or onnxruntime), so the results service
imports this module and nothing else of `inspection`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

SCHEMA_VERSION: Literal["1.0"] = "1.0"
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


class ShadowVerdict(BaseModel):
    """Shadow mode: what a candidate model, run beside the live one on the same frame, would have said.
    Recorded for QA to compare before promoting it; never acted on."""

    model: ModelInfo
    verdict: Verdict
    score: float
    threshold: float


class FrameArea(BaseModel):
    """A rectangle of the frame, in its own pixels."""

    x: int
    y: int
    width: int
    height: int


FrameMappingMode = Literal["resize", "roi", "tiles"]


class FrameMappingInfo(BaseModel):
    """How the frame was shown to the model (``inspection.model.tiling``): ``resize`` the whole frame resized
    to the model's input, ``roi`` one rectangle of it resized, ``tiles`` overlapping tiles of it (or of the
    rectangle) run as one batch, their maps stitched by the maximum. A record without this field (written
    before frame mappings existed) was mapped by ``resize``. Heatmap, regions and image size are in frame
    coordinates whatever the mode."""

    mode: FrameMappingMode
    area: FrameArea = Field(description="the part of the frame inspected (the whole frame unless an roi)")
    views: int = Field(default=1, description="images the model ran on for this frame (tiles: the tile count)")
    tile_width: int | None = Field(default=None, description="tiles: a tile's size in frame pixels")
    tile_height: int | None = None
    overlap: float | None = Field(default=None, description="tiles: the least overlap asked for (fraction)")


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


def under_prefix(station_path: str, prefix: str | None) -> bool:
    """Whether ``station_path`` is ``prefix`` or lies under it, by whole segments ("a/b" is under "a", not
    under "a/b2"); no prefix matches every station. The one matcher used for token scopes, the live feed and
    queries."""
    if not prefix:
        return True
    p = prefix.strip("/")
    return not p or station_path == p or station_path.startswith(p + "/")


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
    input_conversion: str | None = Field(default=None, description="how the frame was converted to 8-bit RGB "
                                         "(mono cameras: grayscale replicated; 16-bit: v / 257), if it was")
    # Trigger mode only (None when the station free-runs): the PLC trigger this result answers, and the recipe
    # (product) whose model inspected the part. Optional, so records without them stay valid (schema 1.0).
    trigger_sequence: int | None = Field(default=None, ge=1, le=2**32 - 1)
    recipe: str | None = Field(default=None, max_length=64)
    # Shadow mode only (None otherwise): the candidate model's verdict on the same frame, not acted on.
    shadow: ShadowVerdict | None = None
    # How the frame was mapped to the model's input (optional, so older records stay valid: they were resized).
    frame_mapping: FrameMappingInfo | None = None
