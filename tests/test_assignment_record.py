"""The result record's shadow field (shadow mode: a candidate model's verdict beside the live one): published
by the edge, accepted strictly by the results service and stored with the record."""

from __future__ import annotations

import json

import pytest
from service_support import make_result

SHA = "a" * 64


def _shadow(**change) -> dict:
    return {"model": {"name": "flange", "version": "2", "sha256": SHA}, "verdict": "FAIL", "score": 0.8,
            "threshold": 0.6} | change


def _count(service) -> int:
    return len(service.get("/api/v1/results", limit=500).json()["items"])


def test_a_result_with_a_shadow_verdict_is_stored_with_it(service):
    good = make_result() | {"shadow": _shadow()}
    plain = make_result()  # no shadow: still valid (the field is optional)
    res = service.post([good, plain])
    assert res.status_code == 200, res.text
    stored = service.get(f"/api/v1/results/{good['inspection_id']}").json()
    assert stored["shadow"] == _shadow()
    assert service.get(f"/api/v1/results/{plain['inspection_id']}").json().get("shadow") is None


@pytest.mark.parametrize(("shadow", "field"), [
    (_shadow(score="0.8"), "shadow.score"),
    (_shadow(threshold=True), "shadow.threshold"),
    (_shadow(verdict="MAYBE"), "shadow.verdict"),
    (_shadow(model={"name": "flange", "version": "2"}), "shadow.model.sha256"),
    (_shadow(model={"name": "f\u0000", "version": "2", "sha256": SHA}), "shadow.model.name"),
    (_shadow(model={"name": "flange", "version": "v" * 65, "sha256": SHA}), "shadow.model.version"),
    (_shadow(model="flange"), "shadow.model"),
])
def test_a_bad_shadow_verdict_is_refused_naming_the_field(service, shadow, field):
    before = _count(service)
    res = service.post([make_result(), make_result() | {"shadow": shadow}])
    assert res.status_code == 422, res.text
    assert f"results.1.{field}" in res.json()["message"], res.json()["message"]
    assert _count(service) == before  # nothing of the batch half-stored


@pytest.mark.parametrize("value", ["NaN", "Infinity"])
def test_a_non_finite_shadow_score_is_refused(service, value):
    body = json.dumps({"results": [make_result() | {"shadow": _shadow(score="__V__")}]}).replace('"__V__"', value)
    res = service.client.post("/api/v1/results", content=body,
                              headers={**service.h("edge"), "Content-Type": "application/json"})
    assert res.status_code == 422 and "results.0.shadow.score" in res.json()["message"], res.text


def test_a_shadow_verdict_that_contradicts_its_score_is_refused(service):
    res = service.post([make_result() | {"shadow": _shadow(verdict="PASS")}])  # 0.8 > 0.6 is a FAIL
    assert res.status_code == 422, res.text
    assert "shadow verdict PASS contradicts score 0.8 and threshold 0.6" in res.json()["message"]
