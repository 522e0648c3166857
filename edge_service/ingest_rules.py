"""The ingest boundary: what the service accepts, stricter than the published record (inspection.schema).

Times lie in the accepted range (2000-01-01 to 2100-01-01 UTC; results also no further into the future than
``ServiceSettings.max_future_skew_s``). Everything refused here is a 422 naming the field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from inspection.schema import InspectionResult

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


AcceptedTime = Annotated[datetime, AfterValidator(in_time_range)]


class IngestResult(InspectionResult):
    """A result as the service accepts it."""

    captured_at: AcceptedTime | None = None
    inspected_at: AcceptedTime = Field(default_factory=lambda: datetime.now(UTC))


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
