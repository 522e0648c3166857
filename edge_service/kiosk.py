"""Kiosk sessions: the operator page's login that survives a browser restart without a token in the URL.

``POST /kiosk/login`` takes a reading token once and answers with a persistent cookie holding a new random
secret (not the token); only the secret's SHA-256 is stored. A session is read-only: it is accepted only on
the GET routes in :data:`KIOSK_ROUTES` (what the operator pages read), so it opens no CSRF surface. It ends
at logout, when an admin revokes it, when its token is revoked, or after ``kiosk_session_days``.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import Engine, insert, select, update

from edge_service.auth import Principal, hash_token
from edge_service.database import as_utc, kiosk_sessions, tokens, utcnow

COOKIE = "inspection_kiosk"
# the routes (method GET, FastAPI path templates) the operator pages need; nothing else accepts the cookie
KIOSK_ROUTES = frozenset({
    "/api/v1/stations", "/api/v1/results", "/api/v1/results/{inspection_id}",
    "/api/v1/results/{inspection_id}/images/{kind}", "/api/v1/stats", "/api/v1/stream",
    "/api/v1/operator/overview",
})


def open_session(engine: Engine, who: Principal, days: float) -> tuple[str, str]:
    """A new session for the token ``who`` signed in with: (session id, cookie secret)."""
    session_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(insert(kiosk_sessions).values(id=session_id, secret_hash=hash_token(secret),
                                                   token_id=who.token_id, name=who.name, created_at=now,
                                                   expires_at=now + timedelta(days=days)))
    return session_id, secret


def session_principal(engine: Engine, secret: str) -> Principal | None:
    """The read-only principal of a live session (its token still valid), or None."""
    now = utcnow()
    stmt = (select(kiosk_sessions.c.id, kiosk_sessions.c.name)
            .join(tokens, tokens.c.id == kiosk_sessions.c.token_id)
            .where(kiosk_sessions.c.secret_hash == hash_token(secret), kiosk_sessions.c.revoked_at.is_(None),
                   kiosk_sessions.c.expires_at > now, tokens.c.revoked_at.is_(None)))
    with engine.connect() as conn:
        row = conn.execute(stmt).first()
    return Principal(f"kiosk:{row.id}", f"{row.name} (kiosk)", "operator") if row else None


def revoke_session(engine: Engine, *, session_id: str | None = None, secret: str | None = None) -> bool:
    """End a session, by id (admin) or by its cookie secret (logout); True when one was live."""
    cond = (kiosk_sessions.c.id == session_id) if session_id is not None else (
        kiosk_sessions.c.secret_hash == hash_token(secret or ""))
    with engine.begin() as conn:
        res = conn.execute(update(kiosk_sessions).where(cond, kiosk_sessions.c.revoked_at.is_(None))
                           .values(revoked_at=utcnow()))
    return res.rowcount == 1


def list_sessions(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(select(kiosk_sessions).order_by(kiosk_sessions.c.created_at)).all()
    return [{"id": r.id, "name": r.name, "token_id": r.token_id, "created_at": as_utc(r.created_at),
             "expires_at": as_utc(r.expires_at), "revoked_at": as_utc(r.revoked_at) if r.revoked_at else None}
            for r in rows]
