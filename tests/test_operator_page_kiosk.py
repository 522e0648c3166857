"""The operator page's kiosk login and live indicator in real headless Chromium against `inspection serve` in
its own process: the login survives a browser restart without the token in any URL, storage or log line; the
session cookie is HttpOnly, SameSite=Strict, stored hashed, read-only and revocable; the indicator turns red
when the service's stream stalls (no heartbeat), the service stops or dies, and never says live meanwhile."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time

import httpx
import pytest
from line_support import CLI, ServiceProcess
from operator_page_support import OperatorPage, make_result
from service_support import STATION, chromium_browser
from sqlalchemy import create_engine, text

from edge_service.kiosk import COOKIE


class LoggedService(ServiceProcess):
    """`inspection serve --access-log`, everything it prints kept in a file (to look for the token)."""

    def _launch(self) -> subprocess.Popen:
        self.log = self.images.parent / "service.log"
        return subprocess.Popen([*CLI, "serve", "--port", str(self.port), "--image-dir", str(self.images),
                                 "--access-log"], env=self.env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)

    def post(self, *results: dict) -> None:
        res = httpx.post(f"{self.url}/api/v1/results", json={"results": list(results)},
                         headers={"Authorization": f"Bearer {self.edge}"})
        assert res.status_code == 200, res.text


@pytest.fixture
def service(tmp_path):
    svc = LoggedService(tmp_path)
    svc.start()
    svc.tokens = {"operator": svc.reader, "edge": svc.edge}  # what OperatorPage logs in with and checks URLs for
    try:
        yield svc
    finally:
        if svc.proc and svc.proc.poll() is None:
            svc.proc.send_signal(signal.SIGCONT)
            svc.stop()


@pytest.fixture
def browser():
    with chromium_browser() as b:
        yield b


def test_kiosk_login_survives_a_browser_restart_without_the_token_anywhere(tmp_path, service, browser):
    first = browser.new_context(viewport={"width": 1400, "height": 900})
    op = OperatorPage(first, service)
    cookie = next(c for c in first.cookies() if c["name"] == COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]  # plain http here
    assert cookie["expires"] > time.time() + 300 * 86400  # persistent, not a session cookie
    assert cookie["value"] != service.reader
    assert op.page.evaluate("document.cookie") == ""  # HttpOnly: scripts cannot read it
    state_file = tmp_path / "kiosk-state.json"
    first.storage_state(path=str(state_file))
    op.finish(tmp_path / "kiosk-first.png")
    first.close()  # the browser "restarts" with the same profile
    again = browser.new_context(viewport={"width": 1400, "height": 900}, storage_state=str(state_file))
    op2 = OperatorPage(again, service, login=False)  # no login form this time
    assert op2.page.is_hidden("#token-form")
    service.post(make_result(verdict="FAIL", score=0.93, part_id="K-1"))
    op2.wait_text("#verdict-text", "FAIL")
    op2.finish(tmp_path / "kiosk-after-restart.png")
    assert service.reader not in state_file.read_text()  # nothing in cookies or storage is the token
    with create_engine(service.db).connect() as conn:
        stored = conn.execute(text("SELECT secret_hash FROM kiosk_sessions")).scalars().all()
    assert stored == [hashlib.sha256(cookie["value"].encode()).hexdigest()]  # only the hash is kept
    op2.page.click("#logout")
    op2.page.wait_for_selector("#token-form", state="visible", timeout=5000)
    assert not [c for c in again.cookies() if c["name"] == COOKIE]
    assert httpx.get(f"{service.url}/api/v1/stations", cookies={COOKIE: cookie["value"]}).status_code == 401
    again.close()
    service.stop()
    log = service.log.read_text()
    assert "POST /kiosk/login" in log and "GET /api/v1/stream" in log  # the access log was on
    assert service.reader not in log and cookie["value"] not in log


def _session(service) -> str:
    res = httpx.post(f"{service.url}/kiosk/login", json={"token": service.reader})
    assert res.status_code == 200, res.text
    return res.cookies[COOKIE]


def test_the_kiosk_cookie_only_reads_what_the_operator_page_needs(service):
    jar = {COOKIE: _session(service)}
    url = service.url
    assert httpx.get(f"{url}/api/v1/stations", cookies=jar).json() == [STATION]
    assert httpx.get(f"{url}/api/v1/operator/overview", cookies=jar).status_code == 200
    refused = httpx.get(f"{url}/api/v1/tokens", cookies=jar)  # not an operator-page route
    assert refused.status_code == 401 and "kiosk session only reads" in refused.json()["message"]
    posted = httpx.post(f"{url}/api/v1/results", cookies=jar, json={"results": [make_result()]})
    assert posted.status_code == 401  # no write with a cookie: no CSRF surface
    bad = httpx.post(f"{url}/kiosk/login", json={"token": "insp_nope"})
    assert bad.status_code == 401 and bad.json()["message"] == "unknown or revoked token"
    assert httpx.post(f"{url}/kiosk/login", json={"token": service.edge}).status_code == 403  # edge cannot read
    assert httpx.post(f"{url}/kiosk/login", content=b"token", headers={"Content-Type": "text/plain"}).status_code == 422
    form = httpx.post(f"{url}/kiosk/login", content=f"token={service.reader}",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 303 and form.headers["location"] == "/" and COOKIE in form.cookies


def test_an_admin_lists_and_revokes_kiosk_sessions(service):
    secret = _session(service)
    admin = {"Authorization": f"Bearer {service._token('admin')}"}
    listed = httpx.get(f"{service.url}/api/v1/kiosk-sessions", headers=admin).json()
    assert [s["name"] for s in listed] == ["test-operator"] and listed[0]["revoked_at"] is None
    assert secret not in json.dumps(listed)
    reader = {"Authorization": f"Bearer {service.reader}"}
    assert httpx.get(f"{service.url}/api/v1/kiosk-sessions", headers=reader).status_code == 403
    assert httpx.delete(f"{service.url}/api/v1/kiosk-sessions/{listed[0]['id']}", headers=admin).status_code == 204
    assert httpx.delete(f"{service.url}/api/v1/kiosk-sessions/{listed[0]['id']}", headers=admin).status_code == 404
    assert httpx.get(f"{service.url}/api/v1/stations", cookies={COOKIE: secret}).status_code == 401


def test_revoking_the_token_ends_its_kiosk_sessions(service):
    jar = {COOKIE: _session(service)}
    assert httpx.get(f"{service.url}/api/v1/stations", cookies=jar).status_code == 200
    listed = subprocess.run([*CLI, "token", "list"], env=service.env, capture_output=True, text=True).stdout
    token_id = next(line.split()[0] for line in listed.splitlines() if "test-operator" in line)
    subprocess.run([*CLI, "token", "revoke", token_id], env=service.env, check=True, capture_output=True)
    ended = httpx.get(f"{service.url}/api/v1/stations", cookies=jar)
    assert ended.status_code == 401 and "kiosk session ended" in ended.json()["message"]


def _link(page) -> str:
    return page.get_attribute("#link", "data-state") or ""


def _until_down(page, limit_s: float) -> float:
    """Seconds until the indicator shows the feed down (sampled every 50 ms; fails after ``limit_s``)."""
    t0 = time.monotonic()
    while _link(page) != "down":
        assert time.monotonic() - t0 < limit_s, f"indicator still says live after {limit_s} s"
        page.wait_for_timeout(50)
    return time.monotonic() - t0


def test_live_indicator_turns_red_when_the_stream_stalls_or_the_service_dies(tmp_path, service, browser):
    op = OperatorPage(browser.new_context(viewport={"width": 1400, "height": 900}), service)
    page = op.page
    page.wait_for_timeout(3000)  # heartbeats keep it live while no result arrives
    assert _link(page) == "live"
    os.kill(service.proc.pid, signal.SIGSTOP)  # the service stalls: the socket stays open, nothing arrives
    stalled = _until_down(page, 8)
    assert page.text_content("#link") == "✗ FEED DOWN" and page.is_visible("#stale")
    for _ in range(20):  # the page keeps trying to reconnect, and never says live while the service is stalled
        page.wait_for_timeout(100)
        assert _link(page) == "down"
    op.finish(tmp_path / "feed-stalled.png")
    os.kill(service.proc.pid, signal.SIGCONT)
    page.wait_for_selector("#link[data-state='live']", timeout=15000)
    t0 = time.monotonic()
    service.proc.terminate()  # a normal stop: the open stream is ended after the grace time, not waited for
    stopped = _until_down(page, 8)
    service.proc.wait(10)
    exited = time.monotonic() - t0
    service.start()  # back on the same port: the page reconnects by itself
    page.wait_for_selector("#link[data-state='live']", timeout=20000)
    service.proc.kill()  # the service dies
    died = _until_down(page, 3)
    service.proc.wait(10)
    print(f"indicator down {stalled:.2f} s after the stall, {stopped:.2f} s after SIGTERM (process gone after "
          f"{exited:.2f} s), {died:.2f} s after the service died")
    assert stalled <= 6.5 and stopped <= 6 and exited <= 8 and died <= 2
    op.finish(tmp_path / "feed-dead.png")
