"""Thresholds with evidence: for a station (and model version), the scores of reviewed results (confirmed
defects against false alarms), the false-reject and escape rates any threshold would have given, a proposed
threshold for a target false-reject rate; applying a threshold (audited, all or nothing) and the station's
assignment that the line runner polls.

A result FAILs when its score is above the threshold, so at threshold t a false alarm is still rejected when
its score > t, and a confirmed defect escapes when its score <= t.
"""

from __future__ import annotations

import json
import math

from sqlalchemy import Engine, select

from edge_service import model_assignments
from edge_service.database import results, station_assignments
from edge_service.qa_audit import record
from edge_service.qa_models import EvidenceBin, RatePoint, StationAssignment, ThresholdEvidence

BINS = 20
CURVE_POINTS = 41


def rates(goods: list[float], defects: list[float], t: float) -> RatePoint:
    frr = sum(g > t for g in goods) / len(goods) if goods else None
    esc = sum(d <= t for d in defects) / len(defects) if defects else None
    return RatePoint(threshold=t, false_reject_rate=frr, escape_rate=esc)


def propose(goods: list[float], target_frr: float) -> float | None:
    """The lowest threshold whose false-reject rate on ``goods`` is at most ``target_frr`` (None without
    false alarms to judge by)."""
    if not goods:
        return None
    ranked = sorted(goods, reverse=True)
    allowed = math.floor(target_frr * len(ranked) + 1e-9)  # this many may still be rejected
    if allowed >= len(ranked):
        return None
    return max(ranked[allowed], 1e-9)  # those strictly above it are rejected: at most `allowed`


def _histogram(goods: list[float], defects: list[float]) -> list[EvidenceBin]:
    scores = goods + defects
    if not scores:
        return []
    lo, hi = min(scores), max(scores)
    width = (hi - lo) / BINS or 1.0
    bins = [EvidenceBin(low=lo + i * width, high=lo + (i + 1) * width, confirmed_defects=0, false_alarms=0)
            for i in range(BINS)]
    for s in goods:
        bins[min(int((s - lo) / width), BINS - 1)].false_alarms += 1
    for s in defects:
        bins[min(int((s - lo) / width), BINS - 1)].confirmed_defects += 1
    return bins


def _current_threshold(conn, station: str) -> float | None:
    assigned = conn.execute(select(station_assignments.c.threshold)
                            .where(station_assignments.c.station_path == station)).scalar()
    if assigned is not None:
        return float(assigned)
    return conn.execute(select(results.c.threshold).where(results.c.station_path == station)
                        .order_by(results.c.inspected_at.desc()).limit(1)).scalar()


def evidence(engine: Engine, station: str, model_version: str | None, target_frr: float,
             at: float | None = None) -> ThresholdEvidence:
    conds = [results.c.station_path == station, results.c.review_state.in_(("confirmed_defect", "false_alarm"))]
    if model_version:
        conds.append(results.c.model_version == model_version)
    with engine.connect() as conn:
        model_assignments.require_station(conn, station)
        rows = conn.execute(select(results.c.score, results.c.review_state).where(*conds)).all()
        current = _current_threshold(conn, station)
    goods = [s for s, state in rows if state == "false_alarm"]
    defects = [s for s, state in rows if state == "confirmed_defect"]
    scores = goods + defects
    curve = []
    if scores:
        lo, hi = min(scores), max(scores)
        curve = [rates(goods, defects, lo + (hi - lo) * i / (CURVE_POINTS - 1)) for i in range(CURVE_POINTS)]
    proposed = propose(goods, target_frr)
    note = None
    if not goods:
        note = "no reviewed false alarms for this station and model version: no threshold can be proposed yet"
    return ThresholdEvidence(
        station=station, model_version=model_version, confirmed_defects=len(defects), false_alarms=len(goods),
        current_threshold=current, histogram=_histogram(goods, defects), curve=curve,
        target_false_reject_rate=target_frr, proposed_threshold=proposed,
        proposed=rates(goods, defects, proposed) if proposed is not None else None,
        what_if=rates(goods, defects, at) if at is not None else None, note=note)


def assignment(engine: Engine, station: str) -> StationAssignment:
    """What the station should run (see model_assignments.read)."""
    return model_assignments.station_assignment(engine, station)


def apply_threshold(engine: Engine, station: str, threshold: float, model_version: str | None, reason: str,
                    actor: str) -> StationAssignment:
    """Set the station's threshold and write the audit entry in one transaction (both or neither); the
    assignment before it is kept for rollback. With a model assigned, the threshold is for that model."""
    if not (math.isfinite(threshold) and threshold > 0):
        raise ValueError(f"threshold {threshold!r} is not a finite positive number")
    with engine.begin() as conn:
        model_assignments.require_station(conn, station)
        old = model_assignments.current_for_update(conn, station)
        if old is not None and old.model_name is not None and model_version and model_version != old.model_version:
            raise model_assignments.AssignmentRefused(
                f"model_version {model_version!r}: the station is assigned {old.model_name} version "
                f"{old.model_version}; assign that version on the models page first")
        version = model_version or (old.model_version if old else None)
        values = {"model_version": version, "threshold": threshold, "updated_by": actor}
        if old is not None:
            values |= {f: getattr(old, f) for f in ("model_name", "model_sha256", "shadow_model_name",
                                                     "shadow_model_version")}
        model_assignments.write(conn, station, old, values, model_assignments.pushed(old))
        old_value = json.dumps({"threshold": old.threshold, "model_version": old.model_version}) if old else None
        record(conn, actor, "threshold", station, old_value,
               json.dumps({"threshold": threshold, "model_version": version}), reason)
    return assignment(engine, station)
