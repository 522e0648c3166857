"""Liveness and readiness (no token needed) and the Prometheus metrics (a reading token)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import generate_latest
from sqlalchemy import func, select

from edge_service.api_models import HealthStatus, ReadyStatus
from edge_service.database import ping, results
from edge_service.dependencies import Database, Reader
from edge_service.observability import REGISTRY, STORED

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> HealthStatus:
    return HealthStatus()


@router.get("/readyz", response_model=ReadyStatus,
            responses={503: {"model": ReadyStatus, "description": "database unreachable"}})
def readyz(engine: Database) -> ReadyStatus | JSONResponse:
    try:
        ping(engine)
    except Exception:
        return JSONResponse(ReadyStatus(status="database unreachable").model_dump(), status_code=503)
    return ReadyStatus(status="ready")


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(_who: Reader, engine: Database) -> PlainTextResponse:
    with engine.connect() as conn:
        STORED.set(conn.execute(select(func.count()).select_from(results)).scalar_one())
    return PlainTextResponse(generate_latest(REGISTRY).decode(), media_type="text/plain; version=0.0.4")
