"""Helpers for the QA workstation tests: a running service with tokens of each role, real Chromium that
records every request, and a results/images seeder."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from service_support import OTHER, STATION, RunningServer, chromium_browser, make_result, png_bytes

from edge_service import auth, store
from edge_service.app import ServiceSettings, create_app
from inspection.schema import StationContext

REPO = Path(__file__).resolve().parents[1]


@dataclass
class QaServer:
    url: str
    app: object
    tokens: dict[str, str] = field(default_factory=dict)

    def h(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def post(self, results: list[dict]) -> None:
        res = httpx.post(f"{self.url}/api/v1/results", json={"results": results}, headers=self.h("edge"))
        assert res.status_code == 200, res.text

    def put_image(self, rid: str, kind: str, data: bytes) -> None:
        res = httpx.put(f"{self.url}/api/v1/results/{rid}/images/{kind}", content=data,
                        headers={**self.h("edge"), "Content-Type": "image/png"})
        assert res.status_code == 204, res.text


def start_server(tmp_path, database_url: str | None = None):
    app = create_app(ServiceSettings(database_url=database_url or f"sqlite:///{tmp_path / 'r.db'}",
                                     image_dir=tmp_path / "img"))
    running = RunningServer(app)
    running.__enter__()
    engine = app.state.engine
    for path in (STATION, OTHER):
        store.add_station(engine, StationContext.from_path(path))
    srv = QaServer(running.url, app)
    srv.tokens = {r: auth.create_token(engine, f"{r}-anna" if r == "qa" else r, r).token for r in auth.ROLES}
    return running, srv


@pytest.fixture
def qa_server(tmp_path):
    running, srv = start_server(tmp_path)
    try:
        yield srv
    finally:
        running.__exit__(None, None, None)


@pytest.fixture
def chromium():
    with chromium_browser() as browser:
        yield browser


class Page:
    """A browser page signed in with a token; every request it makes is recorded."""

    def __init__(self, browser, server: QaServer, role: str, path: str, tmp_path):
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.requests: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.server, self.tmp_path = server, tmp_path
        self.page.goto(server.url + path)
        self.page.fill("#token", server.tokens[role])
        self.page.click("#token-form button")
        self.page.wait_for_function("document.getElementById('me').textContent.length > 0", timeout=10000)

    def finish(self, name: str) -> None:
        """Screenshot under the test's output; no request left localhost."""
        self.page.screenshot(path=str(self.tmp_path / f"{name}.png"), full_page=True)
        outside = [u for u in self.requests if not (u.startswith(self.server.url) or u.startswith("blob:"))]
        assert not outside, outside


def at(hours_ago: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours_ago)


def seed_today_and_yesterday(server: QaServer) -> dict[str, dict]:
    """Two FAILs and a PASS from just now, one FAIL from two days ago; the newest FAIL has images."""
    rows = {
        "new_fail": make_result(verdict="FAIL", score=0.91, part_id="P-NEW", at=at(0.01)),
        "old_fail": make_result(verdict="FAIL", score=0.8, part_id="P-OLD", at=at(49)),
        "pass": make_result(verdict="PASS", score=0.2, part_id="P-PASS", at=at(0.02)),
        "fail2": make_result(verdict="FAIL", score=0.7, part_id="P-TWO", at=at(0.03)),
    }
    server.post(list(rows.values()))
    server.put_image(rows["new_fail"]["inspection_id"], "original", png_bytes(1, 256))
    return rows
