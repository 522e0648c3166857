"""QA reviews of a stored result: each decision is kept in the result's history."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from edge_service import store
from edge_service.api_models import ResultDetail, ReviewIn
from edge_service.dependencies import Database, Reviewer
from edge_service.errors import NotFound, documented

router = APIRouter(prefix="/api/v1/results", tags=["review"])


@router.post("/{inspection_id}/review", responses=documented(400, 401, 403, 404, 422))
def post_review(inspection_id: uuid.UUID, review: ReviewIn, who: Reviewer, engine: Database) -> ResultDetail:
    """Record a decision; answers the result with its whole review history."""
    rid = str(inspection_id)
    if not store.review(engine, rid, review.decision, review.defect_class, review.comment, who.name):
        raise NotFound(f"no result {inspection_id}")
    found = store.get(engine, rid)
    if found is None:  # cannot happen: results are never deleted
        raise NotFound(f"no result {inspection_id}")
    return found
