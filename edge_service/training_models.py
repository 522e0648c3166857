"""Typed bodies of the training API: a job (state, progress, log tail, report) and its evaluation and
calibration report, as read from the trainer's own report files."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
ACTIVE_STATES = ("queued", "running")
Preset = Literal["fast", "balanced", "accurate"]  # inspection.model.presets (not imported: no numpy here)
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class ScoreSummary(BaseModel):
    count: int
    mean: float
    std: float
    min: float
    p50: float
    p99: float
    max: float


class ThresholdSummary(BaseModel):
    threshold: float
    false_reject_rate: float
    escape_rate: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None


class KindSummary(BaseModel):
    kind: str
    images: int
    defect_images: int = 0
    image_auroc: float | None = None
    pixel_auroc: float | None = None
    aupro: float | None = None


class EvaluationSummary(BaseModel):
    """`inspection eval` on the held-out good images and the labelled defects."""

    good_images: int
    defect_images: int
    image_auroc: float | None
    pixel_auroc: float | None
    aupro: float | None
    f1: float | None
    false_reject_rate: float
    per_kind: list[KindSummary]
    errors: list[str] = []


class TrainingReport(BaseModel):
    """The trainer's calibration report (and the evaluation when defects were given)."""

    threshold: float
    policy: str
    target_frr: float
    good_count: int = Field(description="held-out good images the threshold was calibrated on")
    defect_count: int
    chosen: ThresholdSummary = Field(description="the figures at the model's threshold")
    f1_threshold: ThresholdSummary | None = None
    good_scores: ScoreSummary
    defect_scores: ScoreSummary | None = None
    notes: list[str] = []
    evaluation: EvaluationSummary | None = None


class PublishedModel(BaseModel):
    name: str
    version: str
    sha256: str
    published_by: str
    published_at: datetime


class TrainingJob(BaseModel):
    id: str
    state: JobState
    name: str
    version: str
    preset: Preset
    target_frr: float
    created_by: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    good_images: int = Field(description="images in the memory bank")
    held_out_images: int = Field(description="good images held out for calibration")
    defect_images: int = 0
    masks: int = 0
    sources: list[str] = Field(description="where the good images came from: 'zip' and/or 'results'")
    stage: str | None = None
    progress: float = Field(0.0, ge=0, le=1)
    error: str | None = None
    log_tail: list[str] = []
    report: TrainingReport | None = None
    published: PublishedModel | None = None


class PublishIn(BaseModel):
    note: str | None = Field(default=None, max_length=2000)
