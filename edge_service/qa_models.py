"""Typed request and response bodies of the QA workstation's API (review queue, trends, thresholds, audit)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from edge_service.api_models import ReviewDecision, ReviewRecord, StoredResult, check_station_prefix


class Whoami(BaseModel):
    name: str
    role: str
    can_review: bool = Field(description="whether this token may review results and change thresholds")
    can_audit: bool = Field(description="whether this token may read the audit log (admin)")


class QueueItem(StoredResult):
    """A result in the review queue, with the kinds of image kept for it (for the thumbnail)."""

    images: list[str]


class QueuePage(BaseModel):
    items: list[QueueItem] = Field(description="newest first")
    next_cursor: str | None


class BulkReviewIn(BaseModel):
    inspection_ids: list[uuid.UUID] = Field(min_length=1, max_length=500)
    decision: ReviewDecision
    defect_class: str | None = Field(default=None, max_length=64)
    comment: str | None = Field(default=None, max_length=2000)


class BulkReviewOut(BaseModel):
    reviewed: list[str]
    reviewer: str


class ReviewHistory(BaseModel):
    inspection_id: str
    reviews: list[ReviewRecord]


class DefectClassesIn(BaseModel):
    station_prefix: str = Field(min_length=1, max_length=330, description="site, site/area, ... (whole segments)")
    names: list[str] = Field(max_length=50)

    @field_validator("station_prefix")
    @classmethod
    def _whole_segments(cls, prefix: str) -> str:
        return check_station_prefix(prefix)


class DefectClasses(BaseModel):
    station: str
    names: list[str]


# ------------------------------------------------------------------------------------------------ trends

Bucket = Literal["hour", "day"]


class TrendPoint(BaseModel):
    start: datetime
    total: int
    fail: int
    yield_rate: float | None
    defect_rate: float | None


class ParetoRow(BaseModel):
    defect_class: str
    count: int
    cumulative_share: float


class HistogramBin(BaseModel):
    low: float
    high: float
    passed: int
    failed: int


class ModelVersionRow(BaseModel):
    model_version: str
    total: int
    fail: int
    reviewed: int
    confirmed_defects: int
    false_alarms: int
    escapes: int = Field(description="PASS results that a reviewer confirmed as defects")


class RegionCell(BaseModel):
    """One cell of the grid laid over the part (row 0 is the top): how many FAIL regions centre in it."""

    row: int
    column: int
    regions: int


class Trends(BaseModel):
    station: str | None
    since: datetime
    until: datetime
    bucket: Bucket
    series: list[TrendPoint]
    pareto: list[ParetoRow]
    scores: list[HistogramBin]
    thresholds: list[float] = Field(description="the distinct thresholds results were judged with")
    models: list[ModelVersionRow]
    region_grid_size: int = Field(description="the grid is size x size cells over the image")
    region_grid: list[RegionCell] = Field(description="where on the part FAIL regions occur (non-empty cells)")


# ---------------------------------------------------------------------------------------------- thresholds


class EvidenceBin(BaseModel):
    low: float
    high: float
    confirmed_defects: int
    false_alarms: int


class RatePoint(BaseModel):
    threshold: float
    false_reject_rate: float | None = Field(description="share of false alarms that this threshold still rejects")
    escape_rate: float | None = Field(description="share of confirmed defects that this threshold passes")


class ThresholdEvidence(BaseModel):
    station: str
    model_version: str | None
    confirmed_defects: int
    false_alarms: int
    current_threshold: float | None
    histogram: list[EvidenceBin]
    curve: list[RatePoint]
    target_false_reject_rate: float
    proposed_threshold: float | None
    proposed: RatePoint | None
    what_if: RatePoint | None = Field(default=None, description="the rates at the threshold asked for (`at`)")
    note: str | None = None


class ThresholdIn(BaseModel):
    threshold: float = Field(gt=0, allow_inf_nan=False, description="a finite positive number")
    model_version: str | None = Field(default=None, max_length=64)
    reason: str = Field(min_length=1, max_length=2000, description="why the threshold changes (audited)")


class AssignedModel(BaseModel):
    """A model an assignment names, with where to download it."""

    name: str
    version: str
    sha256: str
    size_bytes: int
    download_url: str = Field(description="GET it with an edge, qa or admin token")


class Assignment(BaseModel):
    """What a station should run: the line runner polls this."""

    station: str
    model_version: str | None
    threshold: float | None = Field(description="null: judge with the model's own threshold")
    updated_by: str | None
    updated_at: datetime | None
    model: AssignedModel | None = Field(default=None, description="null: no model assigned on the service")
    shadow: AssignedModel | None = Field(default=None, description="a candidate run beside the live model, "
                                                                   "its verdicts recorded, never acted on")


class StationAssignment(Assignment):
    """The station's assignment with the earlier ones (newest first) that rollback returns to."""

    previous: list[Assignment]


# ------------------------------------------------------------------------------------------------ models

ModelName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class ModelVersion(BaseModel):
    """An uploaded model: its name and version (from its metadata), file digest and card."""

    name: str
    version: str
    sha256: str
    size_bytes: int
    preset: str | None
    uploaded_by: str
    uploaded_at: datetime
    note: str | None
    card: dict[str, Any] = Field(description="the model's inspection.* metadata: input size, threshold and "
                                             "calibration, good-score stats, head, training set, ...")
    download_url: str


class ModelRefIn(BaseModel):
    model_name: ModelName
    model_version: ModelName


class AssignmentIn(ModelRefIn):
    threshold: float | None = Field(default=None, gt=0, allow_inf_nan=False,
                                    description="a finite positive number; null: the model's own")
    reason: str = Field(min_length=1, max_length=2000, description="why (audited)")
    shadow: ModelRefIn | None = Field(default=None, description="a candidate model to run in shadow mode")


class RollbackIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, description="why (audited)")


class _PrefixIn(BaseModel):
    station_prefix: str = Field(min_length=1, max_length=330, description="site, site/area, ... (whole segments)")

    @field_validator("station_prefix")
    @classmethod
    def _whole_segments(cls, prefix: str) -> str:
        return check_station_prefix(prefix)


class PrefixAssignmentIn(AssignmentIn, _PrefixIn):
    """The same assignment for every registered station under a prefix."""


class PrefixRollbackIn(RollbackIn, _PrefixIn):
    """Every station under a prefix back to its previous assignment (all or none)."""


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    old_value: str | None
    new_value: str | None
    reason: str | None


class ShadowDisagreement(BaseModel):
    inspection_id: str
    inspected_at: datetime
    part_id: str | None
    live_verdict: str
    live_score: float
    shadow_verdict: str
    shadow_score: float


class ShadowPair(BaseModel):
    """Live against shadow verdicts of one live model and one candidate, on the same parts."""

    live_model: str
    live_version: str
    shadow_model: str
    shadow_version: str
    compared: int
    both_pass: int
    both_fail: int
    only_live_fail: int = Field(description="the live model failed the part, the candidate would have passed it")
    only_shadow_fail: int = Field(description="the live model passed the part, the candidate would have failed it")
    agreement: float
    disagreements: list[ShadowDisagreement] = Field(description="the newest ones first")


class ShadowComparison(BaseModel):
    station: str
    scanned: int = Field(description="results with a shadow verdict read (the newest)")
    pairs: list[ShadowPair]
