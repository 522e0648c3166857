"""A station's assignment: the model (name, version, SHA-256) and threshold it should run, an optional shadow
candidate, and the earlier assignments that rollback returns to. Assigning and rolling back are audited and
done in one transaction each (the change and its audit entry, or neither). The line runner polls it.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from edge_service.database import as_utc, models, results, station_assignments, stations, utcnow
from edge_service.model_store import download_url
from edge_service.qa_audit import record
from edge_service.qa_models import AssignedModel, Assignment, AssignmentIn, StationAssignment
from edge_service.store import UnknownStation
from inspection.schema import under_prefix

MAX_PREVIOUS = 20  # earlier assignments kept for rollback
SNAPSHOT_FIELDS = ("model_name", "model_version", "model_sha256", "threshold", "shadow_model_name",
                   "shadow_model_version", "updated_by")


class NotAssignable(LookupError):
    """An unknown station or model (the message names it)."""


class NothingToRollBack(Exception):
    pass


class AssignmentRefused(ValueError):
    pass


def require_station(conn: Connection, station: str) -> None:
    if conn.execute(select(stations.c.path).where(stations.c.path == station)).first() is None:
        raise UnknownStation([station])


def _model_row(conn: Connection, name: str | None, version: str | None):
    if not name or not version:
        return None
    return conn.execute(select(models.c.name, models.c.version, models.c.sha256, models.c.size_bytes)
                        .where(models.c.name == name, models.c.version == version)).first()


Refs = dict[tuple[str | None, str | None], AssignedModel | None]  # looked up once per read


def _ref(conn: Connection, name: str | None, version: str | None, refs: Refs) -> AssignedModel | None:
    if (name, version) not in refs:
        row = _model_row(conn, name, version)
        refs[name, version] = None if row is None else AssignedModel(
            name=row.name, version=row.version, sha256=row.sha256, size_bytes=row.size_bytes,
            download_url=download_url(row.name, row.version))
    return refs[name, version]


def snapshot(row) -> dict[str, Any]:
    """An assignment row as the JSON kept in the history and the audit log."""
    out = {f: getattr(row, f) for f in SNAPSHOT_FIELDS}
    out["updated_at"] = as_utc(row.updated_at).isoformat()
    return out


def _from_values(conn: Connection, station: str, v: dict[str, Any], fallback: str | None, refs: Refs) -> Assignment:
    return Assignment(station=station, model_version=v.get("model_version") or fallback, threshold=v.get("threshold"),
                      updated_by=v.get("updated_by"), updated_at=v.get("updated_at"),
                      model=_ref(conn, v.get("model_name"), v.get("model_version"), refs),
                      shadow=_ref(conn, v.get("shadow_model_name"), v.get("shadow_model_version"), refs))


def _current(conn: Connection, station: str):
    return conn.execute(select(station_assignments).where(station_assignments.c.station_path == station)).first()


def current_for_update(conn: Connection, station: str):
    """The station's assignment row, locked until the transaction ends, so two changes at once cannot lose
    each other's history: a no-op UPDATE first takes the row lock on PostgreSQL and the write lock on SQLite
    (whose driver would otherwise read outside the transaction)."""
    where = station_assignments.c.station_path == station
    conn.execute(update(station_assignments).where(where).values(station_path=station_assignments.c.station_path))
    return _current(conn, station)


def read(conn: Connection, station: str) -> StationAssignment:
    """What the station should run; without an assignment, threshold and model are null and the model version
    is the one its newest result was judged with."""
    require_station(conn, station)
    row = _current(conn, station)
    latest = None
    if row is None or row.model_version is None:
        latest = conn.execute(select(results.c.model_version).where(results.c.station_path == station)
                              .order_by(results.c.inspected_at.desc()).limit(1)).scalar()
    if row is None:
        return StationAssignment(station=station, model_version=latest, threshold=None, updated_by=None,
                                 updated_at=None, previous=[])
    refs: Refs = {}
    current = _from_values(conn, station, {**row._mapping, "updated_at": as_utc(row.updated_at)}, latest, refs)
    previous = [_from_values(conn, station, v, None, refs) for v in json.loads(row.previous or "[]")]
    return StationAssignment(**current.model_dump(), previous=previous)


def station_assignment(engine: Engine, station: str) -> StationAssignment:
    with engine.connect() as conn:
        return read(conn, station)


def write(conn: Connection, station: str, old, values: dict[str, Any], history: list[dict[str, Any]]) -> None:
    """Replace the station's assignment with ``values`` (updated now), keeping ``history`` for rollback."""
    values = {**values, "updated_at": utcnow(), "previous": json.dumps(history[:MAX_PREVIOUS])}
    if old is None:
        conn.execute(station_assignments.insert().values(station_path=station, **values))
    else:
        conn.execute(station_assignments.update().where(station_assignments.c.station_path == station)
                     .values(**values))


def pushed(old) -> list[dict[str, Any]]:
    """The history after ``old`` gives way to a new assignment."""
    return [snapshot(old), *json.loads(old.previous or "[]")] if old is not None else []


def _checked_station(conn: Connection, station: str) -> None:
    try:
        require_station(conn, station)
    except UnknownStation:
        raise NotAssignable(f"unknown station {station!r}; register it first (inspection station add PATH)") from None


def _checked_model(conn: Connection, name: str, version: str, what: str):
    row = _model_row(conn, name, version)
    if row is None:
        raise NotAssignable(f"{what}: no model {name!r} version {version!r} on the service; upload it first")
    return row


def _models_for(conn: Connection, body: AssignmentIn):
    live = _checked_model(conn, body.model_name, body.model_version, "model")
    shadow = None
    if body.shadow is not None:
        shadow = _checked_model(conn, body.shadow.model_name, body.shadow.model_version, "shadow")
        if shadow.sha256 == live.sha256:
            raise AssignmentRefused("shadow: the candidate is the live model itself; pick another version")
    return live, shadow


def _assign_one(conn: Connection, station: str, live, shadow, body: AssignmentIn, actor: str) -> None:
    old = current_for_update(conn, station)
    values = {"model_name": live.name, "model_version": live.version, "model_sha256": live.sha256,
              "threshold": body.threshold, "shadow_model_name": shadow.name if shadow else None,
              "shadow_model_version": shadow.version if shadow else None, "updated_by": actor}
    write(conn, station, old, values, pushed(old))
    record(conn, actor, "model_assign", station, json.dumps(snapshot(old)) if old else None,
           json.dumps({k: values[k] for k in SNAPSHOT_FIELDS}), body.reason)


def assign(engine: Engine, station: str, body: AssignmentIn, actor: str) -> StationAssignment:
    """Assign a model version (threshold: override, or null for the model's own; optional shadow)."""
    with engine.begin() as conn:
        _checked_station(conn, station)
        live, shadow = _models_for(conn, body)
        _assign_one(conn, station, live, shadow, body, actor)
        return read(conn, station)


def stations_under(conn: Connection, prefix: str) -> list[str]:
    found = [p for p in conn.execute(select(stations.c.path).order_by(stations.c.path)).scalars()
             if under_prefix(p, prefix)]
    if not found:
        raise NotAssignable(f"no registered station under {prefix!r}")
    return found


def assign_prefix(engine: Engine, prefix: str, body: AssignmentIn, actor: str) -> list[StationAssignment]:
    """The same assignment for every station under a prefix, all in one transaction (one audit entry each)."""
    with engine.begin() as conn:
        targets = stations_under(conn, prefix)
        live, shadow = _models_for(conn, body)
        for station in targets:
            _assign_one(conn, station, live, shadow, body, actor)
        return [read(conn, station) for station in targets]


def _history(row) -> list[dict[str, Any]]:
    return json.loads(row.previous or "[]") if row is not None else []


def _rollback_one(conn: Connection, station: str, reason: str, actor: str) -> None:
    old = current_for_update(conn, station)
    history = _history(old)
    if not history:
        raise NothingToRollBack(f"station {station} has no earlier assignment to roll back to")
    target = history[0]
    values = {f: target.get(f) for f in SNAPSHOT_FIELDS if f != "updated_by"} | {"updated_by": actor}
    write(conn, station, old, values, history[1:])
    record(conn, actor, "model_rollback", station, json.dumps(snapshot(old)),
           json.dumps({k: values[k] for k in SNAPSHOT_FIELDS}), reason)


def rollback(engine: Engine, station: str, reason: str, actor: str) -> StationAssignment:
    """Back to the previous assignment (NothingToRollBack when there is none)."""
    with engine.begin() as conn:
        _checked_station(conn, station)
        _rollback_one(conn, station, reason, actor)
        return read(conn, station)


def rollback_prefix(engine: Engine, prefix: str, reason: str, actor: str) -> list[StationAssignment]:
    """Every station under the prefix back one step, or none of them (NothingToRollBack names those with no
    earlier assignment)."""
    with engine.begin() as conn:
        targets = stations_under(conn, prefix)
        bare = [s for s in targets if not _history(current_for_update(conn, s))]
        if bare:
            raise NothingToRollBack(f"no earlier assignment to roll back to at {', '.join(bare[:10])}; "
                                    "nothing was rolled back")
        for station in targets:
            _rollback_one(conn, station, reason, actor)
        return [read(conn, station) for station in targets]
