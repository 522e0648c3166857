"""Models on the service: upload (checked to be one of ours), list, get, download; a station's assignment
(model, threshold, shadow candidate) and its rollback, also for every station under a prefix; the page's
reads (a station's assignment changes, the shadow comparison). Changes need qa or admin and are audited."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse

from edge_service import model_assignments, model_shadow, model_store, qa_audit
from edge_service.auth import Principal
from edge_service.dependencies import Database, Reader, Reviewer, Settings, principal
from edge_service.errors import Forbidden, InvalidRequest, NotFound, Problem, documented
from edge_service.qa_models import (
    AssignmentIn,
    AuditEntry,
    ModelVersion,
    PrefixAssignmentIn,
    PrefixRollbackIn,
    RollbackIn,
    ShadowComparison,
    StationAssignment,
)

router = APIRouter(prefix="/api/v1", tags=["models"])
_BINARY = {"schema": {"type": "string", "format": "binary"}}
Anyone = Annotated[Principal, Depends(principal)]


class ModelRefused(Problem):
    status, reason = 422, "model_rejected"


class Conflict(Problem):
    status, reason = 409, "conflict"


def _downloader(who: Anyone) -> Principal:
    if not (who.can("ingest") or who.can("review")):
        raise Forbidden(f"role {who.role!r} may not download model files (edge, qa and admin may)")
    return who


@router.post("/models", status_code=201, responses={
    **documented(400, 401, 403, 409, 413, 422, described={
        409: "this model name and version are stored with other bytes",
        413: "larger than the service's model limit (64 MB by default)",
        422: "not ONNX, corrupt, or not an inspection model"}),
    200: {"model": ModelVersion, "description": "the same file was stored before: the stored version"}},
    openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": _BINARY}}})
async def upload_model(request: Request, response: Response, who: Reviewer, engine: Database, settings: Settings,
                       note: Annotated[str | None, Query(max_length=2000)] = None) -> ModelVersion:
    """Upload an ONNX model file (the raw bytes as the body). The service checks it is one of ours and reads
    its metadata (name, version, card); the same bytes again answer 200 with the stored version."""
    if request.headers.get("content-type", "").lower().startswith("multipart/"):
        raise ModelRefused("send the .onnx file's bytes as the body (Content-Type: application/octet-stream), "
                           "not a multipart form; nothing stored")
    data = await request.body()
    try:
        before = await asyncio.to_thread(model_store.sha256_known, engine, data)
        stored = await asyncio.to_thread(model_store.add_model, engine, settings, data, who.name, note or None)
    except model_store.ModelRejected as exc:
        raise ModelRefused(f"model refused, nothing stored: {exc}") from None
    except model_store.ModelConflict as exc:
        raise Conflict(f"{exc}; nothing stored") from None
    if before:
        response.status_code = 200
    return stored


@router.get("/models", responses=documented(401, 403, 422))
def list_models(_who: Anyone, engine: Database,
                name: Annotated[str | None, Query(max_length=64)] = None) -> list[ModelVersion]:
    """Every uploaded model version, newest first (optionally of one name)."""
    return model_store.list_models(engine, name)


def _found(engine, name: str, version: str) -> ModelVersion:
    found = model_store.get_model(engine, name, version)
    if found is None:
        raise NotFound(f"no model {name!r} version {version!r}")
    return found


@router.get("/models/{name}/{version}", responses=documented(401, 403, 404, 422))
def get_model(name: str, version: str, _who: Anyone, engine: Database) -> ModelVersion:
    """One model version with its card."""
    return _found(engine, name, version)


@router.get("/models/{name}/{version}/file", response_class=FileResponse, responses={
    **documented(401, 403, 404, 422),
    200: {"content": {"application/octet-stream": _BINARY}, "description": "the ONNX file",
          "headers": {"X-Content-SHA256": {"schema": {"type": "string"}, "description": "hex SHA-256 of the bytes"}}}})
def model_file(name: str, version: str, _who: Annotated[Principal, Depends(_downloader)], engine: Database,
               settings: Settings) -> Response:
    """The model's ONNX file (edge, qa, admin); check the bytes against X-Content-SHA256."""
    found = _found(engine, name, version)
    path = model_store.model_file(settings, found.sha256)
    if not path.is_file():
        raise NotFound(f"the file of model {name} version {version} is missing from {path.parent}")
    return FileResponse(path, media_type="application/octet-stream", filename=f"{name}-{version}.onnx",
                        headers={"X-Content-SHA256": found.sha256})


def _assignment_errors(action):
    try:
        return action()
    except model_assignments.NotAssignable as exc:
        raise NotFound(f"{exc}; nothing was changed") from None
    except model_assignments.AssignmentRefused as exc:
        raise InvalidRequest(f"{exc}; nothing was changed") from None
    except model_assignments.NothingToRollBack as exc:
        raise Conflict(str(exc)) from None


@router.put("/stations/{station:path}/assignment", responses=documented(400, 401, 403, 404, 422))
def assign_model(station: str, body: AssignmentIn, who: Reviewer, engine: Database) -> StationAssignment:
    """Assign a model version to a station (threshold null: the model's own; optional shadow candidate);
    audited, in one transaction. The assignment before it is kept for rollback."""
    return _assignment_errors(lambda: model_assignments.assign(engine, station.strip("/"), body, who.name))


@router.post("/stations/{station:path}/assignment/rollback", responses=documented(400, 401, 403, 404, 409, 422))
def rollback_assignment(station: str, body: RollbackIn, who: Reviewer, engine: Database) -> StationAssignment:
    """Back to the previous assignment in one action (audited); 409 when there is none."""
    return _assignment_errors(lambda: model_assignments.rollback(engine, station.strip("/"), body.reason,
                                                                  who.name))


@router.put("/qa/assignments", responses=documented(400, 401, 403, 404, 422))
def assign_model_under_prefix(body: PrefixAssignmentIn, who: Reviewer, engine: Database) -> list[StationAssignment]:
    """The same assignment for every registered station under a prefix, in one transaction (audited per
    station); 404 when no station lies under it."""
    return _assignment_errors(lambda: model_assignments.assign_prefix(engine, body.station_prefix, body, who.name))


@router.post("/qa/assignments/rollback", responses=documented(400, 401, 403, 404, 409, 422))
def rollback_under_prefix(body: PrefixRollbackIn, who: Reviewer, engine: Database) -> list[StationAssignment]:
    """Every station under a prefix back to its previous assignment; 409 (and nothing changed) when one of
    them has none."""
    return _assignment_errors(lambda: model_assignments.rollback_prefix(engine, body.station_prefix, body.reason,
                                                                         who.name))


ASSIGNMENT_ACTIONS = ("model_assign", "model_rollback", "threshold")


@router.get("/stations/{station:path}/assignment/audit", responses=documented(401, 403, 404, 422))
def assignment_audit(station: str, _who: Reader, engine: Database,
                     limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[AuditEntry]:
    """The station's assignment changes (models assigned, rolled back, thresholds applied), newest first."""
    path = station.strip("/")
    model_assignments.station_assignment(engine, path)  # an unknown station is refused
    return [e for e in qa_audit.entries(engine, limit, path) if e.action in ASSIGNMENT_ACTIONS]


@router.get("/qa/shadow", responses=documented(401, 403, 422))
def shadow_comparison(_who: Reader, engine: Database,
                      station: Annotated[str, Query(min_length=1, max_length=330)],
                      limit: Annotated[int, Query(ge=1, le=20000, description="newest results read")] = 2000,
                      ) -> ShadowComparison:
    """Live against shadow verdicts on the station's newest results that carry a shadow verdict."""
    return model_shadow.compare(engine, station.strip("/"), limit)
