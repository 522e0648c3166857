"""Shadow comparison: for a station, the live verdicts against the shadow candidate's verdicts on the same
parts, from the stored result records (their optional ``shadow`` field: {model, verdict, score, threshold}),
grouped by live and candidate model; with the recent disagreements for QA to open."""

from __future__ import annotations

import json
from collections import defaultdict

from sqlalchemy import Engine, select

from edge_service.database import as_utc, results
from edge_service.model_assignments import require_station
from edge_service.qa_models import ShadowComparison, ShadowDisagreement, ShadowPair

MAX_DISAGREEMENTS = 20


def _pair_key(record: dict) -> tuple[str, str, str, str]:
    live, shadow = record["model"], record["shadow"]["model"]
    return live["name"], live["version"], shadow["name"], shadow["version"]


def compare(engine: Engine, station: str, limit: int) -> ShadowComparison:
    """The newest ``limit`` results of the station that carry a shadow verdict, compared."""
    stmt = (select(results.c.inspection_id, results.c.inspected_at, results.c.record)
            .where(results.c.station_path == station, results.c.record.like('%"shadow":{%'))
            .order_by(results.c.inspected_at.desc()).limit(limit))
    with engine.connect() as conn:
        require_station(conn, station)
        rows = conn.execute(stmt).all()
    counts: dict[tuple[str, str, str, str], dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    disagreements: dict[tuple[str, str, str, str], list[ShadowDisagreement]] = defaultdict(list)
    for row in rows:
        record = json.loads(row.record)
        if not isinstance(record.get("shadow"), dict):
            continue
        key, live, cand = _pair_key(record), record["verdict"], record["shadow"]["verdict"]
        counts[key][live, cand] += 1
        if live != cand and len(disagreements[key]) < MAX_DISAGREEMENTS:
            disagreements[key].append(ShadowDisagreement(
                inspection_id=row.inspection_id, inspected_at=as_utc(row.inspected_at), part_id=record.get("part_id"),
                live_verdict=live, live_score=record["score"], shadow_verdict=cand,
                shadow_score=record["shadow"]["score"]))
    pairs = []
    for key, c in counts.items():
        total = sum(c.values())
        pairs.append(ShadowPair(
            live_model=key[0], live_version=key[1], shadow_model=key[2], shadow_version=key[3], compared=total,
            both_pass=c["PASS", "PASS"], both_fail=c["FAIL", "FAIL"], only_live_fail=c["FAIL", "PASS"],
            only_shadow_fail=c["PASS", "FAIL"],
            agreement=(c["PASS", "PASS"] + c["FAIL", "FAIL"]) / total, disagreements=disagreements[key]))
    pairs.sort(key=lambda p: -p.compared)
    return ShadowComparison(station=station, scanned=len(rows), pairs=pairs)
