"""Hostile or broken input gets a 422 naming the field, the same on SQLite and PostgreSQL, and nothing of a
refused batch is stored (issue 9: dates, strings, numbers and types at the ingest boundary)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from service_support import make_result


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
])
def test_query_times_outside_the_accepted_range_are_refused(service, path, param, value):
    res = service.get(path, **{param: value})
    assert res.status_code == 422, res.text
    assert f"query.{param}" in res.json()["message"]


def test_edge_of_the_range_is_accepted(service):
    old = make_result(at=datetime(2000, 1, 1, tzinfo=UTC))
    assert service.post([old]).status_code == 200
    res = service.get("/api/v1/stats", since="2000-01-01T00:00:00Z", until="2099-12-31T23:59:59Z")
    assert res.status_code == 200 and res.json()["total"] == 1


def test_forged_cursor_with_an_extreme_time_is_refused(service):
    forged = base64.urlsafe_b64encode(json.dumps(["0001-01-01T00:00:00+01:00", "x"]).encode()).decode()
    res = service.get("/api/v1/results", cursor=forged)
    assert res.status_code == 422 and "cursor" in res.json()["message"]
