"""The operator page in real headless Chromium: a FAIL held on screen with its part's image and regions until
acknowledged (or for the configured time), the alarm after N FAILs in a row, shift counters computed by the
service (reset at shift change, kept across a reload), and the multi-station overview."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from operator_page_support import (
    ELSEWHERE,
    NEIGHBOUR,
    OTHER,
    STATION,
    OperatorPage,
    ago,
    fail_with_region,
    make_result,
    png_bytes,
    running_server,
)
from service_support import chromium_browser


@pytest.fixture
def browser():
    with chromium_browser() as b:
        yield b


def _context(browser):
    return browser.new_context(viewport={"width": 1600, "height": 1000})


def test_a_fail_is_held_with_its_image_and_regions_until_acknowledged(tmp_path, browser):
    with running_server(tmp_path) as server:
        op = OperatorPage(_context(browser), server)
        page = op.page
        fail = fail_with_region(part_id="CRACK-7")
        server.post(fail)
        server.put_image(fail["inspection_id"], "original", png_bytes(3, 256))
        op.wait_text("#verdict-text", "FAIL")
        page.wait_for_function("document.getElementById('part-img').naturalWidth === 256", timeout=10000)
        assert page.get_attribute("#part-img", "data-id") == fail["inspection_id"]
        assert page.get_attribute("#part-img", "data-kind") == "original"
        rect = page.locator("#part-regions rect")
        assert rect.count() == 1 and rect.get_attribute("x") == "40" and rect.get_attribute("width") == "50"
        assert page.get_attribute("#part-regions", "viewBox") == "0 0 256 256"
        for i in range(3):  # the line goes on: the FAIL stays on screen, the parts are counted
            server.post(make_result(part_id=f"OK-{i}"))
        page.wait_for_function("document.querySelectorAll('#strip li').length === 4", timeout=5000)
        assert op.text("#verdict-text") == "FAIL" and "CRACK-7" in op.text("#verdict-detail")
        assert op.text("#latch-note") == "3 part(s) inspected since"
        op.finish(tmp_path / "fail-latched.png")
        page.keyboard.press("Space")  # acknowledge
        op.wait_text("#verdict-text", "PASS")
        assert page.is_hidden("#part") and page.is_hidden("#latch")
        server.post(fail_with_region(part_id="CRACK-8"))
        op.wait_text("#verdict-text", "FAIL")
        page.click("#ack")
        op.wait_text("#verdict-text", "FAIL")  # the newest part is that FAIL: acknowledging shows it, unlatched
        assert page.is_hidden("#latch")
        op.finish(tmp_path / "acknowledged.png")


def test_a_fail_latch_can_end_by_itself_after_the_configured_time(tmp_path, browser):
    with running_server(tmp_path, fail_latch_seconds=1.5) as server:
        op = OperatorPage(_context(browser), server)
        server.post(fail_with_region())
        op.wait_text("#verdict-text", "FAIL")
        server.post(make_result(part_id="OK-1"))
        op.page.wait_for_function("document.querySelectorAll('#strip li').length === 2", timeout=5000)
        assert op.text("#verdict-text") == "FAIL"  # held ...
        op.wait_text("#verdict-text", "PASS", timeout=4000)  # ... for 1.5 s only
        op.finish(tmp_path / "latch-timed-out.png")


def test_the_alarm_comes_after_n_fails_in_a_row_and_survives_a_reload(tmp_path, browser):
    with running_server(tmp_path, alarm_consecutive_fails=3) as server:
        op = OperatorPage(_context(browser), server)
        page = op.page
        server.post(fail_with_region(part_id="F1"))
        server.post(fail_with_region(part_id="F2"))
        page.wait_for_function("document.querySelectorAll('#strip li').length === 2", timeout=5000)
        assert page.is_hidden("#alarm")
        server.post(fail_with_region(part_id="F3"))
        page.wait_for_selector("#alarm", state="visible", timeout=5000)
        assert op.text("#alarm") == "ALARM: 3 FAILs in a row"
        op.finish(tmp_path / "alarm.png")
        page.reload()  # the run of FAILs is counted by the service: the alarm is still up
        page.wait_for_selector("#link[data-state='live']", timeout=10000)
        page.wait_for_selector("#alarm", state="visible", timeout=5000)
        page.keyboard.press("Enter")
        page.wait_for_selector("#alarm", state="hidden", timeout=2000)
        server.post(make_result(part_id="OK"))  # a PASS ends the run; three more FAILs raise it again
        for i in range(3):
            server.post(fail_with_region(part_id=f"G{i}"))
        page.wait_for_selector("#alarm", state="visible", timeout=5000)
        assert op.text("#alarm-count") == "3"


def _hms(t: datetime) -> str:
    return t.strftime("%H:%M:%S")


def test_shift_counters_come_from_the_service_and_reset_at_shift_change(tmp_path, browser):
    now = datetime.now(UTC)
    change = now + timedelta(seconds=8)  # the next shift starts in 8 s
    shifts = f"{_hms(now - timedelta(minutes=30))},{_hms(change)}"
    with running_server(tmp_path, shift_starts=shifts) as server:
        server.post(make_result(part_id="old", at=ago(minutes=40)),  # the previous shift: not counted
                    make_result(verdict="FAIL", part_id="old-f", at=ago(minutes=35)),
                    make_result(part_id="a", at=ago(minutes=10)), make_result(part_id="b", at=ago(minutes=9)),
                    make_result(verdict="FAIL", part_id="c", at=ago(minutes=8)))
        op = OperatorPage(_context(browser), server)
        page = op.page
        op.wait_text("#good", "2")
        assert op.text("#ng") == "1" and op.text("#yield") == "66.7 %"
        server.post(make_result(part_id="live"))
        op.wait_text("#good", "3")
        assert op.text("#yield") == "75.0 %"
        page.reload()  # computed by the service from stored results: a reload keeps them
        page.wait_for_selector("#link[data-state='live']", timeout=10000)
        op.wait_text("#good", "3")
        assert op.text("#ng") == "1"
        op.finish(tmp_path / "shift-counters.png")
        wait_s = (change - datetime.now(UTC)).total_seconds() + 3
        op.wait_text("#good", "0", timeout=max(wait_s, 1) * 1000)  # shift change: counters reset
        assert op.text("#ng") == "0" and op.text("#yield") == "—"
        server.post(make_result(verdict="FAIL", score=0.9, part_id="next-shift"))
        op.wait_text("#ng", "1")
        overview = httpx.get(f"{server.url}/api/v1/operator/overview", params={"station": STATION},
                             headers=server.h("operator")).json()
        assert overview["shift_start"].startswith(change.strftime("%Y-%m-%dT%H:%M:%S"))
        assert overview["stations"][0]["ng"] == 1 and overview["stations"][0]["good"] == 0


def test_overview_shows_every_station_under_a_prefix(tmp_path, browser):
    with running_server(tmp_path, alarm_consecutive_fails=2) as server:
        server.post(make_result(station=STATION, part_id="s1"),
                    make_result(station=NEIGHBOUR, verdict="FAIL", part_id="n1", at=ago(seconds=3)),
                    make_result(station=NEIGHBOUR, verdict="FAIL", part_id="n2"),
                    make_result(station=ELSEWHERE, part_id="e1"))
        op = OperatorPage(_context(browser), server, path="/overview#prefix=plant1/area1")
        page = op.page
        page.wait_for_function("document.querySelectorAll('.card').length === 3", timeout=5000)
        cards = {c.get_attribute("data-station"): c for c in page.locator(".card").all()}
        assert set(cards) == {STATION, NEIGHBOUR, OTHER}  # not plant2
        assert cards[STATION].locator(".card-verdict").text_content() == "PASS"
        assert "fail" in cards[NEIGHBOUR].get_attribute("class").split()
        assert "alarming" in cards[NEIGHBOUR].get_attribute("class").split()
        assert cards[NEIGHBOUR].locator(".ng").text_content() == "2"
        assert cards[NEIGHBOUR].locator(".streak").text_content() == "2 FAILs in a row"
        assert cards[OTHER].locator(".card-verdict").text_content() == "—"
        assert cards[STATION].locator(".age").text_content().endswith("s ago")
        server.post(make_result(station=OTHER, verdict="FAIL", part_id="o1"))  # the live feed updates the grid
        page.wait_for_function(f"document.querySelector('.card[data-station=\"{OTHER}\"] .card-verdict')"
                               ".textContent === 'FAIL'", timeout=3000)
        other = page.locator(f".card[data-station='{OTHER}']")
        assert other.locator(".ng").text_content() == "1"
        assert int(other.locator(".age").text_content().split()[0]) <= 2
        op.finish(tmp_path / "overview.png")
        page.click(f".card[data-station='{NEIGHBOUR}']")  # a card opens that station's page
        page.wait_for_function(f"(document.getElementById('station') || {{}}).value === '{NEIGHBOUR}'", timeout=10000)


def test_a_wrong_token_is_refused_in_the_page_and_nothing_is_shown(tmp_path, browser):
    with running_server(tmp_path) as server:
        page = _context(browser).new_page()
        page.goto(server.url + "/")
        page.wait_for_selector("#token-form", state="visible", timeout=5000)
        assert page.get_attribute("#link", "data-state") == "down"  # nothing read yet: not live
        page.fill("#token", "insp_not-a-token")
        page.click("#token-form button")
        page.wait_for_function("document.getElementById('error').textContent.includes('login refused')",
                               timeout=5000)
        assert "unknown or revoked token" in (page.text_content("#error") or "")
        page.fill("#token", server.tokens["edge"])  # an edge token may not read
        page.click("#token-form button")
        page.wait_for_function("document.getElementById('error').textContent.includes('may not read')",
                               timeout=5000)
        assert page.is_visible("#token-form") and page.input_value("#token") == ""
        page.screenshot(path=str(tmp_path / "login-refused.png"))
