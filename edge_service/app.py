"""The results service: a FastAPI application built by :func:`create_app` from :class:`ServiceSettings`."""


import asyncio
import json
import logging
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import generate_latest
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from edge_service import auth, store
from edge_service.database import make_engine, ping, prepare, results
from edge_service.image_store import ImageRejected, ImageStore
from edge_service.live import LiveFeed
from edge_service.observability import (
    DUPLICATES,
    INGEST_LATENCY,
    INGESTED,
    REGISTRY,
    REJECTED,
    STORED,
    STREAM_CLIENTS,
)
from inspection.schema import InspectionResult, StationContext

log = logging.getLogger("edge_service")
PAGES = Path(__file__).resolve().parent / "pages"
MAX_BATCH = 1000
MAX_REQUEST_BYTES = 16 * 1024 * 1024


@dataclass
class ServiceSettings:
    database_url: str = "sqlite:///inspection-results.db"
    image_dir: Path = Path("inspection-images")
    insecure_local: bool = False
    stale_seconds: float = 10.0
    image_max_age_days: float | None = 30.0
    image_max_bytes: int | None = 10 * 1024**3
    retention_interval_s: float = 300.0


def _problem(status: int, reason: str, message: str, **extra) -> JSONResponse:
    REJECTED.labels(reason=reason).inc()
    return JSONResponse({"error": reason, "message": message, **extra}, status_code=status,
                        headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)


class Problem(Exception):
    def __init__(self, status: int, reason: str, message: str, **extra):
        super().__init__(message)
        self.status, self.reason, self.message, self.extra = status, reason, message, extra


# ------------------------------------------------------------------------------------------ API models


class IngestBatch(BaseModel):
    results: list[InspectionResult] = Field(max_length=MAX_BATCH,
                                            description="schema-versioned inspection results, each with its station")


class IngestResponse(BaseModel):
    stored: list[str]
    duplicates: list[str]


class ReviewIn(BaseModel):
    decision: Literal["confirmed_defect", "false_alarm", "unsure"]
    defect_class: str | None = Field(default=None, max_length=64)
    comment: str | None = Field(default=None, max_length=2000)


class StationIn(BaseModel):
    path: str = Field(description="site/area/line/cell/station")


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    role: Literal["edge", "operator", "qa", "admin"]
    station_prefix: str | None = None


class ResultPage(BaseModel):
    items: list[dict]
    next_cursor: str | None


# ------------------------------------------------------------------------------------------------- app


def create_app(settings: ServiceSettings) -> FastAPI:
    engine = make_engine(settings.database_url)
    images = ImageStore(settings.image_dir, settings.image_max_age_days, settings.image_max_bytes)
    feed = LiveFeed()

    async def retention_loop():
        while True:
            await asyncio.sleep(settings.retention_interval_s)
            try:
                await asyncio.to_thread(images.enforce_retention, engine)
            except Exception:  # keep the loop alive through a database outage
                log.exception("image retention pass failed")

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        prepare(engine)
        feed.bind(asyncio.get_running_loop())
        task = asyncio.create_task(retention_loop())
        yield
        task.cancel()
        engine.dispose()

    app = FastAPI(title="Inspection results service", version="1.0", lifespan=lifespan,
                  description="Ingest, store, query and review inspection results. Every endpoint except "
                              "/healthz and /readyz needs `Authorization: Bearer <token>`.")
    app.state.engine, app.state.images, app.state.feed, app.state.settings = engine, images, feed, settings

    @app.middleware("http")
    async def limit_request_size(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and (not length.isdigit() or int(length) > MAX_REQUEST_BYTES):
            return _problem(413, "too_large", f"request body of {length} bytes; the limit is {MAX_REQUEST_BYTES}")
        return await call_next(request)

    # ---------------------------------------------------------------------------------------- errors

    @app.exception_handler(Problem)
    async def _problem_handler(_request: Request, exc: Problem):
        return _problem(exc.status, exc.reason, exc.message, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation_handler(_request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            e = next(e for e in errors if e.get("type") == "json_invalid")
            where = e["loc"][1] if len(e["loc"]) > 1 else "?"
            why = e.get("ctx", {}).get("error", e["msg"])
            return _problem(400, "malformed_json", f"request body is not valid JSON ({why} at character {where})")
        details = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors]
        return _problem(422, "invalid_request", "; ".join(details), detail=json.loads(json.dumps(
            exc.errors(), default=str)))

    @app.exception_handler(DBAPIError)
    async def _database_handler(_request: Request, exc: DBAPIError):
        if isinstance(exc, IntegrityError):
            return _problem(409, "conflict", "the request conflicts with stored data")
        log.warning("database error: %s", str(exc).splitlines()[0])
        response = _problem(503, "database_unavailable", "the database is unavailable; retry later")
        response.headers["Retry-After"] = "5"
        return response

    # ------------------------------------------------------------------------------------------ auth

    def principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> auth.Principal:
        if any(k.lower() in ("token", "access_token", "api_key", "apikey") for k in request.query_params):
            raise Problem(400, "token_in_url", "tokens are accepted only in the Authorization: Bearer header, "
                                               "never in the URL")
        if settings.insecure_local:
            return auth.LOCAL_ADMIN
        if not authorization:
            raise Problem(401, "unauthenticated", "missing Authorization: Bearer <token> header")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Problem(401, "unauthenticated", "Authorization header must be 'Bearer <token>'")
        who = auth.lookup(engine, token.strip())
        if who is None:
            raise Problem(401, "unauthenticated", "unknown or revoked token")
        return who

    def needs(permission: str):
        def check(who: Annotated[auth.Principal, Depends(principal)]) -> auth.Principal:
            if not who.can(permission):
                raise Problem(403, "forbidden", f"role {who.role!r} may not {permission}")
            return who

        return check

    Ingest = Annotated[auth.Principal, Depends(needs("ingest"))]
    Reader = Annotated[auth.Principal, Depends(needs("read"))]
    Reviewer = Annotated[auth.Principal, Depends(needs("review"))]
    Admin = Annotated[auth.Principal, Depends(needs("admin"))]

    # ------------------------------------------------------------------------------------ health etc.

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "database unreachable"}})
    def readyz():
        try:
            ping(engine)
        except Exception:
            return JSONResponse({"status": "database unreachable"}, status_code=503)
        return {"status": "ready"}

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    def metrics(_who: Reader) -> PlainTextResponse:
        with engine.connect() as conn:
            STORED.set(conn.execute(select(func.count()).select_from(results)).scalar())
        return PlainTextResponse(generate_latest(REGISTRY).decode(), media_type="text/plain; version=0.0.4")

    # ---------------------------------------------------------------------------------------- ingest

    @app.post("/api/v1/results", response_model=IngestResponse, tags=["results"],
              responses={422: {"description": "invalid result or unknown station"}, 413: {}, 503: {}})
    async def ingest(body: IngestBatch, who: Ingest):
        started = time.perf_counter()
        batch = body.results
        missing = [f"results[{i}].station" for i, r in enumerate(batch) if r.station is None]
        if missing:
            raise Problem(422, "invalid_result", f"{', '.join(missing[:20])}: missing; every result needs its "
                                                 "site/area/line/cell/station")
        forbidden = sorted({r.station.path for r in batch if not who.may_write_station(r.station.path)})
        if forbidden:
            raise Problem(403, "forbidden", f"token {who.name!r} may only ingest for stations under "
                                            f"{who.station_prefix!r}; not {', '.join(forbidden)}")
        try:
            outcome = await asyncio.to_thread(store.ingest, engine, batch)
        except store.UnknownStation as exc:
            raise Problem(422, "unknown_station", f"unknown station(s): {', '.join(exc.paths)}; register them "
                                                  "first (inspection station add PATH)") from None
        INGESTED.inc(len(outcome.stored))
        DUPLICATES.inc(len(outcome.duplicates))
        if feed.subscribers and outcome.stored:  # only pay for the live events when someone watches
            new = set(outcome.stored)
            feed.publish([r.model_dump(mode="json") | {"station_path": r.station.path} for r in batch
                          if str(r.inspection_id) in new])
        INGEST_LATENCY.observe(time.perf_counter() - started)
        return IngestResponse(stored=outcome.stored, duplicates=outcome.duplicates)

    # ------------------------------------------------------------------------------------------ query

    @app.get("/api/v1/results", response_model=ResultPage, tags=["results"])
    def list_results(
        _who: Reader,
        station: Annotated[str | None, Query(description="station path prefix, e.g. plant1/area2",
                                             max_length=330)] = None,
        verdict: Literal["PASS", "FAIL"] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        min_score: float | None = None,
        max_score: float | None = None,
        review_state: Literal["unreviewed", "confirmed_defect", "false_alarm", "unsure"] | None = None,
        model_version: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(max_length=500)] = None,
    ) -> ResultPage:
        q = store.ResultQuery(station, verdict, since, until, min_score, max_score, review_state, model_version,
                              limit, cursor)
        try:
            items, next_cursor = store.query(engine, q)
        except ValueError as exc:
            raise Problem(422, "invalid_request", f"cursor: {exc}") from None
        return ResultPage(items=items, next_cursor=next_cursor)

    @app.get("/api/v1/results/{inspection_id}", tags=["results"], responses={404: {}})
    def get_result(inspection_id: uuid.UUID, _who: Reader) -> dict:
        found = store.get(engine, str(inspection_id))
        if found is None:
            raise Problem(404, "not_found", f"no result {inspection_id}")
        return found

    @app.post("/api/v1/results/{inspection_id}/review", tags=["review"], responses={404: {}})
    def post_review(inspection_id: uuid.UUID, review: ReviewIn, who: Reviewer) -> dict:
        if not store.review(engine, str(inspection_id), review.decision, review.defect_class, review.comment,
                            who.name):
            raise Problem(404, "not_found", f"no result {inspection_id}")
        return store.get(engine, str(inspection_id))

    # ----------------------------------------------------------------------------------------- images

    @app.put("/api/v1/results/{inspection_id}/images/{kind}", status_code=204, tags=["images"],
             responses={404: {}, 413: {}, 415: {}, 422: {}},
             openapi_extra={"requestBody": {"content": {t: {"schema": {"type": "string", "format": "binary"}}
                                                        for t in ("image/png", "image/jpeg")}}})
    async def put_image(request: Request, inspection_id: uuid.UUID, kind: Literal["original", "overlay"],
                        who: Ingest) -> None:
        station = await asyncio.to_thread(store.station_of, engine, str(inspection_id))
        if station is None:
            raise Problem(404, "not_found", f"no result {inspection_id}; post the result first")
        if not who.may_write_station(station):
            raise Problem(403, "forbidden", f"token {who.name!r} may not write images for {station}")
        data = await request.body()
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            await asyncio.to_thread(images.save, engine, inspection_id, kind, data, content_type)
        except ImageRejected as exc:
            status = 413 if "limit" in str(exc) else 415 if "content type" in str(exc) else 422
            raise Problem(status, "bad_image", str(exc)) from None

    @app.get("/api/v1/results/{inspection_id}/images/{kind}", tags=["images"], response_class=FileResponse,
             responses={404: {}, 200: {"content": {"image/png": {}, "image/jpeg": {}}}})
    def get_image(inspection_id: uuid.UUID, kind: Literal["original", "overlay"], _who: Reader):
        found = images.find(engine, str(inspection_id), kind)
        if found is None:
            raise Problem(404, "not_found", f"no {kind} image for {inspection_id}")
        path, content_type = found
        return FileResponse(path, media_type=content_type)

    # ------------------------------------------------------------------------------------------ stats

    @app.get("/api/v1/stats", tags=["results"])
    def get_stats(_who: Reader, station: Annotated[str | None, Query(max_length=330)] = None,
                  since: datetime | None = None, until: datetime | None = None) -> dict:
        if since and until and since >= until:
            raise Problem(422, "invalid_request", "since must be before until")
        return store.stats(engine, station, since, until)

    # ----------------------------------------------------------------------------------------- stream

    @app.get("/api/v1/stream", tags=["live"], response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}}}})
    async def stream(request: Request, _who: Reader,
                     station: Annotated[str | None, Query(max_length=330)] = None,
                     max_seconds: Annotated[float | None, Query(gt=0, le=86400)] = None):
        sub = feed.subscribe(station)
        STREAM_CLIENTS.inc()

        async def events():
            deadline = time.monotonic() + max_seconds if max_seconds else None
            try:
                yield ": connected\n\n"
                while not await request.is_disconnected():
                    if deadline and time.monotonic() > deadline:
                        break
                    try:
                        payload = await asyncio.wait_for(sub.queue.get(), timeout=min(
                            15.0, max(0.05, deadline - time.monotonic()) if deadline else 15.0))
                    except TimeoutError:
                        yield ": keepalive\n\n"
                        continue
                    yield f"event: result\ndata: {payload}\n\n"
            finally:
                feed.unsubscribe(sub)
                STREAM_CLIENTS.dec()

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # ------------------------------------------------------------------------------ stations, tokens

    @app.get("/api/v1/stations", tags=["admin"])
    def get_stations(_who: Reader) -> list[str]:
        return store.list_stations(engine)

    @app.post("/api/v1/stations", status_code=201, tags=["admin"])
    def post_station(body: StationIn, _who: Admin) -> dict:
        try:
            station = StationContext.from_path(body.path)
        except (ValueError, ValidationError) as exc:
            raise Problem(422, "invalid_request", f"path: {exc}") from None
        return {"path": station.path, "created": store.add_station(engine, station)}

    @app.get("/api/v1/tokens", tags=["admin"])
    def get_tokens(_who: Admin) -> list[dict]:
        return json.loads(json.dumps(auth.list_tokens(engine), default=str))

    @app.post("/api/v1/tokens", status_code=201, tags=["admin"])
    def post_token(body: TokenIn, _who: Admin) -> dict:
        new = auth.create_token(engine, body.name, body.role, body.station_prefix)
        return {"id": new.id, "token": new.token, "role": new.role, "name": new.name,
                "station_prefix": new.station_prefix, "note": "shown once; store it now"}

    @app.delete("/api/v1/tokens/{token_id}", status_code=204, tags=["admin"], responses={404: {}})
    def delete_token(token_id: Annotated[str, PathParam(max_length=16)], _who: Admin) -> None:
        if not auth.revoke_token(engine, token_id):
            raise Problem(404, "not_found", f"no active token {token_id}")

    # ------------------------------------------------------------------------------------------ pages

    app.mount("/static", StaticFiles(directory=PAGES / "static"), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def operator_page() -> HTMLResponse:
        config = {"staleSeconds": settings.stale_seconds, "needsToken": not settings.insecure_local}
        html = (PAGES / "operator.html").read_text().replace("/*CONFIG*/", f"window.INSPECTION = {json.dumps(config)};")
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    return app
