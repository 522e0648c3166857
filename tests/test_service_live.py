"""The live feed (Server-Sent Events over a real socket) and the operator page in real headless Chromium."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest
from service_support import OTHER, STATION, RunningServer, chromium_browser, make_result

from edge_service import auth, store
from edge_service.app import ServiceSettings, create_app
from inspection.schema import StationContext


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
    with chromium_browser() as b:
        yield b


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


@pytest.fixture
def live_app(tmp_path):
    """The service under uvicorn with small fixed send buffers, and the app at hand (to watch its live feed)."""
    app = create_app(ServiceSettings(database_url=f"sqlite:///{tmp_path / 'r.db'}", image_dir=tmp_path / "img"))
    with RunningServer(app, send_buffer=8192) as srv:
        store.add_station(app.state.engine, StationContext.from_path(STATION))
        srv.tokens = {r: auth.create_token(app.state.engine, r, r).token for r in ("edge", "operator")}
        srv.app = app
        yield srv


def _wait_for(condition, what: str, seconds: float = 30.0, step=None):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if step:
            step()
        else:
            time.sleep(0.02)


def _stalled_client(server) -> socket.socket:
    """Opens the stream and never reads: a tiny receive window, so the server's sends back up at once."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(f"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                 f"{server.tokens['operator']}\r\n\r\n".encode())
    return sock


def test_a_stalled_stream_client_blocks_neither_ingest_nor_other_clients(live_app):
    server, feed = live_app, live_app.app.state.feed
    edge = {"Authorization": f"Bearer {server.tokens['edge']}"}
    slow = _stalled_client(server)
    try:
        _wait_for(lambda: len(feed.subscribers) == 1, "the stalled client to subscribe")
        stalled = next(iter(list(feed.subscribers)))

        def flood():  # every batch must still be taken while the stalled client's queue fills
            res = httpx.post(f"{server.url}/api/v1/results", json={"results": [make_result() for _ in range(200)]},
                             headers=edge, timeout=30)
            assert res.status_code == 200, res.text

        # the stalled client falls a full queue behind (its socket buffers are full too) and is dropped
        _wait_for(lambda: stalled.dropped is not None, "the stalled client to be dropped", seconds=120, step=flood)
        wanted = [make_result(part_id=f"after-{i}") for i in range(5)]
        wanted_ids = {r["inspection_id"] for r in wanted}
        seen: set[str] = set()
        connected = threading.Event()

        def read():
            with httpx.stream("GET", f"{server.url}/api/v1/stream", params={"max_seconds": 30},
                              headers={"Authorization": f"Bearer {server.tokens['operator']}"}, timeout=40) as res:
                for line in res.iter_lines():
                    if line == ": connected":
                        connected.set()
                    elif line.startswith("data: "):
                        seen.add(json.loads(line[6:])["inspection_id"])
                        if wanted_ids <= seen:
                            return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert connected.wait(30), "a second client could not connect while one was stalled"
        res = httpx.post(f"{server.url}/api/v1/results", json={"results": wanted}, headers=edge, timeout=30)
        assert res.status_code == 200 and sorted(res.json()["stored"]) == sorted(wanted_ids), res.text
        reader.join(timeout=40)
        assert wanted_ids <= seen, f"the reading client got {len(seen & wanted_ids)} of 5 new results"
    finally:
        slow.close()
