"""Reading and writing results, reviews and stations (SQLAlchemy Core, the same on SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, get_args

from sqlalchemy import ColumnElement, Engine, and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from edge_service.api_models import (
    DefectClassCount,
    HourCount,
    ResultDetail,
    ReviewDecision,
    ReviewRecord,
    ReviewState,
    Stats,
    StoredResult,
)
from edge_service.database import as_utc, as_utc_naive, images, results, reviews, stations, utcnow
from inspection.schema import InspectionResult, StationContext

REVIEW_DECISIONS: tuple[ReviewDecision, ...] = get_args(ReviewDecision)
REVIEW_STATES: tuple[ReviewState, ...] = get_args(ReviewState)


class UnknownStation(Exception):
    """Results for stations that were never registered (the whole batch is refused)."""

    def __init__(self, paths: list[str]):
        super().__init__(", ".join(paths))
        self.paths = paths


class InvalidCursor(ValueError):
    """A pagination cursor this service did not give out."""


@dataclass
class IngestOutcome:
    stored: list[str]
    duplicates: list[str]


def _insert(engine: Engine, table):
    return (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(table)


def station_filter(prefix: str | None) -> ColumnElement[bool] | None:
    """Rows whose station path is the prefix or lies under it: the SQL form of
    :func:`inspection.schema.under_prefix` (whole segments; no prefix, or only slashes, matches every row)."""
    p = prefix.strip("/") if prefix else ""
    if not p:
        return None
    return or_(results.c.station_path == p, func.substr(results.c.station_path, 1, len(p) + 1) == p + "/")


# ---------------------------------------------------------------------------------------------- stations


def add_station(engine: Engine, station: StationContext) -> bool:
    stmt = (_insert(engine, stations).values(path=station.path, created_at=utcnow(), **station.model_dump())
            .on_conflict_do_nothing().returning(stations.c.path))
    with engine.begin() as conn:
        return conn.execute(stmt).first() is not None


def list_stations(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r.path for r in conn.execute(select(stations.c.path).order_by(stations.c.path))]


# ------------------------------------------------------------------------------------------------ ingest


# columns written by ingest, with their PostgreSQL array types for the unnest() fast path
_INGEST_COLUMNS = {
    "inspection_id": "varchar", "station_path": "varchar", "part_id": "varchar", "verdict": "varchar",
    "score": "float8", "threshold": "float8", "model_name": "varchar", "model_version": "varchar",
    "model_sha256": "varchar", "schema_version": "varchar", "captured_at": "timestamp", "inspected_at": "timestamp",
    "received_at": "timestamp", "review_state": "varchar", "record": "text",
}
_PG_INGEST = (f"INSERT INTO results ({', '.join(_INGEST_COLUMNS)}) "
              f"SELECT * FROM unnest({', '.join(f'%b::{t}[]' for t in _INGEST_COLUMNS.values())}) "
              "ON CONFLICT (inspection_id) DO NOTHING RETURNING inspection_id")
_known_stations: dict[str, set[str]] = {}  # per database URL; stations are never deleted


def _check_stations(conn, engine: Engine, paths: list[str]) -> None:
    known = _known_stations.setdefault(str(engine.url), set())
    missing = [p for p in paths if p not in known]
    if missing:
        found = {p for (p,) in conn.execute(select(stations.c.path).where(stations.c.path.in_(missing)))}
        known |= found
        unknown = [p for p in missing if p not in found]
        if unknown:
            raise UnknownStation(unknown)


def ingest(engine: Engine, batch: Sequence[InspectionResult]) -> IngestOutcome:
    """Store a batch atomically; ids already stored are reported, not stored again. Every result must have
    its station (the API refuses those without)."""
    now = utcnow()
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for r in batch:
        rid = str(r.inspection_id)
        if rid in seen:
            continue
        if r.station is None:
            raise ValueError(f"result {rid} has no station")
        seen.add(rid)
        rows.append({
            "inspection_id": rid, "station_path": r.station.path, "part_id": r.part_id, "verdict": r.verdict,
            "score": r.score, "threshold": r.threshold, "model_name": r.model.name,
            "model_version": r.model.version, "model_sha256": r.model.sha256, "schema_version": r.schema_version,
            "captured_at": as_utc_naive(r.captured_at) if r.captured_at else None,
            "inspected_at": as_utc_naive(r.inspected_at), "received_at": now, "review_state": "unreviewed",
            "record": r.model_dump_json()})
    stored: set[str]
    with engine.begin() as conn:
        _check_stations(conn, engine, sorted({r["station_path"] for r in rows}))
        if not rows:
            stored = set()
        elif engine.dialect.name == "postgresql":
            # one short statement, 15 arrays sent in binary (%b): no per-value escaping, 3x less CPU
            params = tuple([row[c] for row in rows] for c in _INGEST_COLUMNS)
            stored = {r for (r,) in conn.exec_driver_sql(_PG_INGEST, params)}
        else:
            stmt = _insert(engine, results).on_conflict_do_nothing(index_elements=["inspection_id"]).returning(
                results.c.inspection_id)
            stored = {r for (r,) in conn.execute(stmt, rows)}
    ids: list[str] = [r["inspection_id"] for r in rows]
    return IngestOutcome(stored=[i for i in ids if i in stored], duplicates=[i for i in ids if i not in stored])


# ------------------------------------------------------------------------------------------------- query


@dataclass
class ResultQuery:
    station: str | None = None
    verdict: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_score: float | None = None
    max_score: float | None = None
    review_state: str | None = None
    model_version: str | None = None
    limit: int = 50
    cursor: str | None = None


def encode_cursor(inspected_at: datetime, inspection_id: str) -> str:
    raw = json.dumps([inspected_at.isoformat(), inspection_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises InvalidCursor for a cursor this service did not give out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, rid = json.loads(raw)
        at = datetime.fromisoformat(when)
        if at.tzinfo is not None:  # cursors carry the stored naive UTC time
            raise ValueError(when)
        return at, str(rid)
    except Exception:
        raise InvalidCursor("cursor is not one this service gave out") from None


def _stored_fields(row) -> dict[str, Any]:
    return {**json.loads(row.record), "review_state": row.review_state, "defect_class": row.defect_class,
            "received_at": as_utc(row.received_at)}


def query(engine: Engine, q: ResultQuery) -> tuple[list[StoredResult], str | None]:
    conds = [c for c in (
        station_filter(q.station),
        results.c.verdict == q.verdict if q.verdict else None,
        results.c.inspected_at >= as_utc_naive(q.since) if q.since else None,
        results.c.inspected_at < as_utc_naive(q.until) if q.until else None,
        results.c.score >= q.min_score if q.min_score is not None else None,
        results.c.score <= q.max_score if q.max_score is not None else None,
        results.c.review_state == q.review_state if q.review_state else None,
        results.c.model_version == q.model_version if q.model_version else None,
    ) if c is not None]
    if q.cursor:
        at, rid = decode_cursor(q.cursor)
        conds.append(or_(results.c.inspected_at < at,
                         and_(results.c.inspected_at == at, results.c.inspection_id < rid)))
    stmt = (select(results).where(*conds).order_by(results.c.inspected_at.desc(), results.c.inspection_id.desc())
            .limit(q.limit + 1))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    more = len(rows) > q.limit
    rows = rows[:q.limit]
    cursor = encode_cursor(rows[-1].inspected_at, rows[-1].inspection_id) if more and rows else None
    return [StoredResult.model_validate(_stored_fields(r)) for r in rows], cursor


def get(engine: Engine, inspection_id: str) -> ResultDetail | None:
    with engine.connect() as conn:
        row = conn.execute(select(results).where(results.c.inspection_id == inspection_id)).first()
        if row is None:
            return None
        history = conn.execute(select(reviews).where(reviews.c.inspection_id == inspection_id)
                               .order_by(reviews.c.id)).all()
        kinds = [k for (k,) in conn.execute(select(images.c.kind).where(images.c.inspection_id == inspection_id))]
    return ResultDetail.model_validate({
        **_stored_fields(row), "images": sorted(kinds),
        "reviews": [ReviewRecord(decision=h.decision, defect_class=h.defect_class, comment=h.comment,
                                 reviewer=h.reviewer, created_at=as_utc(h.created_at)) for h in history]})


def station_of(engine: Engine, inspection_id: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(results.c.station_path).where(results.c.inspection_id == inspection_id)).scalar()


def review(engine: Engine, inspection_id: str, decision: str, defect_class: str | None, comment: str | None,
           reviewer: str) -> bool:
    with engine.begin() as conn:
        done = conn.execute(update(results).where(results.c.inspection_id == inspection_id)
                            .values(review_state=decision, defect_class=defect_class)).rowcount
        if not done:
            return False
        conn.execute(insert(reviews).values(inspection_id=inspection_id, decision=decision,
                                            defect_class=defect_class, comment=comment, reviewer=reviewer,
                                            created_at=utcnow()))
    return True


# ------------------------------------------------------------------------------------------------- stats


def _hour(engine: Engine, col):
    if engine.dialect.name == "postgresql":
        return func.date_trunc("hour", col)
    return func.strftime("%Y-%m-%dT%H:00:00", col)


def _hour_start(h: str | datetime) -> datetime:
    """An hour bucket as the databases give it (SQLite: text, PostgreSQL: naive UTC) as aware UTC."""
    return as_utc(datetime.fromisoformat(h) if isinstance(h, str) else h)


def stats(engine: Engine, station: str | None, since: datetime | None, until: datetime | None) -> Stats:
    until = as_utc_naive(until) if until else utcnow()
    since = as_utc_naive(since) if since else until - timedelta(hours=24)
    conds = [results.c.inspected_at >= since, results.c.inspected_at < until]
    scope = station_filter(station)
    if scope is not None:
        conds.append(scope)
    is_fail = func.sum(func.cast(results.c.verdict == "FAIL", postgresql.INTEGER))
    hour = _hour(engine, results.c.inspected_at).label("hour")
    with engine.connect() as conn:
        total, fails = conn.execute(select(func.count(), is_fail).where(*conds)).one()
        hourly = conn.execute(select(hour, func.count(), is_fail).where(*conds).group_by(hour).order_by(hour)).all()
        top = conn.execute(select(results.c.defect_class, func.count().label("n"))
                           .where(*conds, results.c.defect_class.is_not(None))
                           .group_by(results.c.defect_class).order_by(func.count().desc()).limit(10)).all()
    fails = int(fails or 0)
    return Stats(station=station, since=as_utc(since), until=as_utc(until), total=total, passed=total - fails,
                 fail=fails, yield_=(total - fails) / total if total else None,
                 defect_rate=fails / total if total else None,
                 hourly=[HourCount(hour=_hour_start(h), total=n, fail=int(f or 0)) for h, n, f in hourly],
                 top_defect_classes=[DefectClassCount(defect_class=c, count=n) for c, n in top])
