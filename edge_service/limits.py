"""Request-body limits that hold: an ASGI middleware that refuses before any route or authentication work.

Per route, a body may be at most :func:`body_limit` bytes (ingest 16 MB, an image upload 8 MB, a model upload
64 MB by default (``ServiceSettings.model_max_bytes``), a training job's upload 512 MB by default
(``TrainingSettings.max_upload_bytes``), anything else 16 MB). A ``Content-Length`` over the
limit is refused with 413 from the headers alone; a chunked body is counted while it streams in and refused
with 413 the moment it passes the limit (the route sees a disconnect, the connection is closed, the rest is
never read). A body sent to ``/api/`` without an
``Authorization`` header is refused with 401 from the headers alone (unless the service runs insecure-local),
so an unauthenticated request never costs more than reading its headers (``dependency_overrides`` of the
principal are honoured).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_service.dependencies import principal
from edge_service.errors import problem_response
from edge_service.image_store import MAX_IMAGE_BYTES
from edge_service.redaction import TOKEN_PARAMETERS
from edge_service.settings import MAX_MODEL_BYTES, MAX_REQUEST_BYTES, TrainingSettings

_IMAGE_UPLOAD = re.compile(r"^/api/v1/results/[^/]+/images/[^/]+/?$")
_MODEL_UPLOAD = re.compile(r"^/api/v1/models/?$")
_TRAINING_UPLOAD = re.compile(r"^/api/v1/training/jobs/?$")
_CLOSE = {"Connection": "close"}


def body_limit(method: str, path: str, model_max_bytes: int = MAX_MODEL_BYTES,
               training_max_bytes: int = TrainingSettings.max_upload_bytes) -> int:
    """The most bytes a request body may have on this route (model and training uploads: the service's
    settings)."""
    if method == "PUT" and _IMAGE_UPLOAD.match(path):
        return MAX_IMAGE_BYTES
    if method == "POST" and _MODEL_UPLOAD.match(path):
        return model_max_bytes
    if method == "POST" and _TRAINING_UPLOAD.match(path):
        return training_max_bytes
    return MAX_REQUEST_BYTES


@dataclass
class _Headers:
    content_length: str | None
    chunked: bool
    authorization: bool

    @classmethod
    def of(cls, scope: Scope) -> _Headers:
        found = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        return cls(found.get("content-length"), "transfer-encoding" in found,
                   bool(found.get("authorization", "").strip()))

    @property
    def has_body(self) -> bool:
        return self.chunked or (self.content_length is not None and self.content_length.strip() not in ("", "0"))


def _token_in_url(scope: Scope) -> bool:
    query = scope.get("query_string", b"").decode("latin-1")
    return any(k.lower() in TOKEN_PARAMETERS for k, _ in parse_qsl(query, keep_blank_values=True))


def _needs_token(scope: Scope) -> bool:
    """Whether a request must carry a token: not in insecure-local mode, nor when a test (or an embedding
    application) replaced the principal dependency with ``app.dependency_overrides``."""
    app = scope.get("app")
    if principal in getattr(app, "dependency_overrides", {}):
        return False
    settings = getattr(getattr(app, "state", None), "settings", None)
    return not getattr(settings, "insecure_local", False)


class _CountedBody:
    """The app's ``receive`` and ``send``, counting body bytes; past the limit it answers 413 itself, tells
    the app the client went away, and drops whatever the app answers after that."""

    def __init__(self, receive: Receive, send: Send, limit: int):
        self._receive, self._send, self.limit = receive, send, limit
        self.received = 0
        self.started = False
        self.refused = False

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                await self._refuse()
                return {"type": "http.disconnect"}
        return message

    async def _refuse(self) -> None:
        self.refused = True
        if not self.started:
            response = problem_response(413, "too_large", f"request body passed {self.limit} bytes, the limit "
                                                          "of this route; the rest was not read", headers=_CLOSE)
            await response({"type": "http"}, self._receive, self._send)

    async def send(self, message: Message) -> None:
        if self.refused:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class BodyLimit:
    """The ASGI middleware (outermost of the app's own middleware): see the module docstring."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _Headers.of(scope)
        settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
        limit = body_limit(scope["method"], scope["path"], *(
            [settings.model_max_bytes, settings.training.max_upload_bytes] if settings else []))
        length = headers.content_length
        if length is not None and (not length.strip().isdigit() or int(length) > limit):
            refusal = problem_response(413, "too_large", f"request body of {length} bytes; the limit of this "
                                                         f"route is {limit}", headers=_CLOSE)
            await refusal(scope, receive, send)
            return
        if (headers.has_body and not headers.authorization and scope["path"].startswith("/api/")
                and _needs_token(scope) and not _token_in_url(scope)):
            refusal = problem_response(401, "unauthenticated", "missing Authorization: Bearer <token> header "
                                                               "(the body was not read)", headers=_CLOSE)
            await refusal(scope, receive, send)
            return
        if not headers.has_body:  # no Content-Length and not chunked: no body (HTTP/1.1), nothing to count; and a
            await self.app(scope, receive, send)  # live stream's every send skips one more wrapper
            return
        counted = _CountedBody(receive, send, limit)
        try:
            await self.app(scope, counted.receive, counted.send)
        except Exception:
            if not counted.refused:  # the app's complaint about the body we cut off is already answered
                raise
