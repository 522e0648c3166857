"""Helpers for the operator-page tests: the service in a thread with operator-page settings, results with
regions, and a Chromium page that logs in through the kiosk form and records every request."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import httpx
from service_support import OTHER, STATION, RunningServer, make_result, png_bytes

from edge_service import auth, store
from edge_service.app import ServiceSettings, create_app
from inspection.schema import StationContext

NEIGHBOUR = "plant1/area1/line1/cell1/st2"
ELSEWHERE = "plant2/area1/line1/cell1/st1"
REGION = {"x": 40, "y": 60, "width": 50, "height": 30, "area_px": 900, "peak_score": 0.97}


class Server:
    def __init__(self, running: RunningServer, app):
        self.running, self.app, self.url = running, app, running.url
        engine = app.state.engine
        for path in (STATION, NEIGHBOUR, OTHER, ELSEWHERE):
            store.add_station(engine, StationContext.from_path(path))
        self.tokens = {r: auth.create_token(engine, f"{r}-screen", r).token for r in auth.ROLES}

    def h(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def post(self, *results: dict) -> None:
        res = httpx.post(f"{self.url}/api/v1/results", json={"results": list(results)}, headers=self.h("edge"))
        assert res.status_code == 200, res.text

    def put_image(self, rid: str, kind: str, data: bytes) -> None:
        res = httpx.put(f"{self.url}/api/v1/results/{rid}/images/{kind}", content=data,
                        headers={**self.h("edge"), "Content-Type": "image/png"})
        assert res.status_code == 204, res.text


@contextlib.contextmanager
def running_server(tmp_path, **settings):
    app = create_app(ServiceSettings(database_url=f"sqlite:///{tmp_path / 'r.db'}", image_dir=tmp_path / "img",
                                     **settings))
    with RunningServer(app) as running:
        yield Server(running, app)


def fail_with_region(station: str = STATION, part_id: str = "F-1", at: datetime | None = None) -> dict:
    r = make_result(station=station, verdict="FAIL", score=0.97, part_id=part_id, at=at)
    r["regions"] = [REGION]
    return r


def ago(**kw) -> datetime:
    return datetime.now(UTC) - timedelta(**kw)


class OperatorPage:
    """The page logged in through the kiosk form, every request recorded."""

    def __init__(self, context, server: Server, path: str = "/", role: str = "operator", login: bool = True):
        self.page = context.new_page()
        self.requests: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.server = server
        self.page.goto(server.url + path)
        if login:
            self.page.fill("#token", server.tokens[role])
            self.page.click("#token-form button")
        self.page.wait_for_selector("#link[data-state='live']", timeout=15000)

    def text(self, selector: str) -> str:
        return self.page.text_content(selector) or ""

    def wait_text(self, selector: str, text: str, timeout: float = 5000) -> None:
        self.page.wait_for_function("([s, t]) => (document.querySelector(s) || {}).textContent === t",
                                    arg=[selector, text], timeout=timeout)

    def finish(self, path) -> None:
        """Screenshot; no request left localhost and no token was in any URL."""
        self.page.screenshot(path=str(path), full_page=True)
        outside = [u for u in self.requests if not (u.startswith(self.server.url) or u.startswith("blob:"))]
        assert not outside, outside
        leaked = [u for u in self.requests for t in self.server.tokens.values() if t in u]
        assert not leaked, leaked


__all__ = ["ELSEWHERE", "NEIGHBOUR", "OTHER", "STATION", "OperatorPage", "Server", "ago", "fail_with_region",
           "make_result", "png_bytes", "running_server"]
