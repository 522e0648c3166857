"""The request-size limit, checked on Content-Length before a route reads the body."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from starlette.responses import Response

from edge_service.errors import problem_response
from edge_service.settings import MAX_REQUEST_BYTES


async def limit_request_size(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    length = request.headers.get("content-length")
    if length and (not length.isdigit() or int(length) > MAX_REQUEST_BYTES):
        return problem_response(413, "too_large", f"request body of {length} bytes; the limit is {MAX_REQUEST_BYTES}")
    return await call_next(request)
