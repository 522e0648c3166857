"""What the routes depend on, read from ``request.app.state`` (set by :func:`edge_service.app.create_app`):
the settings, the database engine, the image store, the live feed, and who is asking (the principal and
the permission a route needs). Tests replace any of these with ``app.dependency_overrides``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy import Engine

from edge_service import auth, kiosk
from edge_service.errors import Forbidden, TokenInUrl, Unauthenticated
from edge_service.image_store import ImageStore
from edge_service.live import LiveFeed
from edge_service.redaction import TOKEN_PARAMETERS
from edge_service.settings import ServiceSettings


def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_images(request: Request) -> ImageStore:
    return request.app.state.images


def get_feed(request: Request) -> LiveFeed:
    return request.app.state.feed


Settings = Annotated[ServiceSettings, Depends(get_settings)]
Database = Annotated[Engine, Depends(get_engine)]
Images = Annotated[ImageStore, Depends(get_images)]
Feed = Annotated[LiveFeed, Depends(get_feed)]


def principal(request: Request, settings: Settings, engine: Database,
              authorization: Annotated[str | None, Header()] = None) -> auth.Principal:
    """Who sends the request, from ``Authorization: Bearer <token>`` (anyone is admin in insecure-local mode)."""
    if any(k.lower() in TOKEN_PARAMETERS for k in request.query_params):
        raise TokenInUrl("tokens are accepted only in the Authorization: Bearer header, never in the URL")
    if settings.insecure_local:
        return auth.LOCAL_ADMIN
    if not authorization and (secret := request.cookies.get(kiosk.COOKIE)):
        return _kiosk_principal(request, engine, secret)
    if not authorization:
        raise Unauthenticated("missing Authorization: Bearer <token> header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization header must be 'Bearer <token>'")
    who = auth.lookup(engine, token.strip())
    if who is None:
        raise Unauthenticated("unknown or revoked token")
    return who


def _kiosk_principal(request: Request, engine: Engine, secret: str) -> auth.Principal:
    """A kiosk cookie counts only on the GET routes of the operator pages (read-only: no CSRF surface)."""
    route = getattr(request.scope.get("route"), "path", None)
    if request.method != "GET" or route not in kiosk.KIOSK_ROUTES:
        raise Unauthenticated("a kiosk session only reads the operator page's data; send Authorization: "
                              "Bearer <token>")
    who = kiosk.session_principal(engine, secret)
    if who is None:
        raise Unauthenticated("kiosk session ended (logged out, revoked or expired); log in again")
    return who


def needs(permission: auth.Permission) -> Callable[[auth.Principal], auth.Principal]:
    """A dependency that lets the request through only if its principal has ``permission``."""

    def check(who: Annotated[auth.Principal, Depends(principal)]) -> auth.Principal:
        if not who.can(permission):
            raise Forbidden(f"role {who.role!r} may not {permission}")
        return who

    return check


Ingest = Annotated[auth.Principal, Depends(needs("ingest"))]
Reader = Annotated[auth.Principal, Depends(needs("read"))]
Reviewer = Annotated[auth.Principal, Depends(needs("review"))]
Admin = Annotated[auth.Principal, Depends(needs("admin"))]
