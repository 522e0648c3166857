"""Hostile or broken input gets a 422 naming the field, the same on SQLite and PostgreSQL, and nothing of a
refused batch is stored (issue 9: dates, strings, numbers and types at the ingest boundary)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from service_support import STATION, make_result


def _count(service) -> int:
    return len(service.get("/api/v1/results", limit=500).json()["items"])


def _refused(service, bad: dict, field: str) -> None:
    """A batch of a good result and ``bad``: 422 naming ``field``, nothing stored."""
    before = _count(service)
    res = service.post([make_result(), bad])
    assert res.status_code == 422, res.text
    assert field in res.json()["message"], res.json()["message"]
    assert _count(service) == before


@pytest.mark.parametrize(("field", "value"), [
    ("inspected_at", "9999-12-31T23:59:59-14:00"),
    ("inspected_at", "0001-01-01T00:00:00+01:00"),
    ("inspected_at", "1999-12-31T23:59:59Z"),
    ("inspected_at", "2100-01-01T00:00:00Z"),
    ("captured_at", "9999-12-31T23:59:59-14:00"),
    ("captured_at", "1970-01-01T00:00:00Z"),
    ("inspected_at", 1764576000),  # a Unix time (2025-12-01) is not an ISO 8601 date-time
    ("inspected_at", "1764576000"),
])
def test_result_times_outside_the_accepted_range_are_refused(service, field, value):
    bad = make_result()
    bad[field] = value
    _refused(service, bad, f"results.1.{field}")


def test_result_times_too_far_in_the_future_are_refused(service):
    ahead = make_result(at=datetime.now(UTC) + timedelta(hours=2))  # the default skew is one hour
    _refused(service, ahead, "results.1.inspected_at")
    soon = make_result(at=datetime.now(UTC) + timedelta(minutes=5))  # a clock a little fast is fine
    assert service.post([soon]).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/results", "/api/v1/stats"])
@pytest.mark.parametrize(("param", "value"), [
    ("until", "0001-01-01T12:00:00Z"), ("since", "0001-01-01T00:00:00+01:00"),
    ("since", "9999-12-31T23:59:59-14:00"), ("until", "2100-01-01T00:00:00Z"), ("until", "0.5"),
    ("until", "1595801478"),  # a Unix time in the range, but not the date-time the schema names
])
def test_query_times_outside_the_accepted_range_are_refused(service, path, param, value):
    res = service.get(path, **{param: value})
    assert res.status_code == 422, res.text
    assert f"query.{param}" in res.json()["message"]


@pytest.mark.parametrize("path", ["/api/v1/results", "/api/v1/stats", "/api/v1/qa/trends", "/api/v1/qa/queue"])
def test_a_query_parameter_given_twice_is_refused(service, path):
    res = service.client.get(path, params=[("station", "a"), ("station", "b")], headers=service.h("qa"))
    assert res.status_code == 422, res.text
    assert "station" in res.json()["message"] and "more than once" in res.json()["message"]


@pytest.mark.parametrize("param", ["station", "model_version"])
def test_control_characters_in_threshold_evidence_queries_are_refused(service, param):
    params = {"station": STATION, param: "a\x00b"}  # a NUL gave 503 on PostgreSQL
    res = service.get("/api/v1/qa/thresholds/evidence", role="qa", **params)
    assert res.status_code == 422, res.text
    assert f"query.{param}" in res.json()["message"] and "control characters" in res.json()["message"]


@pytest.mark.parametrize(("path", "param"), [("/api/v1/models", "name"), ("/api/v1/qa/shadow", "station")])
def test_control_characters_in_model_queries_are_refused(service, path, param):
    res = service.get(path, role="qa", **{param: "a\x00b"})  # a NUL gave 503 on PostgreSQL
    assert res.status_code == 422, res.text
    assert f"query.{param}" in res.json()["message"]


def test_control_characters_in_defect_class_names_are_refused(service):
    res = service.client.put("/api/v1/qa/defect-classes", json={"names": ["scratch", "\t\x00"],
                                                                 "station_prefix": "plant1"},
                             headers=service.h("qa"))
    assert res.status_code == 422, res.text
    assert "names.1" in res.json()["message"] and "control characters" in res.json()["message"]


def test_edge_of_the_range_is_accepted(service):
    old = make_result(at=datetime(2000, 1, 1, tzinfo=UTC))
    assert service.post([old]).status_code == 200
    res = service.get("/api/v1/stats", since="2000-01-01T00:00:00Z", until="2099-12-31T23:59:59Z")
    assert res.status_code == 200 and res.json()["total"] == 1


def test_forged_cursor_with_an_extreme_time_is_refused(service):
    forged = base64.urlsafe_b64encode(json.dumps(["0001-01-01T00:00:00+01:00", "x"]).encode()).decode()
    res = service.get("/api/v1/results", cursor=forged)
    assert res.status_code == 422 and "cursor" in res.json()["message"]


# ----------------------------------------------------------------------------------------------- strings


def _set(record: dict, path: str, value) -> dict:
    *parents, last = path.split(".")
    target = record
    for p in parents:
        target = target[p]
    target[last] = value
    return record


@pytest.mark.parametrize(("path", "value", "words"), [
    ("part_id", "A\ud800B", "unicode"),
    ("part_id", "A\x00B", "control characters"),
    ("part_id", "x" * 129, "at most 128"),
    ("part_id", "x" * 1_000_000, "at most 128"),
    ("source", "cam\x1b[31m", "control characters"),
    ("source", "s" * 1025, "at most 1024"),
    ("model.name", "m\x00", "control characters"),
    ("model.name", "m" * 129, "at most 128"),
    ("model.version", "1" * 65, "at most 64"),
    ("model.version", "\udfff", "unicode"),
    ("model.sha256", "0" * 65, "at most 64"),
    ("station.line", "line\x00", "station.line"),
    ("station.cell", "\ud800", "station.cell"),
    ("recipe", "r\x00", "control characters"),
    ("recipe", "r" * 65, "at most 64"),
    ("input_conversion", "gray\x07", "control characters"),
])
def test_bad_strings_in_a_result_are_refused(service, path, value, words):
    bad = _set(make_result(), path, value)
    body = json.dumps({"results": [make_result(), bad]})  # json escapes the surrogate as \ud800
    before = _count(service)
    res = service.client.post("/api/v1/results", content=body, headers={**service.h("edge"),
                                                                        "Content-Type": "application/json"})
    assert res.status_code == 422, res.text
    message = res.json()["message"]
    assert f"results.1.{path}" in message and words in message, message
    assert _count(service) == before


def test_bad_strings_in_reviews_tokens_stations_and_queries_are_refused(service):
    r = make_result(verdict="FAIL", score=0.9)
    service.post([r])
    review = f"/api/v1/results/{r['inspection_id']}/review"
    for body, field in (({"decision": "unsure", "defect_class": "crack\x00"}, "defect_class"),
                        ({"decision": "unsure", "defect_class": "c" * 65}, "defect_class"),
                        ({"decision": "unsure", "comment": "glare\x07"}, "comment"),
                        ({"decision": "unsure", "comment": "x\ud800"}, "comment")):
        res = service.client.post(review, content=json.dumps(body), headers={
            **service.h("qa"), "Content-Type": "application/json"})
        assert res.status_code == 422 and field in res.json()["message"], res.text
    ok = service.client.post(review, json={"decision": "false_alarm", "comment": "glare\non the left\tside"},
                             headers=service.h("qa"))
    assert ok.status_code == 200 and ok.json()["reviews"][0]["comment"] == "glare\non the left\tside"
    assert len(ok.json()["reviews"]) == 1  # none of the refused reviews was stored
    token = service.client.post("/api/v1/tokens", content=json.dumps({"name": "n\x00", "role": "qa"}),
                                headers={**service.h("admin"), "Content-Type": "application/json"})
    assert token.status_code == 422 and "name" in token.json()["message"]
    station = service.client.post("/api/v1/stations", json={"path": "p/a/l/c/s\x00"}, headers=service.h("admin"))
    assert station.status_code == 422
    for path in ("/api/v1/results", "/api/v1/stats"):
        for params in ({"station": "plant1\x00"}, {"station": "p" * 331}):
            res = service.get(path, **params)
            assert res.status_code == 422 and "query.station" in res.json()["message"], res.text
    assert service.get("/api/v1/results", model_version="1\x00").status_code == 422
    assert service.get("/api/v1/results", cursor="\x00").status_code == 422


# ---------------------------------------------------------------------------------------- numbers, types


def _region(**overrides) -> dict:
    return {"x": 10, "y": 10, "width": 20, "height": 20, "area_px": 300, "peak_score": 0.9, **overrides}


@pytest.mark.parametrize(("path", "value", "field"), [
    ("score", "NaN", "score"), ("score", "Infinity", "score"), ("threshold", "-Infinity", "threshold"),
    ("score", '"0.3"', "score"), ("score", "true", "score"), ("threshold", "null", "threshold"),
    ("image_width", "-256", "image_width"), ("image_width", "0", "image_width"),
    ("image_height", "1000000000", "image_height"), ("image_width", "256.0", "image_width"),
    ("image_height", '"256"', "image_height"), ("image_width", "true", "image_width"),
    ("timings.inference_ms", "-1.0", "timings.inference_ms"), ("timings.preprocess_ms", "NaN", "timings"),
    ("timings.publish_ms", '"1"', "timings.publish_ms"),
    ("regions", json.dumps([_region(x=250)]), "regions.0"),
    ("regions", json.dumps([_region(height=300)]), "regions.0"),
    ("regions", json.dumps([_region(x=-1)]), "regions.0.x"),
    ("regions", json.dumps([_region(width=0)]), "regions.0.width"),
    ("regions", json.dumps([_region(width="20")]), "regions.0.width"),
    ("regions", json.dumps([_region()] * 1001), "regions"),
    ("regions", "[" + json.dumps(_region())[:-1] + ', "peak_score": NaN}]', "regions.0.peak_score"),
])
def test_bad_numbers_and_loose_types_are_refused(service, path, value, field):
    """``value`` is raw JSON (Python's JSON reader takes NaN and Infinity, so they reach the validation)."""
    marker = "__VALUE__"
    bad = _set(make_result(), path, marker)
    body = json.dumps({"results": [make_result(), bad]}).replace(f'"{marker}"', value)
    before = _count(service)
    res = service.client.post("/api/v1/results", content=body, headers={**service.h("edge"),
                                                                        "Content-Type": "application/json"})
    assert res.status_code == 422, res.text
    message = res.json()["message"]
    assert f"results.1.{field}" in message or ("results.1:" in message and f"{field} " in message), message
    assert _count(service) == before


@pytest.mark.parametrize(("verdict", "score", "threshold"), [("PASS", 0.9, 0.5), ("FAIL", 0.3, 0.5),
                                                              ("FAIL", 0.5, 0.5)])
def test_a_verdict_that_contradicts_its_score_is_refused(service, verdict, score, threshold):
    bad = make_result(verdict=verdict, score=score)
    bad["threshold"] = threshold
    _refused(service, bad, "results.1")
    assert "contradicts" in service.post([bad]).json()["message"]


def test_consistent_results_with_regions_are_stored(service):
    edge = make_result(verdict="PASS", score=0.5)  # equal to the threshold: PASS
    edge["threshold"] = 0.5
    fail = make_result(verdict="FAIL", score=0.8)
    fail["regions"] = [_region(x=236, y=0, width=20, height=256, area_px=5120)]  # touches the image's edges
    fail["score"] = 1  # a whole number is a number
    res = service.post([edge, fail])
    assert res.status_code == 200, res.text
    assert len(res.json()["stored"]) == 2


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity"])
def test_non_finite_score_filters_are_refused(service, value):
    res = service.get("/api/v1/results", min_score=value)
    assert res.status_code == 422 and "query.min_score" in res.json()["message"], res.text
