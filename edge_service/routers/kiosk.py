"""Kiosk login of the operator page: a token posted once becomes a persistent read-only cookie session
(:mod:`edge_service.kiosk`); logout, and the admin's list and revocation of sessions."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel

from edge_service import auth, kiosk
from edge_service.dependencies import Admin, Database, Settings
from edge_service.errors import Forbidden, InvalidRequest, NotFound, Unauthenticated, documented

router = APIRouter(include_in_schema=False)
admin_router = APIRouter(prefix="/api/v1/kiosk-sessions", tags=["kiosk"])
FORM = "application/x-www-form-urlencoded"


class KioskSession(BaseModel):
    id: str
    name: str
    token_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


async def _posted_token(request: Request) -> tuple[str, bool]:
    """The token of a login (JSON ``{"token": ...}`` or an HTML form), and whether it came from a form."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if ctype == FORM:
        values = parse_qs(body.decode("utf-8", "replace")).get("token", [""])
        return values[0].strip(), True
    if ctype == "application/json":
        try:
            data = json.loads(body)
        except ValueError:
            raise InvalidRequest("login body is not JSON; send {\"token\": \"insp_...\"}") from None
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str):
            raise InvalidRequest("login body needs a string field 'token'")
        return token.strip(), False
    raise InvalidRequest(f"login needs {FORM} or application/json, not {ctype or 'no content type'!r}")


@router.post("/kiosk/login")
async def login(request: Request, engine: Database, settings: Settings) -> Response:
    """Check the token once; answer with the session cookie (HttpOnly, SameSite=Strict, Secure on https)."""
    token, from_form = await _posted_token(request)
    if not token:
        raise InvalidRequest("login needs the token (field 'token')")
    who = await asyncio.to_thread(auth.lookup, engine, token)
    if who is None:
        raise Unauthenticated("unknown or revoked token")
    if not who.can("read"):
        raise Forbidden(f"role {who.role!r} may not read; a kiosk needs an operator, qa or admin token")
    session_id, secret = await asyncio.to_thread(kiosk.open_session, engine, who, settings.kiosk_session_days)
    res: Response = (RedirectResponse("/", status_code=303) if from_form else
                     JSONResponse({"session": session_id, "name": who.name, "role": who.role}))
    res.set_cookie(kiosk.COOKIE, secret, max_age=int(settings.kiosk_session_days * 86400), path="/",
                   httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return res


@router.post("/kiosk/logout", status_code=204)
async def logout(request: Request, engine: Database) -> Response:
    """End this browser's session (the cookie is deleted and the session revoked on the server)."""
    secret = request.cookies.get(kiosk.COOKIE)
    if secret:
        await asyncio.to_thread(kiosk.revoke_session, engine, secret=secret)
    res = Response(status_code=204)
    res.delete_cookie(kiosk.COOKIE, path="/", httponly=True, samesite="strict")
    return res


@admin_router.get("", responses=documented(401, 403))
def list_kiosk_sessions(_who: Admin, engine: Database) -> list[KioskSession]:
    """Every kiosk session, live or ended."""
    return [KioskSession(**s) for s in kiosk.list_sessions(engine)]


@admin_router.delete("/{session_id}", status_code=204, responses=documented(401, 403, 404))
def revoke_kiosk_session(session_id: str, _who: Admin, engine: Database) -> None:
    """End a kiosk session now; its browser must log in again."""
    if not kiosk.revoke_session(engine, session_id=session_id):
        raise NotFound(f"no live kiosk session {session_id}")
