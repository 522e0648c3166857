"""The live feed (Server-Sent Events over a real socket) and the operator page in real headless Chromium."""

from __future__ import annotations

import json
import shutil
import threading
import time

import httpx
import pytest
from service_support import OTHER, STATION, RunningServer, in_ci, make_result

from edge_service import auth, store
from edge_service.app import ServiceSettings, create_app
from inspection.schema import StationContext

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def server(tmp_path):
    app = create_app(ServiceSettings(database_url=f"sqlite:///{tmp_path / 'r.db'}", image_dir=tmp_path / "img",
                                     stale_seconds=2))
    with RunningServer(app) as srv:
        engine = app.state.engine
        for path in (STATION, OTHER):
            store.add_station(engine, StationContext.from_path(path))
        srv.tokens = {r: auth.create_token(engine, r, r).token for r in ("edge", "operator")}
        yield srv


def _post(server, results):
    res = httpx.post(f"{server.url}/api/v1/results", json={"results": results},
                     headers={"Authorization": f"Bearer {server.tokens['edge']}"})
    assert res.status_code == 200, res.text


def test_stream_delivers_new_results_for_the_station_prefix(server):
    wanted, other = make_result(verdict="FAIL"), make_result(station=OTHER)
    events: list[dict] = []

    def read():
        with httpx.stream("GET", f"{server.url}/api/v1/stream", params={"station": "plant1/area1/line1",
                                                                          "max_seconds": 4},
                          headers={"Authorization": f"Bearer {server.tokens['operator']}"}, timeout=10) as res:
            assert res.headers["content-type"].startswith("text/event-stream")
            for line in res.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.7)
    _post(server, [other, wanted])
    _post(server, [wanted])  # a duplicate is not announced again
    reader.join(timeout=10)
    assert [e["inspection_id"] for e in events] == [wanted["inspection_id"]]
    assert events[0]["verdict"] == "FAIL" and events[0]["station_path"] == STATION
    assert httpx.get(f"{server.url}/api/v1/stream", headers={"Authorization": "Bearer nope"}).status_code == 401


@pytest.fixture
def browser():
    if shutil.which(CHROMIUM) is None:
        message = f"Debian chromium not installed at {CHROMIUM} (apt-get install chromium; make test does it)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        yield b
        b.close()


def test_operator_page_shows_posted_results_live_and_goes_stale(server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(server.url + "/")
    # needs a token; it goes in the Authorization header, never the URL
    page.fill("#token", server.tokens["operator"])
    page.click("#token-form button")
    page.wait_for_selector("#link[data-state='live']", timeout=10000)
    assert page.locator("#station").input_value() == STATION  # the first registered station
    _post(server, [make_result(verdict="PASS", part_id="A1")])
    page.wait_for_function("document.getElementById('verdict-text').textContent === 'PASS'", timeout=5000)
    _post(server, [make_result(verdict="FAIL", score=0.91, part_id="A2")])
    page.wait_for_function("document.getElementById('verdict-text').textContent === 'FAIL'", timeout=5000)
    assert "A2" in page.text_content("#verdict-detail")
    assert page.locator("#verdict").get_attribute("class").split()[:2] == ["verdict", "fail"]
    assert page.locator("#strip li").count() == 2
    assert page.locator("#strip li.fail").count() == 1
    assert page.is_hidden("#stale")
    page.wait_for_function("document.getElementById('yield').textContent.trim() === '50.0 %'", timeout=5000)
    # no result for longer than stale_seconds (2 s): the page says so
    page.wait_for_selector("#stale", state="visible", timeout=6000)
    assert "STALE" in page.text_content("#stale")
    assert "is-stale" in page.locator("#verdict").get_attribute("class")
    # a result arrives: the banner goes again
    _post(server, [make_result(verdict="PASS")])
    page.wait_for_selector("#stale", state="hidden", timeout=5000)
    assert page.locator("#strip li").count() == 3


def test_operator_page_loads_no_outside_assets(server, browser):
    page = browser.new_page()
    requested = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(server.url + "/")
    page.wait_for_load_state("networkidle")
    assert requested and all(u.startswith(server.url) for u in requested), requested
