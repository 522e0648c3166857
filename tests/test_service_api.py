"""The results service's REST API, run against SQLite and the real PostgreSQL with the same tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from service_support import OTHER, STATION, make_result


def _count(service) -> int:
    return len(service.get("/api/v1/results", role="operator", limit=500).json()["items"])


def test_ingest_is_idempotent_on_inspection_id(service):
    batch = [make_result() for _ in range(5)]
    first = service.post(batch)
    assert first.status_code == 200, first.text
    assert sorted(first.json()["stored"]) == sorted(r["inspection_id"] for r in batch)
    assert first.json()["duplicates"] == []
    # a retried batch, with one new result added
    batch.append(make_result())
    again = service.post(batch).json()
    assert again["stored"] == [batch[-1]["inspection_id"]]
    assert len(again["duplicates"]) == 5
    # the same id twice inside one batch is stored once
    twin = make_result()
    assert service.post([twin, twin]).json() == {"stored": [twin["inspection_id"]], "duplicates": []}
    assert _count(service) == 7


@pytest.mark.parametrize(("body", "status", "words"), [
    (b"{not json", 400, "not valid JSON"),
    (b'{"results": 5}', 422, "results"),
    (b"[]", 422, "body"),
])
def test_malformed_bodies_are_named(service, body, status, words):
    res = service.client.post("/api/v1/results", content=body, headers={**service.h("edge"),
                                                                         "Content-Type": "application/json"})
    assert res.status_code == status, res.text
    assert words in res.json()["message"]


def test_bad_results_reject_the_batch_and_change_nothing(service):
    stored = make_result()
    service.post([stored])
    missing = make_result()
    del missing["score"]
    wrong_version = make_result()
    wrong_version["schema_version"] = "2.0"
    no_station = make_result()
    no_station["station"] = None
    for bad, words in ((missing, "results.1.score"), (wrong_version, "results.1.schema_version"),
                       (no_station, "results[1].station")):
        res = service.post([make_result(), bad])
        assert res.status_code == 422 and words in res.json()["message"], res.text
    unknown = make_result(station="plant9/a/b/c/d")
    res = service.post([make_result(), unknown])
    assert res.status_code == 422 and "plant9/a/b/c/d" in res.json()["message"]
    bad_segment = make_result()
    bad_segment["station"]["line"] = "line 1/#"
    assert service.post([bad_segment]).status_code == 422
    assert service.post([make_result() for _ in range(1001)]).status_code == 422  # batch limit
    assert _count(service) == 1
    assert service.get(f"/api/v1/results/{stored['inspection_id']}").status_code == 200


def test_tokens_roles_and_least_privilege(service):
    r = make_result()
    assert service.post([r], role="operator").status_code == 403  # operators read only
    assert service.post([r], role="qa").status_code == 403
    assert service.post([r], role="edge").status_code == 200
    assert service.get("/api/v1/results", role="edge").status_code == 403  # edge only ingests
    assert service.get("/api/v1/results", role="qa").status_code == 200
    assert service.client.post(f"/api/v1/results/{r['inspection_id']}/review", json={"decision": "unsure"},
                               headers=service.h("operator")).status_code == 403
    # an edge token scoped to a line may not write another line's station
    assert service.post([make_result(station=OTHER)], role="edge_line1").status_code == 403
    assert service.post([make_result(station=STATION)], role="edge_line1").status_code == 200
    # no token, a bad token, a token in the URL
    assert service.client.get("/api/v1/results").status_code == 401
    assert service.client.get("/api/v1/results", headers={"Authorization": "Bearer insp_nope"}).status_code == 401
    assert service.client.get("/api/v1/results", headers={"Authorization": "Basic abc"}).status_code == 401
    res = service.client.get(f"/api/v1/results?access_token={service.tokens['operator']}")
    assert res.status_code == 400 and "Authorization" in res.json()["message"]
    # tokens are managed by admins only, and a revoked token stops working at once
    assert service.get("/api/v1/tokens", role="qa").status_code == 403
    made = service.client.post("/api/v1/tokens", json={"name": "tmp", "role": "operator"},
                               headers=service.h("admin")).json()
    hdr = {"Authorization": f"Bearer {made['token']}"}
    assert service.client.get("/api/v1/results", headers=hdr).status_code == 200
    assert made["token"] not in str(service.get("/api/v1/tokens", role="admin").json())
    assert service.client.delete(f"/api/v1/tokens/{made['id']}", headers=service.h("admin")).status_code == 204
    assert service.client.get("/api/v1/results", headers=hdr).status_code == 401


@pytest.mark.parametrize("path", [
    "/api/v1/../api/v1/results", "//api/v1/results", "/api/v1/results/", "/API/v1/results",
    "/api/v1/results%2F", "/static/../api/v1/results", "/api/v1/results;x=1",
])
def test_no_bypass_through_path_tricks(service, path):
    service.post([make_result()])
    res = service.client.get(path, headers={"X-Original-URL": "/healthz", "X-Forwarded-Prefix": "/healthz",
                                            "X-Rewrite-URL": "/healthz"})
    assert res.status_code in (401, 404, 405, 307), (path, res.status_code)
    assert "inspection_id" not in res.text


def test_query_filters_and_cursor_pagination(service):
    now = datetime.now(UTC)
    rows = [make_result(verdict="FAIL" if i % 3 == 0 else "PASS", score=i / 30, at=now - timedelta(minutes=i),
                        model_version="2" if i < 5 else "1") for i in range(30)]
    rows += [make_result(station=OTHER, at=now - timedelta(minutes=1))]
    assert service.post(rows).status_code == 200
    # newest first, pages of 7, each result exactly once
    seen, cursor = [], None
    while True:
        page = service.get("/api/v1/results", limit=7, station=STATION, **({"cursor": cursor} if cursor else {}))
        body = page.json()
        seen += [r["inspection_id"] for r in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == [r["inspection_id"] for r in rows[:30]]
    # station prefixes match whole segments only
    assert len(service.get("/api/v1/results", station="plant1/area1", limit=100).json()["items"]) == 31
    assert service.get("/api/v1/results", station="plant1/are", limit=100).json()["items"] == []
    assert len(service.get("/api/v1/results", station="plant1/area1/line2", limit=100).json()["items"]) == 1
    fails = service.get("/api/v1/results", verdict="FAIL", limit=100).json()["items"]
    assert len(fails) == 10 and all(r["verdict"] == "FAIL" for r in fails)
    ranged = service.get("/api/v1/results", min_score=0.5, max_score=0.6, limit=100).json()["items"]
    assert all(0.5 <= r["score"] <= 0.6 for r in ranged) and len(ranged) == 4
    window = service.get("/api/v1/results", station=STATION, since=(now - timedelta(minutes=10.5)).isoformat(),
                         until=(now - timedelta(minutes=4.5)).isoformat(), limit=100).json()["items"]
    assert len(window) == 6
    assert len(service.get("/api/v1/results", model_version="2", limit=100).json()["items"]) == 5
    assert service.get("/api/v1/results", cursor="garbage!").status_code == 422
    assert service.get("/api/v1/results", verdict="MAYBE").status_code == 422
    assert service.get("/api/v1/results", limit=0).status_code == 422


def test_review_keeps_history_and_filters(service):
    r = make_result(verdict="FAIL", score=0.9)
    service.post([r])
    rid = r["inspection_id"]
    first = service.client.post(f"/api/v1/results/{rid}/review", headers=service.h("qa"),
                                json={"decision": "false_alarm", "comment": "glare"})
    assert first.status_code == 200, first.text
    second = service.client.post(f"/api/v1/results/{rid}/review", headers=service.h("qa"),
                                 json={"decision": "confirmed_defect", "defect_class": "scratch"}).json()
    assert second["review_state"] == "confirmed_defect" and second["defect_class"] == "scratch"
    assert [h["decision"] for h in second["reviews"]] == ["false_alarm", "confirmed_defect"]
    assert second["reviews"][0]["reviewer"] == "test-qa" and second["reviews"][0]["comment"] == "glare"
    assert service.get("/api/v1/results", review_state="confirmed_defect").json()["items"][0]["inspection_id"] == rid
    bad = service.client.post(f"/api/v1/results/{rid}/review", headers=service.h("qa"), json={"decision": "meh"})
    assert bad.status_code == 422 and "decision" in bad.json()["message"]
    missing = service.client.post("/api/v1/results/00000000-0000-0000-0000-000000000000/review",
                                  headers=service.h("qa"), json={"decision": "unsure"})
    assert missing.status_code == 404


def test_stats(service):
    now = (datetime.now(UTC) - timedelta(hours=1)).replace(minute=30)  # mid-hour, and always in the past
    rows = [make_result(verdict="FAIL" if i < 3 else "PASS", at=now - timedelta(hours=i // 5)) for i in range(10)]
    rows.append(make_result(station=OTHER, verdict="FAIL", at=now))
    service.post(rows)
    service.client.post(f"/api/v1/results/{rows[0]['inspection_id']}/review", headers=service.h("qa"),
                        json={"decision": "confirmed_defect", "defect_class": "crack"})
    s = service.get("/api/v1/stats", station=STATION, since=(now - timedelta(hours=3)).isoformat(),
                    until=(now + timedelta(minutes=5)).isoformat()).json()
    assert (s["total"], s["fail"], s["pass"]) == (10, 3, 7)
    assert s["yield"] == pytest.approx(0.7) and s["defect_rate"] == pytest.approx(0.3)
    assert [h["total"] for h in s["hourly"]] == [5, 5] and sum(h["fail"] for h in s["hourly"]) == 3
    assert s["top_defect_classes"] == [{"defect_class": "crack", "count": 1}]
    everything = service.get("/api/v1/stats", since=(now - timedelta(hours=3)).isoformat()).json()
    assert everything["total"] == 11
    assert service.get("/api/v1/stats", since=now.isoformat(), until=(now - timedelta(hours=1)).isoformat()
                       ).status_code == 422


def test_health_ready_metrics(service):
    assert service.client.get("/healthz").json() == {"status": "ok"}
    assert service.client.get("/readyz").status_code == 200
    assert service.client.get("/metrics").status_code == 401
    service.post([make_result()])
    service.client.get("/api/v1/results")  # a rejected request
    text = service.get("/metrics").text
    assert "inspection_results_ingested_total" in text and "inspection_ingest_request_seconds_bucket" in text
    assert 'inspection_requests_rejected_total{reason="unauthenticated"}' in text
    assert "inspection_results_stored 1.0" in text


def test_stations_admin(service):
    assert service.client.post("/api/v1/stations", json={"path": "p/a/l/c/s"}, headers=service.h("qa")
                               ).status_code == 403
    res = service.client.post("/api/v1/stations", json={"path": "p/a/l/c/s"}, headers=service.h("admin"))
    assert res.status_code == 201 and res.json()["created"] is True
    bad = service.client.post("/api/v1/stations", json={"path": "p/a/l"}, headers=service.h("admin"))
    assert bad.status_code == 422 and "five parts" in bad.json()["message"]
    assert "p/a/l/c/s" in service.get("/api/v1/stations").json()
