"""The routes take what they need through FastAPI dependencies, so tests can replace them with
app.dependency_overrides: who is asking (the principal) and which database (the engine)."""

from __future__ import annotations

from service_support import STATION, make_result

from edge_service import store
from edge_service.auth import Principal
from edge_service.database import make_engine, prepare
from edge_service.dependencies import get_engine, principal
from inspection.schema import InspectionResult, StationContext


def test_overriding_the_principal_changes_who_is_asking(service):
    app = service.client.app
    r = make_result(verdict="FAIL")
    assert service.post([r]).status_code == 200
    assert service.client.get("/api/v1/results").status_code == 401  # no token: refused
    app.dependency_overrides[principal] = lambda: Principal("t0", "override-qa", "qa")
    try:
        listed = service.client.get("/api/v1/results")  # still no token: the override answers who this is
        assert listed.status_code == 200 and [x["inspection_id"] for x in listed.json()["items"]] == [
            r["inspection_id"]]
        review = service.client.post(f"/api/v1/results/{r['inspection_id']}/review", json={"decision": "unsure"})
        assert review.status_code == 200 and review.json()["reviews"][0]["reviewer"] == "override-qa"
        refused = service.client.post("/api/v1/results", json={"results": [make_result()]})
        assert refused.status_code == 403 and "'qa' may not ingest" in refused.json()["message"]
    finally:
        app.dependency_overrides.clear()
    assert service.client.get("/api/v1/results").status_code == 401


def test_overriding_the_engine_changes_the_database(service, tmp_path):
    other = prepare(make_engine(f"sqlite:///{tmp_path / 'other.db'}"))
    store.add_station(other, StationContext.from_path(STATION))
    elsewhere = InspectionResult.model_validate(make_result(part_id="only-in-other"))
    store.ingest(other, [elsewhere])
    app = service.client.app
    app.dependency_overrides[get_engine] = lambda: other
    app.dependency_overrides[principal] = lambda: Principal("t0", "reader", "operator")
    try:
        items = service.client.get("/api/v1/results").json()["items"]
        assert [x["part_id"] for x in items] == ["only-in-other"]
    finally:
        app.dependency_overrides.clear()
        other.dispose()
    assert service.get("/api/v1/results").json()["items"] == []  # the app's own database never had it
