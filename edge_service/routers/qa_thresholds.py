"""Thresholds with evidence, applying one (audited), the station's assignment (polled by the line runner),
and the audit log (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from edge_service import model_assignments, qa_audit, qa_thresholds
from edge_service.auth import Principal
from edge_service.dependencies import Admin, Database, Reader, Reviewer, principal
from edge_service.errors import Forbidden, InvalidRequest, documented
from edge_service.ingest_rules import Line330
from edge_service.qa_models import AuditEntry, StationAssignment, ThresholdEvidence, ThresholdIn

router = APIRouter(prefix="/api/v1", tags=["thresholds"])
StationPath = Annotated[str, Query(min_length=1, max_length=330, description="site/area/line/cell/station")]


@router.get("/qa/thresholds/evidence", responses=documented(401, 403, 422))
def threshold_evidence(
    _who: Reader, engine: Database, station: StationPath,
    model_version: Annotated[str | None, Query(max_length=64)] = None,
    target_frr: Annotated[float, Query(gt=0, lt=1, allow_inf_nan=False,
                                       description="target false-reject rate, e.g. 0.01")] = 0.01,
    at: Annotated[float | None, Query(allow_inf_nan=False, description="rates at this threshold")] = None,
) -> ThresholdEvidence:
    """From the station's reviewed results: histogram, rate curve, the proposed threshold."""
    return qa_thresholds.evidence(engine, station.strip("/"), model_version, target_frr, at)


@router.post("/stations/{station:path}/threshold", responses=documented(400, 401, 403, 404, 422))
def apply_threshold(station: str, body: ThresholdIn, who: Reviewer, engine: Database) -> StationAssignment:
    """Apply a new threshold to a station (audited: who, when, old, new, why); the station reads it from its
    assignment. The assignment before it is kept for rollback."""
    try:
        return qa_thresholds.apply_threshold(engine, station.strip("/"), body.threshold, body.model_version,
                                             body.reason, who.name)
    except model_assignments.AssignmentRefused as exc:
        raise InvalidRequest(f"{exc}; nothing was applied") from None


def _assignment_reader(who: Annotated[Principal, Depends(principal)]) -> Principal:
    if not (who.can("read") or who.can("ingest")):
        raise Forbidden(f"role {who.role!r} may not read assignments")
    return who


@router.get("/stations/{station:path}/assignment", responses=documented(401, 403, 404, 422))
def station_assignment(station: str, who: Annotated[Principal, Depends(_assignment_reader)],
                       engine: Database) -> StationAssignment:
    """The model (name, version, SHA-256, download URL), threshold (null: the model's own) and shadow
    candidate this station should run, and the earlier assignments rollback returns to. Readable by reading
    tokens and by edge tokens for the stations they may write."""
    path = station.strip("/")
    if not who.can("read") and not who.may_write_station(path):
        raise Forbidden(f"token {who.name!r} may only read assignments under {who.station_prefix!r}")
    return qa_thresholds.assignment(engine, path)


@router.get("/audit", responses=documented(401, 403, 422))
def audit_log(_who: Admin, engine: Database, limit: Annotated[int, Query(ge=1, le=1000)] = 200,
              target: Line330 | None = None) -> list[AuditEntry]:
    """Every QA change, newest first (admins)."""
    return qa_audit.entries(engine, limit, target)
