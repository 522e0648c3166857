"""OpenAPI truth (issue 9 item 7): a 405 names every documented method of the path in Allow, and requests the
schema calls valid are not refused."""

from __future__ import annotations

from datetime import UTC, datetime


def test_405_lists_every_method_of_the_path(service):
    for path, methods in (("/api/v1/results", {"GET", "POST"}), ("/api/v1/stations", {"GET", "POST"}),
                          ("/api/v1/tokens", {"GET", "POST"})):
        res = service.client.options(path, headers=service.h("admin"))
        assert res.status_code == 405, path
        assert set(res.headers["allow"].split(", ")) == methods, (path, res.headers["allow"])
        assert res.json()["error"] == "method_not_allowed" and "OPTIONS" in res.json()["message"]


def test_stats_over_an_empty_range_is_an_answer(service):
    at = datetime(2030, 1, 1, tzinfo=UTC).isoformat()
    res = service.get("/api/v1/stats", since=at, until=at)
    assert res.status_code == 200, res.text
    assert res.json()["total"] == 0
    assert service.get("/api/v1/stats", since=at, until="2029-01-01T00:00:00Z").status_code == 422


def test_documented_string_rules_match_the_checks(service):
    spec = service.client.get("/openapi.json").json()
    station = spec["components"]["schemas"]["StationIn"]["properties"]["path"]
    assert station["pattern"].endswith("){4}$")  # five whole segments
    res = service.client.post("/api/v1/stations", json={"path": ""}, headers=service.h("admin"))
    assert res.status_code == 422 and "path" in res.json()["message"]
