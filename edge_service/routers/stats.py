"""Counts, yield and defect rate over a time window, per hour and by defect class."""

from __future__ import annotations

from fastapi import APIRouter

from edge_service import store
from edge_service.api_models import Stats
from edge_service.dependencies import Database, Reader
from edge_service.errors import InvalidRequest, documented
from edge_service.ingest_rules import AcceptedTime, Line330

router = APIRouter(prefix="/api/v1", tags=["results"])


@router.get("/stats", responses=documented(400, 401, 403, 422))
def get_stats(_who: Reader, engine: Database, station: Line330 | None = None,
              since: AcceptedTime | None = None, until: AcceptedTime | None = None) -> Stats:
    """The last 24 hours unless ``since``/``until`` say otherwise (``since`` equal to ``until``: an empty range)."""
    if since and until and since > until:
        raise InvalidRequest("since must not be after until")
    return store.stats(engine, station, since, until)
