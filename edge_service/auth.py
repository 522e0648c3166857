"""API tokens and roles.

Tokens are random (256 bits), shown once at creation, stored only as SHA-256 hashes (a fast hash is right for
high-entropy secrets), and accepted only in the ``Authorization: Bearer`` header. Roles:

- ``edge``: ingest results and upload images, optionally only for stations under a prefix;
- ``operator``: read results, images, stats, the live stream and metrics;
- ``qa``: what an operator can, and review results;
- ``admin``: everything, and manage stations and tokens.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal, get_args

from sqlalchemy import Engine, insert, select, update

from edge_service.api_models import Role, TokenInfo, check_scope, check_station_prefix
from edge_service.database import as_utc, tokens, utcnow
from inspection.schema import under_prefix

ROLES: tuple[Role, ...] = get_args(Role)
TOKEN_PREFIX = "insp_"
Permission = Literal["ingest", "read", "review", "admin"]

# what each role may do
PERMISSIONS: dict[str, set[Permission]] = {
    "edge": {"ingest"},
    "operator": {"read"},
    "qa": {"read", "review"},
    "admin": {"ingest", "read", "review", "admin"},
}


@dataclass(frozen=True)
class Principal:
    token_id: str
    name: str
    role: str
    station_prefix: str | None = None

    def can(self, permission: Permission) -> bool:
        return permission in PERMISSIONS[self.role]

    def may_write_station(self, station_path: str) -> bool:
        return under_prefix(station_path, self.station_prefix)


LOCAL_ADMIN = Principal("local", "insecure-local", "admin")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    id: str
    token: str
    name: str
    role: str
    station_prefix: str | None


def create_token(engine: Engine, name: str, role: str, station_prefix: str | None = None) -> NewToken:
    if role not in ROLES:
        raise ValueError(f"role {role!r}: choose one of {', '.join(ROLES)}")
    if station_prefix is not None:
        check_station_prefix(station_prefix)
        check_scope(role, station_prefix)
    token_id = secrets.token_hex(4)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(insert(tokens).values(id=token_id, name=name, role=role, station_prefix=station_prefix,
                                           token_hash=hash_token(token), created_at=utcnow()))
    return NewToken(token_id, token, name, role, station_prefix)


def revoke_token(engine: Engine, token_id: str) -> bool:
    with engine.begin() as conn:
        res = conn.execute(update(tokens).where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
                           .values(revoked_at=utcnow()))
    return res.rowcount == 1


def list_tokens(engine: Engine) -> list[TokenInfo]:
    with engine.connect() as conn:
        rows = conn.execute(select(tokens).order_by(tokens.c.created_at)).all()
    return [TokenInfo(id=r.id, name=r.name, role=r.role, station_prefix=r.station_prefix,
                      created_at=as_utc(r.created_at), revoked_at=as_utc(r.revoked_at) if r.revoked_at else None)
            for r in rows]


def lookup(engine: Engine, token: str) -> Principal | None:
    with engine.connect() as conn:
        row = conn.execute(select(tokens).where(tokens.c.token_hash == hash_token(token),
                                                tokens.c.revoked_at.is_(None))).first()
    return Principal(row.id, row.name, row.role, row.station_prefix) if row else None
