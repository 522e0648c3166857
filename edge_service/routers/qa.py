"""The QA workstation's API: who am I, the review queue with its filters, bulk reviews, defect classes."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from edge_service import qa_queue, store
from edge_service.api_models import ReviewState
from edge_service.auth import Principal
from edge_service.dependencies import Database, Reader, Reviewer
from edge_service.errors import InvalidRequest, NotFound, documented
from edge_service.ingest_rules import AcceptedTime
from edge_service.qa_models import (
    BulkReviewIn,
    BulkReviewOut,
    DefectClasses,
    DefectClassesIn,
    QueuePage,
    ReviewHistory,
    Whoami,
)
from edge_service.routers.results import StationPrefix

router = APIRouter(prefix="/api/v1/qa", tags=["qa"])


def whoami_of(who: Principal) -> Whoami:
    return Whoami(name=who.name, role=who.role, can_review=who.can("review"), can_audit=who.can("admin"))


@router.get("/whoami", responses=documented(401, 403))
def whoami(who: Reader) -> Whoami:
    """The token's name and role, and what the pages may offer it."""
    return whoami_of(who)


@router.get("/queue", responses=documented(400, 401, 403, 422))
def review_queue(
    _who: Reader,
    engine: Database,
    station: StationPrefix = None,
    verdict: Literal["PASS", "FAIL"] | None = None,
    since: AcceptedTime | None = None,
    until: AcceptedTime | None = None,
    min_score: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    max_score: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    review_state: ReviewState | None = None,
    model_version: Annotated[str | None, Query(max_length=64)] = None,
    part_id: Annotated[str | None, Query(max_length=128, description="part ids starting with this")] = None,
    defect_class: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> QueuePage:
    """Results to review, newest first, with the kinds of image kept for each."""
    if min_score is not None and max_score is not None and min_score > max_score:
        raise InvalidRequest(f"min_score {min_score} is above max_score {max_score}")
    q = qa_queue.QueueQuery(station, verdict, since, until, min_score, max_score, review_state, model_version,
                            limit, cursor, part_id=part_id, defect_class=defect_class)
    items, next_cursor = qa_queue.queue(engine, q)
    return QueuePage(items=items, next_cursor=next_cursor)


@router.post("/reviews", responses=documented(400, 401, 403, 404, 422))
def bulk_review(body: BulkReviewIn, who: Reviewer, engine: Database) -> BulkReviewOut:
    """The same decision for every selected result, in one transaction (all or nothing)."""
    try:
        done = qa_queue.review_many(engine, [str(i) for i in body.inspection_ids], body.decision,
                                    body.defect_class or None, body.comment or None, who.name)
    except qa_queue.UnknownResults as exc:
        raise NotFound(f"no result {', '.join(exc.ids[:10])}; nothing was reviewed") from None
    except qa_queue.UnknownDefectClass as exc:
        raise InvalidRequest(f"{exc}; nothing was reviewed") from None
    return BulkReviewOut(reviewed=done, reviewer=who.name)


@router.get("/results/{inspection_id}/history", responses=documented(400, 401, 403, 404, 422))
def review_history(inspection_id: uuid.UUID, _who: Reader, engine: Database) -> ReviewHistory:
    found = store.get(engine, str(inspection_id))
    if found is None:
        raise NotFound(f"no result {inspection_id}")
    return ReviewHistory(inspection_id=str(inspection_id), reviews=found.reviews)


@router.get("/defect-classes", responses=documented(401, 403, 422))
def defect_classes(_who: Reader, engine: Database,
                   station: Annotated[str, Query(min_length=1, max_length=330)]) -> DefectClasses:
    """The defect classes offered when reviewing results of this station."""
    return DefectClasses(station=station, names=qa_queue.classes_for(engine, station))


@router.put("/defect-classes", responses=documented(400, 401, 403, 422))
def set_defect_classes(body: DefectClassesIn, who: Reviewer, engine: Database) -> DefectClasses:
    """Replace the list for a station prefix (audited)."""
    bad = [n for n in body.names if len(n.strip()) > 64]
    if bad:
        raise InvalidRequest(f"names: {bad[0][:70]!r} is longer than 64 characters")
    qa_queue.set_classes(engine, body.station_prefix, body.names, who.name)
    return DefectClasses(station=body.station_prefix, names=qa_queue.classes_for(engine, body.station_prefix))
