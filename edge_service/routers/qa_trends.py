"""Trends for a station prefix and period (JSON for the dashboard, CSV of each table)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from edge_service import qa_trends
from edge_service.dependencies import Database, Reader
from edge_service.errors import InvalidRequest, documented
from edge_service.ingest_rules import AcceptedTime
from edge_service.qa_models import Bucket, Trends
from edge_service.routers.results import StationPrefix

router = APIRouter(prefix="/api/v1/qa", tags=["qa"])
MAX_PERIOD_DAYS = {"hour": 14, "day": 400}


def _trends(engine, station: str | None, since: datetime | None, until: datetime | None, bucket: Bucket) -> Trends:
    if since and until and since >= until:
        raise InvalidRequest(f"since {since.isoformat()} is not before until {until.isoformat()}")
    t = qa_trends.trends(engine, station, since, until, bucket)
    if (t.until - t.since).days > MAX_PERIOD_DAYS[bucket]:
        raise InvalidRequest(f"a period of {(t.until - t.since).days} days is too long for bucket={bucket} "
                             f"(at most {MAX_PERIOD_DAYS[bucket]}); use bucket=day or a shorter period")
    return t


@router.get("/trends", responses=documented(400, 401, 403, 422))
def trends(_who: Reader, engine: Database, station: StationPrefix = None, since: AcceptedTime | None = None,
           until: AcceptedTime | None = None, bucket: Bucket = "hour") -> Trends:
    """Yield and defect rate over time, Pareto of reviewed defect classes, where on the part FAIL regions
    occur, score distributions, per model version counts; the period defaults to the last 24 hours."""
    return _trends(engine, station, since, until, bucket)


@router.get("/trends.csv", response_class=Response, responses=documented(400, 401, 403, 422))
def trends_csv(_who: Reader, engine: Database,
               table: Annotated[Literal["series", "pareto", "scores", "models", "regions"], Query()],
               station: StationPrefix = None, since: AcceptedTime | None = None, until: AcceptedTime | None = None,
               bucket: Bucket = "hour") -> Response:
    """One table of the trends as CSV."""
    t = _trends(engine, station, since, until, bucket)
    name = f"trends-{table}.csv"
    return Response(qa_trends.to_csv(t, table), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
