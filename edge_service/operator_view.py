"""What the operator pages show, computed from stored results so a reload keeps it: per station under a
prefix, the last result, its age, the current shift's counters (good, NG, yield) and the run of consecutive
FAILs up to the newest result."""

from __future__ import annotations

import json
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, func, select

from edge_service.database import as_utc, as_utc_naive, results
from edge_service.store import list_stations, station_filter
from inspection.schema import Region, under_prefix

MAX_STATIONS = 200  # stations one overview shows


class LastResult(BaseModel):
    inspection_id: str
    part_id: str | None
    verdict: str
    score: float
    threshold: float
    inspected_at: datetime
    received_at: datetime
    regions: list[Region]


class StationStatus(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    station_path: str
    last: LastResult | None
    age_s: float | None = Field(description="seconds since the last result was received; null: none yet")
    good: int = Field(description="PASS parts in the current shift")
    ng: int = Field(description="FAIL parts in the current shift")
    yield_: float | None = Field(alias="yield", description="share of PASS in the current shift; null: no parts")
    fail_streak: int = Field(description="consecutive FAILs up to the newest result")


class Overview(BaseModel):
    prefix: str | None
    now: datetime
    shift_start: datetime
    next_shift: datetime
    stations: list[StationStatus]
    truncated: bool = Field(description="more stations matched than are shown")


def _last(conn, station: str) -> LastResult | None:
    row = conn.execute(select(results.c.inspection_id, results.c.part_id, results.c.verdict, results.c.score,
                              results.c.threshold, results.c.inspected_at, results.c.received_at, results.c.record)
                       .where(results.c.station_path == station)
                       .order_by(results.c.inspected_at.desc(), results.c.inspection_id.desc()).limit(1)).first()
    if row is None:
        return None
    regions = [Region.model_validate(r) for r in _regions(row.record)]
    return LastResult(inspection_id=row.inspection_id, part_id=row.part_id, verdict=row.verdict, score=row.score,
                      threshold=row.threshold, inspected_at=as_utc(row.inspected_at),
                      received_at=as_utc(row.received_at), regions=regions)


def _regions(record: str) -> list[dict]:
    return json.loads(record).get("regions", [])


def _fail_streak(conn, station: str) -> int:
    last_pass = conn.execute(select(func.max(results.c.inspected_at))
                             .where(results.c.station_path == station, results.c.verdict == "PASS")).scalar()
    conds = [results.c.station_path == station, results.c.verdict == "FAIL"]
    if last_pass is not None:
        conds.append(results.c.inspected_at > last_pass)
    return int(conn.execute(select(func.count()).where(*conds)).scalar() or 0)


def overview(engine: Engine, prefix: str | None, now: datetime, shift: tuple[datetime, datetime]) -> Overview:
    """Every registered station under ``prefix`` (at most :data:`MAX_STATIONS`), with this shift's counts."""
    matched = [s for s in list_stations(engine) if under_prefix(s, prefix)]
    shown = matched[:MAX_STATIONS]
    conds = [results.c.inspected_at >= as_utc_naive(shift[0])]
    scope = station_filter(prefix)
    if scope is not None:
        conds.append(scope)
    counts: dict[tuple[str, str], int] = {}
    out = []
    with engine.connect() as conn:
        for station, verdict, n in conn.execute(select(results.c.station_path, results.c.verdict, func.count())
                                                .where(*conds).group_by(results.c.station_path, results.c.verdict)):
            counts[(station, verdict)] = n
        for station in shown:
            last = _last(conn, station)
            good, ng = counts.get((station, "PASS"), 0), counts.get((station, "FAIL"), 0)
            out.append(StationStatus(
                station_path=station, last=last,
                age_s=max(0.0, (now - last.received_at).total_seconds()) if last else None,
                good=good, ng=ng, yield_=good / (good + ng) if good + ng else None,
                fail_streak=_fail_streak(conn, station) if last and last.verdict == "FAIL" else 0))
    return Overview(prefix=prefix, now=now, shift_start=shift[0], next_shift=shift[1], stations=out,
                    truncated=len(matched) > len(shown))
