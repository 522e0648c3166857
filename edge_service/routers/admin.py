"""Stations (results from unknown stations are refused) and API tokens: administration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from pydantic import ValidationError

from edge_service import auth, store
from edge_service.api_models import NewTokenOut, StationCreated, StationIn, TokenIn, TokenInfo
from edge_service.dependencies import Admin, Database, Reader
from edge_service.errors import InvalidRequest, NotFound, documented
from inspection.schema import StationContext

router = APIRouter(prefix="/api/v1", tags=["admin"])


@router.get("/stations", responses=documented(400, 401, 403))
def get_stations(_who: Reader, engine: Database) -> list[str]:
    return store.list_stations(engine)


@router.post("/stations", status_code=201, responses=documented(400, 401, 403, 422))
def post_station(body: StationIn, _who: Admin, engine: Database) -> StationCreated:
    try:
        station = StationContext.from_path(body.path)
    except (ValueError, ValidationError) as exc:
        raise InvalidRequest(f"path: {exc}") from None
    return StationCreated(path=station.path, created=store.add_station(engine, station))


@router.get("/tokens", responses=documented(400, 401, 403))
def get_tokens(_who: Admin, engine: Database) -> list[TokenInfo]:
    return auth.list_tokens(engine)


@router.post("/tokens", status_code=201, responses=documented(400, 401, 403, 422))
def post_token(body: TokenIn, _who: Admin, engine: Database) -> NewTokenOut:
    new = auth.create_token(engine, body.name, body.role, body.station_prefix)
    return NewTokenOut(id=new.id, token=new.token, role=body.role, name=new.name, station_prefix=new.station_prefix)


@router.delete("/tokens/{token_id}", status_code=204, responses=documented(400, 401, 403, 404, 422))
def delete_token(token_id: Annotated[str, PathParam(max_length=16)], _who: Admin, engine: Database) -> None:
    if not auth.revoke_token(engine, token_id):
        raise NotFound(f"no active token {token_id}")
