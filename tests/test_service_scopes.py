"""Station prefixes mean the same everywhere (token scopes, the live feed, SQL queries and stats): whole
segments, one rule (inspection.schema.under_prefix); and a scoped edge token cannot write another station."""

from __future__ import annotations

import uuid

import pytest
from service_support import OTHER, STATION, make_result, png_bytes
from sqlalchemy import select

from edge_service import store
from edge_service.auth import Principal
from edge_service.database import images as images_table
from edge_service.database import make_engine, prepare
from edge_service.live import Subscriber
from inspection.schema import InspectionResult, StationContext, under_prefix

PATHS = ["a/b/c/d/e", "a/b2/c/d/e", "a/b/c/d/e2", "a/b/c/d/e.2", "ab/b/c/d/e", "A/b/c/d/e", "a/b/c/dd/e"]
PREFIXES = [None, "", "/", "//", "a", "a/", "/a", "/a/b/", "a/b", "a/b2", "a/b/c/d/e", "a/b/c/d/e/", "a/b/c/d/e2",
            "a/b/c/d", "a/b/c/d/e/f", "A", "ab", "a/b/c/d/e.", "a%", "a/_", "a/b/c/d_", "a b", "é", "a//b"]


@pytest.fixture
def stored(db_url):
    """One result at each station of PATHS; the engine and the station of each result id."""
    engine = prepare(make_engine(db_url))
    at: dict[str, str] = {}
    batch = []
    for path in PATHS:
        store.add_station(engine, StationContext.from_path(path))
        r = InspectionResult.model_validate(make_result(station=path))
        batch.append(r)
        at[str(r.inspection_id)] = path
    store.ingest(engine, batch)
    yield engine, at
    engine.dispose()


def test_sql_filter_and_python_matcher_agree_on_tricky_prefixes(stored):
    engine, at = stored
    disagreements = []
    for prefix in PREFIXES:
        expected = sorted(p for p in PATHS if under_prefix(p, prefix))
        items, _ = store.query(engine, store.ResultQuery(station=prefix, limit=500))
        in_sql = sorted(at[str(r.inspection_id)] for r in items)
        counted = store.stats(engine, prefix, None, None).total
        scoped = sorted(p for p in PATHS if Principal("t", "t", "edge", prefix).may_write_station(p))
        live = sorted(p for p in PATHS if Subscriber(prefix).wants(p))
        if not (in_sql == expected == scoped == live and counted == len(expected)):
            disagreements.append((prefix, expected, in_sql, counted, scoped, live))
    assert not disagreements, disagreements


def test_whole_segments_only():
    assert under_prefix("a/b/c/d/e", "a/b") and not under_prefix("a/b2/c/d/e", "a/b")
    assert under_prefix("a/b/c/d/e", "a/b/c/d/e") and not under_prefix("a/b/c/d/e2", "a/b/c/d/e")
    assert under_prefix("a/b/c/d/e", None) and under_prefix("a/b/c/d/e", "/")


def _put(service, rid: str, role: str):
    return service.client.put(f"/api/v1/results/{rid}/images/original", content=png_bytes(),
                              headers={**service.h(role), "Content-Type": "image/png"})


def test_scoped_edge_token_cannot_upload_images_for_another_station(service):
    """edge_line1 may write plant1/area1/line1 only: not line2, and not line10 (a longer segment)."""
    neighbour = "plant1/area1/line10/cell1/st1"
    store.add_station(service.engine, StationContext.from_path(neighbour))
    outside = [make_result(station=OTHER), make_result(station=neighbour)]
    inside = make_result(station=STATION)
    assert service.post([*outside, inside], role="edge").status_code == 200  # the unscoped token stores them
    image_dir = service.client.app.state.images.root
    for r in outside:
        res = _put(service, r["inspection_id"], "edge_line1")
        assert res.status_code == 403, res.text
        assert res.json()["error"] == "forbidden" and r["station"]["line"] in res.json()["message"]
        assert service.get(f"/api/v1/results/{r['inspection_id']}/images/original").status_code == 404
    with service.engine.connect() as conn:
        kept = conn.execute(select(images_table.c.inspection_id)).scalars().all()
    assert kept == []
    assert not [p for p in image_dir.rglob("*") if p.is_file()], "an image file was written"
    assert _put(service, inside["inspection_id"], "edge_line1").status_code == 204  # its own station: stored
    assert service.get(f"/api/v1/results/{inside['inspection_id']}").json()["images"] == ["original"]
    assert _put(service, str(uuid.uuid4()), "edge_line1").status_code == 404
