"""The ingest boundary: what the service accepts, stricter than the published record (inspection.schema).

Times lie in the accepted range (2000-01-01 to 2100-01-01 UTC; results also no further into the future than
``ServiceSettings.max_future_skew_s``). Strings are valid Unicode without control characters (free text may
have tabs and line breaks) and no longer than their database columns. Numbers are strictly typed (no
``"0.3"``, no ``true``) and finite; the verdict agrees with score and threshold (FAIL exactly when score >
threshold, the runtime's rule); image sizes are sane and regions lie inside the image. Everything refused
here is a 422 naming the field, the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, Strict, StringConstraints, model_validator

from inspection.schema import (
    FrameArea,
    FrameMappingInfo,
    InspectionResult,
    ModelInfo,
    Region,
    ShadowVerdict,
    StageTimings,
)

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def in_time_range(t: datetime) -> datetime:
    """Refuses times outside [EARLIEST, LATEST); a naive time is taken as UTC."""
    # the year of the wall time first: converting 9999-12-31T23:59:59-14:00 to UTC would overflow
    in_range = EARLIEST.year - 1 <= t.year <= LATEST.year and EARLIEST <= (
        t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)) < LATEST
    if not in_range:
        raise ValueError(f"{t.isoformat()} is outside the accepted range {EARLIEST:%Y-%m-%d} to "
                         f"{LATEST:%Y-%m-%d} (UTC)")
    return t


_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def written_as_date_time(v: object) -> object:
    """Refuses a number (or a string that is one) where a time belongs: the schema says ISO 8601 date-time,
    and a Unix time read as such would be a guess."""
    if isinstance(v, int | float) or (isinstance(v, str) and _NUMBER.fullmatch(v)):
        raise ValueError("must be an ISO 8601 date-time such as 2026-12-01T08:00:00Z, not a number")
    return v


AcceptedTime = Annotated[datetime, BeforeValidator(written_as_date_time), AfterValidator(in_time_range)]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LAYOUT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # tab, LF and CR allowed


def _clean(v: str, control: re.Pattern[str]) -> str:
    """Runs for every string of every ingested result: the common case (ASCII, no control character) costs a
    flag check and one regex scan."""
    if not v.isascii():  # an ASCII string has no surrogate
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("contains a lone surrogate (not valid Unicode)") from None
    if control.search(v) is not None:
        found = sorted({f"U+{ord(c):04X}" for c in control.findall(v)})
        raise ValueError(f"contains control characters ({', '.join(found[:5])})")
    return v


def clean_line(v: str) -> str:
    """One line of text: valid Unicode, no control characters (never the value in the message)."""
    return _clean(v, _CONTROL)


def clean_text(v: str) -> str:
    """Free text: like :func:`clean_line`, but tabs and line breaks are allowed."""
    return _clean(v, _CONTROL_BUT_LAYOUT)


# the same rules, documented in the OpenAPI schema (checked by clean_line / clean_text, whose messages name them)
_LINE = Field(json_schema_extra={"pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"})
_TEXT = Field(json_schema_extra={"pattern": "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"})
CleanLine = Annotated[str, AfterValidator(clean_line), _LINE]  # one line, its length checked elsewhere
Line64 = Annotated[str, StringConstraints(max_length=64), AfterValidator(clean_line), _LINE]
Line128 = Annotated[str, StringConstraints(max_length=128), AfterValidator(clean_line), _LINE]
Line330 = Annotated[str, StringConstraints(max_length=330), AfterValidator(clean_line), _LINE]
Line500 = Annotated[str, StringConstraints(max_length=500), AfterValidator(clean_line), _LINE]
Text1024 = Annotated[str, StringConstraints(max_length=1024), AfterValidator(clean_text), _TEXT]
Text2000 = Annotated[str, StringConstraints(max_length=2000), AfterValidator(clean_text), _TEXT]


MAX_SIDE = 100_000  # pixels
MAX_REGIONS = 1000
MAX_STAGE_MS = 86_400_000.0
Finite = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Milliseconds = Annotated[float, Strict(), Field(allow_inf_nan=False, ge=0, le=MAX_STAGE_MS)]
Side = Annotated[int, Strict(), Field(ge=1, le=MAX_SIDE)]
Offset = Annotated[int, Strict(), Field(ge=0, le=MAX_SIDE)]
Area = Annotated[int, Strict(), Field(ge=0, le=MAX_SIDE * MAX_SIDE)]


class IngestRegion(Region):
    x: Offset
    y: Offset
    width: Side
    height: Side
    area_px: Area
    peak_score: Finite


class IngestTimings(StageTimings):
    capture_wait_ms: Milliseconds | None = None
    preprocess_ms: Milliseconds
    inference_ms: Milliseconds
    postprocess_ms: Milliseconds
    publish_ms: Milliseconds | None = None


class IngestModelInfo(ModelInfo):
    name: Line128
    version: Line64
    sha256: Line64


def _verdict_agrees(verdict: str, score: float, threshold: float, what: str = "verdict") -> None:
    expected = "FAIL" if score > threshold else "PASS"
    if verdict != expected:
        raise ValueError(f"{what} {verdict} contradicts score {score:g} and threshold {threshold:g} (FAIL exactly "
                         "when score > threshold)")


class IngestShadow(ShadowVerdict):
    """A shadow model's verdict, held to the same rules as the live one."""

    model: IngestModelInfo
    score: Finite
    threshold: Finite

    @model_validator(mode="after")
    def _consistent(self) -> IngestShadow:
        _verdict_agrees(self.verdict, self.score, self.threshold, "shadow verdict")
        return self


class IngestFrameArea(FrameArea):
    x: Offset
    y: Offset
    width: Side
    height: Side


class IngestFrameMapping(FrameMappingInfo):
    """How the frame was shown to the model: the area inside the image (checked with the record), sane counts."""

    area: IngestFrameArea
    views: Annotated[int, Strict(), Field(ge=1, le=100_000)] = 1
    tile_width: Side | None = None
    tile_height: Side | None = None
    overlap: Annotated[float, Strict(), Field(allow_inf_nan=False, ge=0, le=0.9)] | None = None


class IngestResult(InspectionResult):
    """A result as the service accepts it."""

    part_id: Line128 | None = None
    source: Text1024 | None = Field(default=None, description="where the frame came from: file name, camera, ...")
    model: IngestModelInfo
    score: Finite
    threshold: Finite
    image_width: Side
    image_height: Side
    regions: list[IngestRegion] = Field(max_length=MAX_REGIONS)  # type: ignore[assignment]
    timings: IngestTimings
    input_conversion: Line128 | None = None
    recipe: Line64 | None = None
    shadow: IngestShadow | None = None
    frame_mapping: IngestFrameMapping | None = None
    captured_at: AcceptedTime | None = None
    inspected_at: AcceptedTime = Field(default_factory=lambda: datetime.now(UTC))

    @model_validator(mode="after")
    def _consistent(self) -> IngestResult:
        _verdict_agrees(self.verdict, self.score, self.threshold)
        for i, r in enumerate(self.regions):
            if r.x + r.width > self.image_width or r.y + r.height > self.image_height:
                raise ValueError(f"regions.{i} ({r.x}, {r.y}, {r.width} x {r.height}) lies outside the "
                                 f"{self.image_width} x {self.image_height} image")
        a = self.frame_mapping.area if self.frame_mapping else None
        if a is not None and (a.x + a.width > self.image_width or a.y + a.height > self.image_height):
            raise ValueError(f"frame_mapping.area ({a.x}, {a.y}, {a.width} x {a.height}) lies outside the "
                             f"{self.image_width} x {self.image_height} image")
        return self


def too_far_ahead(batch: list[IngestResult], now: datetime, max_skew_s: float) -> list[str]:
    """The fields of results whose times lie more than ``max_skew_s`` after ``now`` (a wrong edge clock)."""
    late = []
    for i, r in enumerate(batch):
        for name in ("captured_at", "inspected_at"):
            t = getattr(r, name)
            if t is not None and ((t if t.tzinfo else t.replace(tzinfo=UTC)) - now).total_seconds() > max_skew_s:
                late.append(f"results.{i}.{name}: {t.isoformat()} is more than {max_skew_s:g} s in the future "
                            "(is the edge box's clock right?)")
    return late
