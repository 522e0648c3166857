"""The typed request and response bodies of the API (pydantic): what OpenAPI documents is what is sent."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge_service.ingest_rules import IngestResult, Line64, Line128, Line330, Text2000
from edge_service.settings import MAX_BATCH
from inspection.schema import SEGMENT, STATION_LEVELS, InspectionResult, Region, Verdict

ReviewDecision = Literal["confirmed_defect", "false_alarm", "unsure"]
ReviewState = Literal["unreviewed", "confirmed_defect", "false_alarm", "unsure"]
Role = Literal["edge", "operator", "qa", "admin"]
ImageKind = Literal["original", "overlay", "heatmap"]  # heatmap: the colour-mapped anomaly map


# ------------------------------------------------------------------------------------------------ errors


class ProblemDetail(BaseModel):
    loc: list[str | int] = Field(description="where in the request: body, query, path, header, then the field")
    msg: str
    type: str


class ProblemBody(BaseModel):
    """Every refusal: a short machine reason, a message naming what was wrong, and for invalid requests the
    individual problems."""

    error: str = Field(description="machine-readable reason, e.g. invalid_request, forbidden, not_found")
    message: str
    detail: list[ProblemDetail] | None = None


# ---------------------------------------------------------------------------------------- health, ingest


class HealthStatus(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyStatus(BaseModel):
    status: Literal["ready", "database unreachable"]


class IngestBatch(BaseModel):
    results: list[IngestResult] = Field(max_length=MAX_BATCH,
                                            description="schema-versioned inspection results, each with its station")


class IngestResponse(BaseModel):
    stored: list[str]
    duplicates: list[str]


# ------------------------------------------------------------------------------------- results, reviews


class StoredResult(InspectionResult):
    """A result as stored: the record as received, with its review state and the time it arrived."""

    review_state: ReviewState
    defect_class: str | None = None
    received_at: datetime


class ReviewIn(BaseModel):
    decision: ReviewDecision
    defect_class: Line64 | None = None
    comment: Text2000 | None = None


class ReviewRecord(BaseModel):
    decision: ReviewDecision
    defect_class: str | None
    comment: str | None
    reviewer: str
    created_at: datetime


class ResultDetail(StoredResult):
    """One stored result with its review history (oldest first) and the kinds of image kept for it."""

    reviews: list[ReviewRecord]
    images: list[ImageKind]


class ResultPage(BaseModel):
    items: list[StoredResult] = Field(description="newest first")
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class LiveEvent(InspectionResult):
    """What the live stream sends for each newly stored result."""

    station_path: str


LiveFields = Literal["full", "slim"]


class LiveEventSlim(BaseModel):
    """What the live stream sends for each newly stored result with ``fields=slim``: only what a live display
    needs, about 40 % of the bytes of a LiveEvent. The whole record is ``GET /api/v1/results/{inspection_id}``
    and its images ``GET /api/v1/results/{inspection_id}/images/{kind}``. The fields keep the order they have in
    the published record (station_path last), so a stored result is framed straight from its own JSON."""

    inspection_id: uuid.UUID
    part_id: str | None = None
    captured_at: datetime | None = None
    inspected_at: datetime
    verdict: Verdict
    score: float
    threshold: float
    image_width: int
    image_height: int
    regions: list[Region]
    station_path: str


# ------------------------------------------------------------------------------------------------- stats


class HourCount(BaseModel):
    hour: datetime
    total: int
    fail: int


class DefectClassCount(BaseModel):
    defect_class: str
    count: int


class Stats(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    station: str | None
    since: datetime
    until: datetime
    total: int
    passed: int = Field(alias="pass")
    fail: int
    yield_: float | None = Field(alias="yield", description="share of PASS; null when there were no parts")
    defect_rate: float | None
    hourly: list[HourCount]
    top_defect_classes: list[DefectClassCount]


# ----------------------------------------------------------------------------------------- administration


_SEGMENT = SEGMENT.strip("^$")
STATION_PATH_PATTERN = f"^{_SEGMENT}(/{_SEGMENT}){{4}}$"  # documented in the schema; checked by StationContext
STATION_PREFIX_PATTERN = f"^{_SEGMENT}(/{_SEGMENT}){{0,4}}$"  # documented; checked by check_station_prefix


class StationIn(BaseModel):
    path: Line330 = Field(description="site/area/line/cell/station",
                          json_schema_extra={"pattern": STATION_PATH_PATTERN})


class StationCreated(BaseModel):
    path: str
    created: bool = Field(description="false when the station was already known")


MAX_PREFIX_LENGTH = 330


def check_station_prefix(prefix: str) -> str:
    """A token's station scope: one to five whole segments of a station path, no leading or trailing '/'."""
    parts = prefix.split("/")
    if len(prefix) > MAX_PREFIX_LENGTH or len(parts) > len(STATION_LEVELS) or not all(
            re.fullmatch(SEGMENT, p) for p in parts):
        raise ValueError(f"station_prefix {prefix[:80]!r}: give whole segments of a station path "
                         "(site, site/area, ... up to site/area/line/cell/station) without a leading or trailing "
                         "'/'; each segment starts with a letter or digit and has only letters, digits, '_', '.' "
                         "and '-' (at most 64)")
    return prefix


def check_scope(role: str, station_prefix: str | None) -> None:
    if station_prefix is not None and role != "edge":
        raise ValueError(f"station_prefix: only edge tokens are scoped to stations, not role {role!r}")


class TokenIn(BaseModel):
    # documented as well as checked (check_scope): only an edge token may have a station prefix
    model_config = ConfigDict(json_schema_extra={
        "if": {"properties": {"role": {"not": {"const": "edge"}}}, "required": ["role"]},
        "then": {"properties": {"station_prefix": {"type": "null"}}}})

    name: Line128 = Field(min_length=1)
    role: Role
    station_prefix: str | None = Field(default=None, max_length=MAX_PREFIX_LENGTH,
                                       description="edge only: the token may write only stations under this path",
                                       json_schema_extra={"pattern": STATION_PREFIX_PATTERN})

    @field_validator("station_prefix")
    @classmethod
    def _whole_segments(cls, prefix: str | None) -> str | None:
        return None if prefix is None else check_station_prefix(prefix)

    @model_validator(mode="after")
    def _edge_only(self) -> TokenIn:
        check_scope(self.role, self.station_prefix)
        return self


class TokenInfo(BaseModel):
    """A token as listed: never the secret."""

    id: str
    name: str
    role: Role
    station_prefix: str | None
    created_at: datetime
    revoked_at: datetime | None


class NewTokenOut(BaseModel):
    id: str
    token: str = Field(description="the secret, shown only in this answer")
    role: Role
    name: str
    station_prefix: str | None
    note: str = "shown once; store it now"
