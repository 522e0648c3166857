"""The operator pages' data: stations under a prefix with their last verdict, age and shift counters."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from edge_service import operator_view
from edge_service.dependencies import Database, Reader, Settings
from edge_service.errors import documented
from edge_service.ingest_rules import Line330
from edge_service.shifts import current_shift, parse_shift_starts, parse_zone

router = APIRouter(prefix="/api/v1/operator", tags=["operator"])


@router.get("/overview", responses=documented(400, 401, 403, 422))
def get_overview(_who: Reader, engine: Database, settings: Settings,
                 station: Line330 | None = None) -> operator_view.Overview:
    """Every station under the ``station`` prefix (all without one): last result, its age, and the current
    shift's good/NG counts and yield (shifts from the service's settings), and the run of FAILs."""
    now = datetime.now(UTC)
    shift = current_shift(now, parse_shift_starts(settings.shift_starts), parse_zone(settings.shift_timezone))
    return operator_view.overview(engine, station, now, shift)
