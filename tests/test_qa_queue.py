"""The review queue: its API (filters, paging, bulk reviews all-or-nothing, roles) on SQLite and PostgreSQL,
and the page in real headless Chromium (keyboard review seen in history, today's FAILs, read-only operators)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import qa_support
from qa_support import Page, at, seed_today_and_yesterday
from service_support import OTHER, STATION, make_result

qa_server, chromium = qa_support.qa_server, qa_support.chromium  # fixtures

Q = "/api/v1/qa/queue"


def test_queue_filters_and_pages_newest_first(service):
    rows = [make_result(verdict="FAIL" if i % 2 else "PASS", score=i / 10, part_id=f"AB-{i}", at=at(i),
                        model_version="2" if i < 3 else "1") for i in range(7)]
    rows.append(make_result(station=OTHER, verdict="FAIL", score=0.95, part_id="ZZ-1", at=at(0.5)))
    assert service.post(rows).status_code == 200
    ids = [r["inspection_id"] for r in rows[:7]]
    page = service.get(Q, station="plant1/area1/line1", limit=3).json()
    assert [i["inspection_id"] for i in page["items"]] == ids[:3]
    rest = service.get(Q, station="plant1/area1/line1", limit=10, cursor=page["next_cursor"]).json()
    assert [i["inspection_id"] for i in rest["items"]] == ids[3:] and rest["next_cursor"] is None
    fails = service.get(Q, verdict="FAIL", station=STATION).json()["items"]
    assert [i["part_id"] for i in fails] == ["AB-1", "AB-3", "AB-5"]
    assert [i["part_id"] for i in service.get(Q, part_id="ZZ").json()["items"]] == ["ZZ-1"]
    assert [i["part_id"] for i in service.get(Q, part_id="AB-1").json()["items"]] == ["AB-1"]
    assert {i["part_id"] for i in service.get(Q, model_version="2").json()["items"]} == {"AB-0", "AB-1", "AB-2"}
    scored = service.get(Q, min_score=0.25, max_score=0.45).json()["items"]
    assert [i["part_id"] for i in scored] == ["AB-3", "AB-4"]
    recent = service.get(Q, since=at(2.5).isoformat(), station=STATION).json()["items"]
    assert [i["part_id"] for i in recent] == ["AB-0", "AB-1", "AB-2"]
    service.post([make_result(part_id="X_1"), make_result(part_id="XY1"), make_result(part_id="X%2")])
    assert [i["part_id"] for i in service.get(Q, part_id="X_").json()["items"]] == ["X_1"]  # _ is no wildcard
    assert [i["part_id"] for i in service.get(Q, part_id="X%").json()["items"]] == ["X%2"]
    bad = service.get(Q, min_score=0.9, max_score=0.1)
    assert bad.status_code == 422 and "min_score 0.9 is above max_score 0.1" in bad.json()["message"]


def test_bulk_review_is_all_or_nothing_and_records_who(service):
    rows = [make_result(verdict="FAIL") for _ in range(3)]
    service.post(rows)
    ids = [r["inspection_id"] for r in rows]
    ghost = "00000000-0000-4000-8000-000000000000"
    body = {"inspection_ids": [*ids[:2], ghost], "decision": "false_alarm"}
    res = service.client.post("/api/v1/qa/reviews", json=body, headers=service.h("qa"))
    assert res.status_code == 404 and ghost in res.json()["message"] and "nothing" in res.json()["message"]
    assert all(i["review_state"] == "unreviewed" for i in service.get(Q).json()["items"])
    service.client.put("/api/v1/qa/defect-classes", json={"station_prefix": "plant1/area1", "names": ["scratch",
                                                                                                      "dent"]},
                       headers=service.h("qa"))
    wrong = service.client.post("/api/v1/qa/reviews", json={"inspection_ids": ids, "decision": "confirmed_defect",
                                                            "defect_class": "rust"}, headers=service.h("qa"))
    assert wrong.status_code == 422 and "'rust'" in wrong.json()["message"] and "dent, scratch" in wrong.text
    ok = service.client.post("/api/v1/qa/reviews", json={"inspection_ids": ids[:2], "decision": "confirmed_defect",
                                                         "defect_class": "dent", "comment": "bulk"},
                             headers=service.h("qa"))
    assert ok.status_code == 200 and ok.json() == {"reviewed": ids[:2], "reviewer": "test-qa"}
    states = {i["inspection_id"]: (i["review_state"], i["defect_class"]) for i in service.get(Q).json()["items"]}
    assert states == {ids[0]: ("confirmed_defect", "dent"), ids[1]: ("confirmed_defect", "dent"),
                      ids[2]: ("unreviewed", None)}
    history = service.get(f"/api/v1/qa/results/{ids[0]}/history").json()["reviews"]
    assert [(h["decision"], h["reviewer"], h["comment"]) for h in history] == [("confirmed_defect", "test-qa", "bulk")]
    assert service.get(Q, defect_class="dent").json()["items"][0]["defect_class"] == "dent"
    assert service.get("/api/v1/qa/defect-classes", station=STATION).json()["names"] == ["dent", "scratch"]
    assert service.get("/api/v1/qa/defect-classes", station=OTHER).json()["names"] == ["dent", "scratch"]
    bad = service.client.put("/api/v1/qa/defect-classes", json={"station_prefix": "plant1/", "names": ["x"]},
                             headers=service.h("qa"))
    assert bad.status_code == 422 and "station_prefix" in bad.json()["message"]
    assert service.client.put("/api/v1/qa/defect-classes", json={"station_prefix": "plant1", "names": ["x"]},
                              headers=service.h("operator")).status_code == 403
    assert service.get("/api/v1/qa/defect-classes", station=STATION).json()["names"] == ["dent", "scratch"]


def test_operators_see_but_may_not_review(service):
    rows = [make_result(verdict="FAIL")]
    service.post(rows)
    me = service.get("/api/v1/qa/whoami").json()
    assert me == {"name": "test-operator", "role": "operator", "can_review": False, "can_audit": False}
    assert service.get("/api/v1/qa/whoami", role="qa").json()["can_review"] is True
    res = service.client.post("/api/v1/qa/reviews", json={"inspection_ids": [rows[0]["inspection_id"]],
                                                          "decision": "false_alarm"}, headers=service.h("operator"))
    assert res.status_code == 403
    assert service.get(Q).json()["items"][0]["review_state"] == "unreviewed"
    assert service.get(Q, role="edge").status_code == 403


def test_review_a_fail_with_the_keyboard_and_see_it_in_history(qa_server, chromium, tmp_path):
    rows = seed_today_and_yesterday(qa_server)
    httpx.put(f"{qa_server.url}/api/v1/qa/defect-classes", headers=qa_server.h("qa"),
              json={"station_prefix": "plant1", "names": ["burr", "crack", "dent"]}).raise_for_status()
    p = Page(chromium, qa_server, "qa", "/qa", tmp_path)
    page = p.page
    page.select_option("#f-verdict", "FAIL")
    page.click("#apply")
    page.wait_for_function("document.querySelectorAll('#queue tbody tr').length === 3")
    # the first row is the current one and has a thumbnail from the stored image
    page.wait_for_function("document.querySelector('#queue tbody tr img.thumb').src.startsWith('blob:')")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("ArrowDown")  # second FAIL: P-TWO
    page.wait_for_function(f"document.getElementById('panel').dataset.ready === '{rows['fail2']['inspection_id']}'")
    page.keyboard.press("2")  # crack
    assert page.locator("#class").input_value() == "crack"
    page.keyboard.press("c")
    page.keyboard.type("burr on the rim")
    page.keyboard.press("Escape")
    page.keyboard.press("d")
    # the review is stored and the cursor moves on; going back shows it in history with who
    page.wait_for_function("document.querySelectorAll('#queue tbody tr')[1].querySelector('.state')"
                           ".textContent === 'confirmed defect'")
    page.keyboard.press("ArrowUp")
    page.wait_for_function("document.getElementById('history').textContent.includes('qa-anna')")
    assert "burr on the rim" in page.text_content("#history")
    assert "crack" in page.text_content("#history")
    p.finish("keyboard-review")
    detail = httpx.get(f"{qa_server.url}/api/v1/results/{rows['fail2']['inspection_id']}",
                       headers=qa_server.h("qa")).json()
    assert [(r["decision"], r["defect_class"], r["reviewer"]) for r in detail["reviews"]] == [
        ("confirmed_defect", "crack", "qa-anna")]


def test_filter_to_todays_fails(qa_server, chromium, tmp_path):
    seed_today_and_yesterday(qa_server)
    p = Page(chromium, qa_server, "operator", "/qa", tmp_path)
    page = p.page
    page.wait_for_function("document.querySelectorAll('#queue tbody tr').length === 4")
    page.select_option("#f-time", "today")
    page.select_option("#f-verdict", "FAIL")
    page.click("#apply")
    page.wait_for_function("document.querySelectorAll('#queue tbody tr').length === 2")
    parts = page.locator("#queue tbody tr td:nth-child(5)").all_text_contents()
    assert parts == ["P-NEW", "P-TWO"]
    # an operator sees the queue but the page says it is read-only, and the keys change nothing
    assert page.is_visible("#readonly") and "operator" in page.text_content("#readonly")
    assert page.is_disabled("#do-defect")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("d")
    page.wait_for_function("document.getElementById('error').textContent.includes('may not review')")
    p.finish("today-fails")


def test_bulk_review_of_a_selection_in_the_page(qa_server, chromium, tmp_path):
    rows = seed_today_and_yesterday(qa_server)
    p = Page(chromium, qa_server, "qa", "/qa", tmp_path)
    page = p.page
    page.wait_for_function("document.querySelectorAll('#queue tbody tr').length === 4")
    page.wait_for_function("document.getElementById('panel').dataset.ready !== undefined")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press(" ")  # select P-NEW (newest)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")  # skip P-PASS, select P-TWO
    page.keyboard.press(" ")
    page.wait_for_function("document.getElementById('selected-count').textContent === '2 selected'")
    page.click("#bulk-false")
    page.wait_for_function("document.getElementById('selected-count').textContent === '0 selected'")
    states = page.locator("#queue tbody tr .state").all_text_contents()
    assert states == ["false alarm", "unreviewed", "false alarm", "unreviewed"]
    p.finish("bulk-review")
    for key, want in (("new_fail", "false_alarm"), ("fail2", "false_alarm"), ("pass", "unreviewed")):
        got = httpx.get(f"{qa_server.url}/api/v1/results/{rows[key]['inspection_id']}", headers=qa_server.h("qa"))
        assert got.json()["review_state"] == want, key


def test_defect_classes_are_edited_in_the_page(qa_server, chromium, tmp_path):
    seed_today_and_yesterday(qa_server)
    p = Page(chromium, qa_server, "qa", "/qa", tmp_path)
    page = p.page
    page.wait_for_function("document.getElementById('panel').dataset.ready !== undefined")
    assert page.locator("#class option").all_text_contents() == ["— none —"]
    page.click("#classes-editor summary")
    page.fill("#classes-prefix", "plant1/area1")
    page.fill("#classes-names", "porosity, burr ,")
    page.click("#classes-save")
    page.wait_for_function("document.getElementById('classes-message').textContent.startsWith('Saved')")
    page.wait_for_function("document.querySelectorAll('#class option').length === 3")
    assert page.locator("#class option").all_text_contents() == ["— none —", "1 · burr", "2 · porosity"]
    page.fill("#classes-prefix", "/bad prefix")
    page.click("#classes-save")
    page.wait_for_function("document.getElementById('classes-message').textContent.startsWith('Not saved')")
    p.finish("defect-classes")
    got = httpx.get(f"{qa_server.url}/api/v1/qa/defect-classes", params={"station": STATION},
                    headers=qa_server.h("operator")).json()
    assert got["names"] == ["burr", "porosity"]


def test_this_shift_starts_at_the_last_shift_change(qa_server, chromium, tmp_path):
    """Shifts start at 06:00, 14:00 and 22:00 browser time: at 03:10 this shift began yesterday at 22:00."""
    page = chromium.new_page(timezone_id="UTC")
    page.clock.install(time=datetime(2026, 12, 1, 3, 10, tzinfo=UTC))
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(qa_server.url + "/qa")
    page.fill("#token", qa_server.tokens["qa"])
    page.click("#token-form button")
    page.wait_for_function("document.getElementById('me').textContent.length > 0")
    page.select_option("#f-time", "shift")
    page.click("#apply")
    page.wait_for_function("document.getElementById('empty').hidden === false")
    page.select_option("#f-time", "today")
    page.click("#apply")
    page.wait_for_function("document.getElementById('empty').hidden === false")
    since = [parse_qs(urlsplit(u).query).get("since", [""])[0] for u in requested if "/api/v1/qa/queue" in u]
    assert since[-2:] == ["2026-11-30T22:00:00.000Z", "2026-12-01T00:00:00.000Z"], since
    page.screenshot(path=str(tmp_path / "this-shift.png"))
    assert all(u.startswith(qa_server.url) for u in requested), requested
