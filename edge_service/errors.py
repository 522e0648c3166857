"""Refusals: the Problem exceptions the routes raise, and the handlers that turn every known exception type
into its status and a :class:`~edge_service.api_models.ProblemBody` (never by reading words in a message)."""

from __future__ import annotations

import logging
import re
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.exceptions import HTTPException

from edge_service.api_models import ProblemBody, ProblemDetail
from edge_service.image_store import ImageRejected
from edge_service.observability import REJECTED
from edge_service.store import InvalidCursor, UnknownStation

log = logging.getLogger("edge_service")


class Problem(Exception):
    """A refusal with its HTTP status and machine reason; subclasses fix both."""

    status: ClassVar[int] = 400
    reason: ClassVar[str] = "bad_request"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidRequest(Problem):
    status, reason = 422, "invalid_request"


class InvalidResult(Problem):
    status, reason = 422, "invalid_result"


class Unauthenticated(Problem):
    status, reason = 401, "unauthenticated"


class Forbidden(Problem):
    status, reason = 403, "forbidden"


class NotFound(Problem):
    status, reason = 404, "not_found"


class TokenInUrl(Problem):
    status, reason = 400, "token_in_url"


def problem_response(status: int, reason: str, message: str, detail: list[ProblemDetail] | None = None,
                     headers: dict[str, str] | None = None) -> JSONResponse:
    """The one way a refusal is answered; counted by reason in ``inspection_requests_rejected_total``."""
    REJECTED.labels(reason=reason).inc()
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    body = ProblemBody(error=reason, message=message, detail=detail)
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=status, headers=headers)


def documented(*statuses: int, described: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the refusals a route can give, optionally with a description of some."""
    described = described or {}
    return {status: {"model": ProblemBody, **({"description": described[status]} if status in described else {})}
            for status in statuses}


_HTTP_REASONS = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def allowed_methods(request: Request) -> list[str]:
    """Every method the app's OpenAPI schema documents at this path (Starlette names only the first matching
    route's methods, while several routes may share a path)."""
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {m.upper() for m in operations if m in _HTTP_METHODS}
    return sorted(methods)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    """Refusals raised by the framework itself (unknown path, wrong method, unreadable body)."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers) if exc.headers else {}
    message = str(exc.detail)
    if exc.status_code == 405:
        allowed = allowed_methods(request) or headers.get("Allow", "").split(", ")
        headers["Allow"] = ", ".join(allowed)
        message = f"method {request.method} not allowed here; allowed: {headers['Allow']}"
    return problem_response(exc.status_code, _HTTP_REASONS.get(exc.status_code, "http_error"), message,
                            headers=headers or None)


async def _on_problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc.status, exc.reason, exc.message)


async def _on_bad_image(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ImageRejected)
    return problem_response(exc.status, "bad_image", str(exc))


async def _on_unknown_station(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, UnknownStation)
    return problem_response(422, "unknown_station", f"unknown station(s): {', '.join(exc.paths)}; register them "
                                                    "first (inspection station add PATH)")


async def _on_invalid_cursor(_request: Request, exc: Exception) -> JSONResponse:
    return problem_response(422, "invalid_request", f"cursor: {exc}")


async def _on_invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    broken = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if broken is not None:
        where = broken["loc"][1] if len(broken["loc"]) > 1 else "?"
        why = broken.get("ctx", {}).get("error", broken["msg"])
        return problem_response(400, "malformed_json", f"request body is not valid JSON ({why} at character {where})")
    details = [ProblemDetail(loc=[p if isinstance(p, int) else str(p) for p in e["loc"]], msg=e["msg"],
                             type=e["type"]) for e in errors]
    message = "; ".join(f"{'.'.join(map(str, d.loc))}: {d.msg}" for d in details)
    return problem_response(422, "invalid_request", message, detail=details)


async def _on_database_error(_request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, IntegrityError):
        return problem_response(409, "conflict", "the request conflicts with stored data")
    log.warning("database error: %s", str(exc).splitlines()[0])
    return problem_response(503, "database_unavailable", "the database is unavailable; retry later",
                            headers={"Retry-After": "5"})


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(ImageRejected, _on_bad_image)
    app.add_exception_handler(UnknownStation, _on_unknown_station)
    app.add_exception_handler(InvalidCursor, _on_invalid_cursor)
    app.add_exception_handler(RequestValidationError, _on_invalid_request)
    app.add_exception_handler(DBAPIError, _on_database_error)
