"""Thresholds with evidence: the proposal and the rates (exact), applying a threshold (audited, nothing
half-applied on bad input or an unknown station, roles), the assignment a station polls, the audit log; and
the page in headless Chromium: apply a threshold, see it in the audit log and the assignment."""

from __future__ import annotations

import httpx
import qa_support
from qa_support import Page
from service_support import OTHER, STATION, make_result

from edge_service.qa_thresholds import propose, rates

qa_server, chromium = qa_support.qa_server, qa_support.chromium  # fixtures
GOODS = [0.52, 0.55, 0.58, 0.6, 0.62, 0.64, 0.66, 0.7, 0.75, 0.8]  # reviewed false alarms
DEFECTS = [0.72, 0.9, 1.0, 1.2]  # reviewed confirmed defects


def test_proposal_and_rates():
    assert propose(GOODS, 0.10) == 0.75  # only 0.8 above it: 1 of 10 rejected
    assert propose(GOODS, 0.05) == 0.8  # none above it
    assert propose(GOODS, 0.30) == 0.66  # 0.7, 0.75, 0.8 above it
    assert propose([], 0.1) is None
    r = rates(GOODS, DEFECTS, 0.75)
    assert (r.false_reject_rate, r.escape_rate) == (0.1, 0.25)  # 0.72 passes: an escape
    assert rates(GOODS, DEFECTS, 0.8).false_reject_rate == 0.0  # a score equal to the threshold passes
    assert rates([], DEFECTS, 0.5).false_reject_rate is None


def _seed_reviewed(post, review) -> None:
    rows = [make_result(verdict="FAIL", score=s, model_version="3") for s in GOODS + DEFECTS]
    rows.append(make_result(verdict="FAIL", score=0.99, model_version="2"))  # another version: left out
    assert post(rows).status_code == 200
    ids = [r["inspection_id"] for r in rows]
    review(ids[:len(GOODS)], "false_alarm")
    review(ids[len(GOODS):], "confirmed_defect")


def _api_reviewer(client, headers):
    def review(ids, decision):
        res = client.post("/api/v1/qa/reviews", json={"inspection_ids": ids, "decision": decision}, headers=headers)
        assert res.status_code == 200, res.text
    return review


def test_evidence_apply_audit_and_assignment(service):
    _seed_reviewed(service.post, _api_reviewer(service.client, service.h("qa")))
    ev = service.get("/api/v1/qa/thresholds/evidence", station=STATION, model_version="3", target_frr=0.1).json()
    assert (ev["false_alarms"], ev["confirmed_defects"]) == (10, 4)
    assert ev["proposed_threshold"] == 0.75 and ev["proposed"]["escape_rate"] == 0.25
    assert ev["current_threshold"] == 0.5 and len(ev["histogram"]) == 20 and len(ev["curve"]) == 41
    assert sum(b["false_alarms"] for b in ev["histogram"]) == 10
    assert service.get("/api/v1/qa/thresholds/evidence", station=STATION, at=0.8).json()["what_if"][
        "false_reject_rate"] == 0.0
    before = service.get(f"/api/v1/stations/{STATION}/assignment", role="edge").json()
    assert before == {"station": STATION, "model_version": "2", "threshold": None, "updated_by": None,
                      "updated_at": None, "model": None, "shadow": None, "previous": []}
    url = f"/api/v1/stations/{STATION}/threshold"
    for bad, why in (("abc", "valid number"), (-1, "greater than 0"), (0, "greater than 0"), ("inf", "finite"),
                     ("nan", "finite")):
        res = service.client.post(url, json={"threshold": bad, "reason": "x"}, headers=service.h("qa"))
        assert res.status_code == 422 and "threshold" in res.json()["message"] and why in res.json()["message"], bad
    res = service.client.post(url, json={"threshold": 0.7}, headers=service.h("qa"))
    assert res.status_code == 422 and "reason" in res.json()["message"]
    res = service.client.post("/api/v1/stations/plant9/a/b/c/d/threshold", json={"threshold": 0.7, "reason": "x"},
                              headers=service.h("qa"))
    assert res.status_code == 422 and "plant9/a/b/c/d" in res.json()["message"]
    assert service.client.post(url, json={"threshold": 0.7, "reason": "x"},
                               headers=service.h("operator")).status_code == 403
    assert service.get("/api/v1/audit", role="admin").json() == []  # nothing half-applied
    assert service.get(f"/api/v1/stations/{STATION}/assignment").json() == before
    ok = service.client.post(url, json={"threshold": 0.75, "model_version": "3", "reason": "10% FRR target"},
                             headers=service.h("qa"))
    assert ok.status_code == 200 and ok.json()["threshold"] == 0.75 and ok.json()["updated_by"] == "test-qa"
    polled = service.get(f"/api/v1/stations/{STATION}/assignment", role="edge_line1").json()
    assert (polled["model_version"], polled["threshold"], polled["updated_by"]) == ("3", 0.75, "test-qa")
    assert service.get(f"/api/v1/stations/{OTHER}/assignment", role="edge_line1").status_code == 403
    assert service.get("/api/v1/qa/thresholds/evidence", station=STATION).json()["current_threshold"] == 0.75
    service.client.post(url, json={"threshold": 0.8, "reason": "tighter"}, headers=service.h("admin"))
    log = service.get("/api/v1/audit", role="admin").json()
    assert [(e["actor"], e["action"], e["target"], e["reason"]) for e in log] == [
        ("test-admin", "threshold", STATION, "tighter"), ("test-qa", "threshold", STATION, "10% FRR target")]
    assert log[0]["old_value"] == '{"threshold": 0.75, "model_version": "3"}'
    assert log[0]["new_value"] == '{"threshold": 0.8, "model_version": "3"}' and log[1]["old_value"] is None
    assert service.get("/api/v1/audit", role="qa").status_code == 403


def test_apply_a_threshold_in_the_page_and_see_it_in_the_audit_log(qa_server, chromium, tmp_path):
    client = httpx.Client(base_url=qa_server.url)
    _seed_reviewed(lambda rows: client.post("/api/v1/results", json={"results": rows}, headers=qa_server.h("edge")),
                   _api_reviewer(client, qa_server.h("qa")))
    p = Page(chromium, qa_server, "qa", f"/qa/thresholds#station={STATION}", tmp_path)
    page = p.page
    page.wait_for_function(f"document.body.dataset.loaded === '{STATION}'")
    page.fill("#f-model", "3")
    page.fill("#f-target", "10")
    page.click("#show")
    page.wait_for_function("document.getElementById('proposed').textContent === '0.7500'")
    assert page.input_value("#new-threshold") == "0.7500"
    assert "10 false alarms" in page.text_content("#counts")
    # bad input: a clear message in the page, and nothing applied
    page.fill("#new-threshold", "abc")
    page.fill("#reason", "typo")
    page.click("#apply")
    page.wait_for_function("document.getElementById('apply-message').textContent.startsWith('Not applied')")
    assert "threshold" in page.text_content("#apply-message") and "number" in page.text_content("#apply-message")
    page.fill("#new-threshold", "0.7500")
    page.fill("#reason", "")
    page.click("#apply")
    page.wait_for_function("document.getElementById('apply-message').textContent.includes('reason')")
    assert httpx.get(f"{qa_server.url}/api/v1/audit", headers=qa_server.h("admin")).json() == []
    page.fill("#reason", "false rejects at 10 % target")
    page.click("#apply")
    page.wait_for_function("document.getElementById('apply-message').textContent.startsWith('Applied')")
    page.wait_for_function("document.getElementById('current').textContent === '0.7500'")
    page.wait_for_function("document.getElementById('assigned-by').textContent.includes('qa-anna')")
    assert page.is_hidden("#audit-card")  # qa may not read the audit log
    p.finish("threshold-applied")
    polled = httpx.get(f"{qa_server.url}/api/v1/stations/{STATION}/assignment", headers=qa_server.h("edge")).json()
    assert (polled["threshold"], polled["model_version"], polled["updated_by"]) == (0.75, "3", "qa-anna")
    admin = Page(chromium, qa_server, "admin", f"/qa/thresholds#station={STATION}", tmp_path)
    admin.page.wait_for_selector("#audit-card", state="visible")
    rows = admin.page.locator("#audit tr").all_text_contents()
    assert len(rows) == 2 and "qa-anna" in rows[1] and "false rejects at 10 % target" in rows[1]
    assert '"threshold": 0.75' in rows[1]
    admin.finish("audit-log")
