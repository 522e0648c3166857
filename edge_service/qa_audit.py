"""The audit log of QA changes (thresholds, defect classes): who, when, old value, new value, why."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, insert, select

from edge_service.database import as_utc, audit_log, utcnow
from edge_service.qa_models import AuditEntry


def record(conn: Connection, actor: str, action: str, target: str, old: str | None, new: str | None,
           reason: str | None) -> None:
    """Write one entry inside the caller's transaction, so a change and its entry commit together."""
    conn.execute(insert(audit_log).values(at=utcnow(), actor=actor, action=action, target=target, old_value=old,
                                          new_value=new, reason=reason))


def entries(engine: Engine, limit: int = 200, target: str | None = None) -> list[AuditEntry]:
    """Newest first."""
    stmt = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if target:
        stmt = stmt.where(audit_log.c.target == target)
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return [AuditEntry(id=r.id, at=as_utc(r.at), actor=r.actor, action=r.action, target=r.target,
                       old_value=r.old_value, new_value=r.new_value, reason=r.reason) for r in rows]
