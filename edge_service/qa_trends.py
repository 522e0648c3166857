"""Trends for a station prefix and period: yield and defect rate per hour or day, the Pareto of reviewed
defect classes, score distributions of PASS and FAIL with the thresholds used, and per model version the
reviewed false alarms and escapes. Aggregated in SQL (the same on SQLite and PostgreSQL); CSV of any table."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine, Integer, cast, func, select

from edge_service.database import as_utc, as_utc_naive, results, utcnow
from edge_service.qa_models import (
    Bucket,
    HistogramBin,
    ModelVersionRow,
    ParetoRow,
    RegionCell,
    TrendPoint,
    Trends,
)
from edge_service.store import station_filter

SCORE_BINS = 20
GRID = 8
MAX_GRID_RESULTS = 20_000  # the newest FAILs of the period whose regions are placed on the grid
TABLES = ("series", "pareto", "scores", "models", "regions")


def _bucket(engine: Engine, bucket: Bucket):
    col = results.c.inspected_at
    if engine.dialect.name == "postgresql":
        return func.date_trunc(bucket, col)
    return func.strftime("%Y-%m-%dT%H:00:00" if bucket == "hour" else "%Y-%m-%dT00:00:00", col)


def _start(value: str | datetime) -> datetime:
    return as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


def _count_if(condition) -> Any:
    return func.coalesce(func.sum(cast(condition, Integer)), 0)


def _series(conn, engine: Engine, conds: list, bucket: Bucket) -> list[TrendPoint]:
    start = _bucket(engine, bucket).label("start")
    rows = conn.execute(select(start, func.count(), _count_if(results.c.verdict == "FAIL")).where(*conds)
                        .group_by(start).order_by(start)).all()
    return [TrendPoint(start=_start(s), total=n, fail=int(f), yield_rate=(n - f) / n if n else None,
                       defect_rate=f / n if n else None) for s, n, f in rows]


def _pareto(conn, conds: list) -> list[ParetoRow]:
    rows = conn.execute(select(results.c.defect_class, func.count().label("n"))
                        .where(*conds, results.c.review_state == "confirmed_defect",
                               results.c.defect_class.is_not(None))
                        .group_by(results.c.defect_class).order_by(func.count().desc(), results.c.defect_class)).all()
    total, running, out = sum(n for _, n in rows), 0, []
    for name, n in rows:
        running += n
        out.append(ParetoRow(defect_class=name, count=n, cumulative_share=running / total))
    return out


def _scores(conn, engine: Engine, conds: list) -> list[HistogramBin]:
    lo, hi = conn.execute(select(func.min(results.c.score), func.max(results.c.score)).where(*conds)).one()
    if lo is None:
        return []
    width = (hi - lo) / SCORE_BINS or 1.0
    scaled = (results.c.score - lo) / width  # >= 0: SQLite's CAST truncates; PostgreSQL's rounds, so floor
    index = cast(func.floor(scaled) if engine.dialect.name == "postgresql" else scaled, Integer)
    rows = conn.execute(select(index.label("i"), _count_if(results.c.verdict == "PASS"),
                               _count_if(results.c.verdict == "FAIL")).where(*conds).group_by(index)).all()
    bins = [HistogramBin(low=lo + i * width, high=lo + (i + 1) * width, passed=0, failed=0) for i in range(SCORE_BINS)]
    for i, p, f in rows:
        b = bins[min(int(i), SCORE_BINS - 1)]  # the maximum falls on the upper edge of the last bin
        b.passed += int(p)
        b.failed += int(f)
    return bins


def _models(conn, conds: list) -> list[ModelVersionRow]:
    fail, state = results.c.verdict == "FAIL", results.c.review_state
    rows = conn.execute(select(results.c.model_version, func.count(), _count_if(fail),
                               _count_if(state != "unreviewed"), _count_if(fail & (state == "confirmed_defect")),
                               _count_if(state == "false_alarm"),
                               _count_if((results.c.verdict == "PASS") & (state == "confirmed_defect")))
                        .where(*conds).group_by(results.c.model_version).order_by(results.c.model_version)).all()
    return [ModelVersionRow(model_version=v, total=n, fail=int(f), reviewed=int(r), confirmed_defects=int(c),
                            false_alarms=int(a), escapes=int(e)) for v, n, f, r, c, a, e in rows]


def _region_grid(conn, conds: list) -> list[RegionCell]:
    """Where FAIL regions centre, on a GRID x GRID grid over the image (from the stored records)."""
    rows = conn.execute(select(results.c.record).where(*conds, results.c.verdict == "FAIL")
                        .order_by(results.c.inspected_at.desc()).limit(MAX_GRID_RESULTS)).all()
    counts: dict[tuple[int, int], int] = {}
    for (raw,) in rows:
        rec = json.loads(raw)
        w, h = rec["image_width"] or 1, rec["image_height"] or 1
        for g in rec["regions"]:
            cell = (min(int((g["y"] + g["height"] / 2) / h * GRID), GRID - 1),
                    min(int((g["x"] + g["width"] / 2) / w * GRID), GRID - 1))
            counts[cell] = counts.get(cell, 0) + 1
    return [RegionCell(row=r, column=c, regions=n) for (r, c), n in sorted(counts.items())]


def trends(engine: Engine, station: str | None, since: datetime | None, until: datetime | None,
           bucket: Bucket = "hour") -> Trends:
    until_n = as_utc_naive(until) if until else utcnow()
    since_n = as_utc_naive(since) if since else until_n - timedelta(hours=24)
    conds = [results.c.inspected_at >= since_n, results.c.inspected_at < until_n]
    scope = station_filter(station)
    if scope is not None:
        conds.append(scope)
    with engine.connect() as conn:
        thresholds = [t for (t,) in conn.execute(select(results.c.threshold).where(*conds).distinct()
                                                 .order_by(results.c.threshold).limit(20))]
        return Trends(station=station, since=as_utc(since_n), until=as_utc(until_n), bucket=bucket,
                      series=_series(conn, engine, conds, bucket), pareto=_pareto(conn, conds),
                      scores=_scores(conn, engine, conds), thresholds=thresholds, models=_models(conn, conds),
                      region_grid_size=GRID, region_grid=_region_grid(conn, conds))


def to_csv(t: Trends, table: str) -> str:
    """One table of the trends as CSV (header row first)."""
    tables: dict[str, tuple[type[BaseModel], Sequence[BaseModel]]] = {
        "series": (TrendPoint, t.series), "pareto": (ParetoRow, t.pareto), "scores": (HistogramBin, t.scores),
        "models": (ModelVersionRow, t.models), "regions": (RegionCell, t.region_grid)}
    model, rows = tables[table]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(list(model.model_fields))
    for row in rows:
        writer.writerow([_cell(v) for v in row.model_dump(mode="json").values()])
    return out.getvalue()


def _cell(value: Any) -> Any:
    """A CSV cell; text that a spreadsheet would run as a formula (=, +, -, @) is quoted with a leading '."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value
