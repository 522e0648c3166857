"""The operator pages' data on SQLite and the real PostgreSQL: the overview's shift counters, last result and
run of FAILs per station under a prefix; the kiosk session's cookie attributes and its end at logout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service_support import OTHER, STATION, make_result
from starlette.testclient import TestClient

from edge_service import auth, store
from edge_service.app import create_app
from edge_service.kiosk import COOKIE
from edge_service.operator_view import overview
from edge_service.settings import ServiceSettings
from inspection.schema import InspectionResult, StationContext

NEIGHBOUR = "plant1/area1/line1/cell1/st2"


def _at(minutes_ago: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes_ago)


def test_overview_counts_this_shift_and_the_run_of_fails(db_url, tmp_path):
    app = create_app(ServiceSettings(database_url=db_url, image_dir=tmp_path / "img"))
    with TestClient(app):
        engine = app.state.engine
        for path in (STATION, NEIGHBOUR, OTHER):
            store.add_station(engine, StationContext.from_path(path))
        rows = [make_result(at=_at(50)), make_result(verdict="FAIL", at=_at(45)),  # before the shift
                make_result(at=_at(20)), make_result(verdict="FAIL", at=_at(15)),
                make_result(verdict="FAIL", at=_at(10), part_id="newest"),
                make_result(station=NEIGHBOUR, verdict="FAIL", at=_at(60)),  # a FAIL run across the change
                make_result(station=NEIGHBOUR, verdict="FAIL", at=_at(5)),
                make_result(station=OTHER, at=_at(1))]
        store.ingest(engine, [InspectionResult.model_validate(r) for r in rows])
        now = datetime.now(UTC)
        got = overview(engine, "plant1/area1/line1", now, (_at(30), now + timedelta(hours=1)))
        by = {s.station_path: s for s in got.stations}
        assert set(by) == {STATION, NEIGHBOUR}  # line2 is not under the prefix
        st = by[STATION]
        assert (st.good, st.ng, st.fail_streak) == (1, 2, 2) and st.yield_ == 1 / 3
        assert st.last is not None and st.last.part_id == "newest" and st.last.verdict == "FAIL"
        assert st.age_s is not None and 0 <= st.age_s < 60
        nb = by[NEIGHBOUR]
        assert (nb.good, nb.ng, nb.fail_streak) == (0, 1, 2)  # the run counts both; the shift only the new one
        empty = overview(engine, "plant9", now, (_at(30), now))
        assert empty.stations == [] and not empty.truncated
        client = TestClient(app)
        token = auth.create_token(engine, "screen", "operator").token
        body = client.get("/api/v1/operator/overview", params={"station": OTHER},
                          headers={"Authorization": f"Bearer {token}"}).json()
        assert [s["station_path"] for s in body["stations"]] == [OTHER] and body["stations"][0]["yield"] == 1.0
        assert client.get("/api/v1/operator/overview", params={"station": "plant1\x00"},
                          headers={"Authorization": f"Bearer {token}"}).status_code == 422


def test_the_kiosk_cookie_is_secure_on_https_and_lasts_the_configured_days(db_url, tmp_path):
    app = create_app(ServiceSettings(database_url=db_url, image_dir=tmp_path / "img",
                                     kiosk_session_days=30))
    with TestClient(app, base_url="https://testserver") as client:
        token = auth.create_token(app.state.engine, "hall-screen", "operator").token
        res = client.post("/kiosk/login", json={"token": token})
        assert res.status_code == 200 and res.json()["name"] == "hall-screen"
        header = res.headers["set-cookie"]
        assert header.startswith(COOKIE + "=") and token not in header
        attributes = {a.strip().split("=")[0].lower() for a in header.split(";")[1:]}
        assert {"httponly", "secure", "samesite", "max-age", "path"} <= attributes
        assert "samesite=strict" in header.lower() and f"max-age={30 * 86400}" in header.lower()
        assert client.get("/api/v1/stations").status_code == 200  # the client sends the cookie back
        assert client.post("/kiosk/logout").status_code == 204
        assert client.get("/api/v1/stations").status_code == 401
