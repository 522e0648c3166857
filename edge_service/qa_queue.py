"""The review queue's queries: results with the QA filters (part id prefix, defect class on top of the
API's filters), newest first and cursor-paged; bulk reviews (all or nothing); defect classes per station."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, delete, insert, or_, select, update

from edge_service.database import as_utc_naive, defect_classes, images, results, reviews, utcnow
from edge_service.qa_models import QueueItem
from edge_service.store import ResultQuery, _stored_fields, decode_cursor, encode_cursor, station_filter
from inspection.schema import under_prefix


class UnknownResults(LookupError):
    """Some ids of a bulk review do not exist: nothing was reviewed."""

    def __init__(self, ids: list[str]):
        super().__init__(", ".join(ids))
        self.ids = ids


class UnknownDefectClass(ValueError):
    """A defect class not in the station's list."""


@dataclass
class QueueQuery(ResultQuery):
    part_id: str | None = None
    defect_class: str | None = None


def _like_prefix(text: str) -> str:
    """A LIKE pattern for ids starting with ``text`` (its own % and _ escaped), one literal the index can use."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _conditions(q: QueueQuery) -> list[Any]:
    conds = [c for c in (
        station_filter(q.station),
        results.c.verdict == q.verdict if q.verdict else None,
        results.c.inspected_at >= as_utc_naive(q.since) if q.since else None,
        results.c.inspected_at < as_utc_naive(q.until) if q.until else None,
        results.c.score >= q.min_score if q.min_score is not None else None,
        results.c.score <= q.max_score if q.max_score is not None else None,
        results.c.review_state == q.review_state if q.review_state else None,
        results.c.model_version == q.model_version if q.model_version else None,
        results.c.part_id.like(_like_prefix(q.part_id), escape="\\") if q.part_id else None,
        results.c.defect_class == q.defect_class if q.defect_class else None,
    ) if c is not None]
    if q.cursor:
        at, rid = decode_cursor(q.cursor)
        conds.append(or_(results.c.inspected_at < at,
                         and_(results.c.inspected_at == at, results.c.inspection_id < rid)))
    return conds


def queue(engine: Engine, q: QueueQuery) -> tuple[list[QueueItem], str | None]:
    """One page of the queue (one query for the rows, one for their image kinds)."""
    stmt = (select(results).where(*_conditions(q))
            .order_by(results.c.inspected_at.desc(), results.c.inspection_id.desc()).limit(q.limit + 1))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
        more = len(rows) > q.limit
        rows = rows[:q.limit]
        kinds: dict[str, list[str]] = {}
        if rows:
            found = conn.execute(select(images.c.inspection_id, images.c.kind)
                                 .where(images.c.inspection_id.in_([r.inspection_id for r in rows])))
            for rid, kind in found:
                kinds.setdefault(rid, []).append(kind)
    cursor = encode_cursor(rows[-1].inspected_at, rows[-1].inspection_id) if more and rows else None
    items = [QueueItem.model_validate({**_stored_fields(r), "images": sorted(kinds.get(r.inspection_id, []))})
             for r in rows]
    return items, cursor


def classes_for(engine: Engine, station: str) -> list[str]:
    """The defect classes offered for a station: those of every prefix it lies under."""
    with engine.connect() as conn:
        rows = conn.execute(select(defect_classes.c.station_prefix, defect_classes.c.name)).all()
    return sorted({name for prefix, name in rows if under_prefix(station, prefix)})


def set_classes(engine: Engine, prefix: str, names: list[str], actor: str) -> None:
    """Replace the defect classes of a station prefix (audited)."""
    from edge_service.qa_audit import record

    clean = sorted({n.strip() for n in names if n.strip()})
    with engine.begin() as conn:
        old = [n for (n,) in conn.execute(select(defect_classes.c.name)
                                           .where(defect_classes.c.station_prefix == prefix))]
        conn.execute(delete(defect_classes).where(defect_classes.c.station_prefix == prefix))
        if clean:
            conn.execute(insert(defect_classes), [{"station_prefix": prefix, "name": n} for n in clean])
        record(conn, actor, "defect_classes", prefix, json.dumps(sorted(old)), json.dumps(clean), None)


def review_many(engine: Engine, ids: list[str], decision: str, defect_class: str | None, comment: str | None,
                reviewer: str) -> list[str]:
    """Review every id in one transaction: all exist and the class is offered for each station, or nothing
    is stored (UnknownResults, UnknownDefectClass)."""
    ids = list(dict.fromkeys(ids))
    with engine.begin() as conn:
        stations = dict(conn.execute(select(results.c.inspection_id, results.c.station_path)
                                     .where(results.c.inspection_id.in_(ids))).all())
        missing = [i for i in ids if i not in stations]
        if missing:
            raise UnknownResults(missing)
        if defect_class:
            rows = conn.execute(select(defect_classes.c.station_prefix, defect_classes.c.name)).all()
            for station in sorted(set(stations.values())):
                offered = {n for p, n in rows if under_prefix(station, p)}
                if offered and defect_class not in offered:
                    raise UnknownDefectClass(f"defect_class {defect_class!r} is not in the list for {station}: "
                                             f"{', '.join(sorted(offered))}")
        now = utcnow()
        conn.execute(update(results).where(results.c.inspection_id.in_(ids))
                     .values(review_state=decision, defect_class=defect_class))
        conn.execute(insert(reviews), [{"inspection_id": i, "decision": decision, "defect_class": defect_class,
                                        "comment": comment, "reviewer": reviewer, "created_at": now} for i in ids])
    return ids
