"""Ingest a batch of results, list them with filters and cursor pagination, fetch one."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from edge_service import store
from edge_service.api_models import IngestBatch, IngestResponse, ResultDetail, ResultPage, ReviewState
from edge_service.auth import Principal
from edge_service.dependencies import Database, Feed, Ingest, Reader, Settings
from edge_service.errors import Forbidden, InvalidResult, NotFound, documented
from edge_service.ingest_rules import AcceptedTime, IngestResult, Line64, Line330, Line500, too_far_ahead
from edge_service.live import LiveFeed
from edge_service.observability import DUPLICATES, INGEST_LATENCY, INGESTED
from inspection.schema import InspectionResult

router = APIRouter(prefix="/api/v1/results", tags=["results"])
StationPrefix = Annotated[Line330 | None, Query(description="station path prefix, e.g. plant1/area2")]


def _check_batch(batch: list[IngestResult], who: Principal, max_future_skew_s: float) -> None:
    missing = [f"results[{i}].station" for i, r in enumerate(batch) if r.station is None]
    if missing:
        raise InvalidResult(f"{', '.join(missing[:20])}: missing; every result needs its "
                            "site/area/line/cell/station")
    forbidden = sorted({r.station.path for r in batch if r.station and not who.may_write_station(r.station.path)})
    if forbidden:
        raise Forbidden(f"token {who.name!r} may only ingest for stations under {who.station_prefix!r}; "
                        f"not {', '.join(forbidden)}")
    late = too_far_ahead(batch, datetime.now(UTC), max_future_skew_s)
    if late:
        raise InvalidResult("; ".join(late[:20]))


def _announce(feed: LiveFeed, batch: Sequence[InspectionResult], stored: list[str]) -> None:
    if not feed.subscribers or not stored:  # only pay for the live events when someone watches
        return
    new = set(stored)
    feed.publish_results([r for r in batch if r.station and str(r.inspection_id) in new])


@router.post("", responses=documented(400, 401, 403, 413, 422, 503,
                                      described={422: "invalid result or unknown station"}))
async def ingest(body: IngestBatch, who: Ingest, engine: Database, feed: Feed, settings: Settings
                 ) -> IngestResponse:
    started = time.perf_counter()
    _check_batch(body.results, who, settings.max_future_skew_s)
    outcome = await asyncio.to_thread(store.ingest, engine, body.results)
    INGESTED.inc(len(outcome.stored))
    DUPLICATES.inc(len(outcome.duplicates))
    _announce(feed, body.results, outcome.stored)
    INGEST_LATENCY.observe(time.perf_counter() - started)
    return IngestResponse(stored=outcome.stored, duplicates=outcome.duplicates)


@router.get("", responses=documented(400, 401, 403, 422))
def list_results(
    _who: Reader,
    engine: Database,
    station: StationPrefix = None,
    verdict: Literal["PASS", "FAIL"] | None = None,
    since: AcceptedTime | None = None,
    until: AcceptedTime | None = None,
    min_score: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    max_score: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    review_state: ReviewState | None = None,
    model_version: Line64 | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Line500 | None = None,
) -> ResultPage:
    """Newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    q = store.ResultQuery(station, verdict, since, until, min_score, max_score, review_state, model_version,
                          limit, cursor)
    items, next_cursor = store.query(engine, q)
    return ResultPage(items=items, next_cursor=next_cursor)


@router.get("/{inspection_id}", responses=documented(400, 401, 403, 404, 422))
def get_result(inspection_id: uuid.UUID, _who: Reader, engine: Database) -> ResultDetail:
    found = store.get(engine, str(inspection_id))
    if found is None:
        raise NotFound(f"no result {inspection_id}")
    return found
