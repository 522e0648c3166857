"""Helpers for the results-service tests: databases (SQLite and the real PostgreSQL), tokens, results."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from inspection.schema import InspectionResult, ModelInfo, StageTimings, StationContext

PG_URL = os.environ.get("INSPECTION_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
STATION = "plant1/area1/line1/cell1/st1"
OTHER = "plant1/area1/line2/cell1/st9"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def need_service(name: str, host: str, port: int) -> None:
    """Skip (or, under CI, fail) when a real service is unreachable."""
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        message = f"{name} at {host}:{port} is unreachable ({exc}); start it (make test starts it) to run this test"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)


def png_bytes(seed: int = 0, size: int = 64) -> bytes:
    """A small random RGB PNG."""
    import cv2
    import numpy as np

    img = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    return cv2.imencode(".png", img)[1].tobytes()


def make_result(station: str = STATION, verdict: str = "PASS", score: float | None = None,
                at: datetime | None = None, model_version: str = "1", part_id: str | None = None,
                rid: uuid.UUID | None = None) -> dict:
    """A valid result; the threshold is 0.5 unless the given score needs another one for the verdict to agree
    (FAIL exactly when score > threshold)."""
    if score is None:
        score = 0.9 if verdict == "FAIL" else 0.3
    threshold = 0.5
    if (verdict == "FAIL") != (score > threshold):
        threshold = score - 0.1 if verdict == "FAIL" else score
    r = InspectionResult(
        inspection_id=rid or uuid.uuid4(), station=StationContext.from_path(station), part_id=part_id,
        inspected_at=at or datetime.now(UTC), model=ModelInfo(name="demo", version=model_version, sha256="0" * 64),
        verdict=verdict, score=score, threshold=threshold, image_width=256, image_height=256, regions=[],
        timings=StageTimings(preprocess_ms=0.1, inference_ms=8.5, postprocess_ms=0.2))
    return r.model_dump(mode="json")


@dataclass
class Service:
    client: object
    engine: object
    tokens: dict[str, str] = field(default_factory=dict)

    def h(self, role: str) -> dict:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def post(self, results: list[dict], role: str = "edge"):
        return self.client.post("/api/v1/results", json={"results": results}, headers=self.h(role))

    def get(self, path: str, role: str = "operator", **params):
        return self.client.get(path, params=params, headers=self.h(role))


class TcpProxy:
    """A loopback TCP forwarder that can be cut and restored: a database outage without touching the server."""

    def __init__(self, target_port: int, host: str = "127.0.0.1"):
        self.target = (host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            self.conns += [client, server]
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()

    def cut(self) -> None:
        self.up = False
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
        self.conns.clear()
        time.sleep(0.1)

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningServer:
    """The real service under uvicorn in a background thread, on a loopback port. ``send_buffer`` fixes the
    kernel send buffer of every connection (no autotuning to megabytes), so a client that stops reading
    backs the server up after a few kilobytes."""

    def __init__(self, app, send_buffer: int | None = None):
        import uvicorn

        self.listener = socket.create_server(("127.0.0.1", 0))
        if send_buffer:  # accepted connections inherit it
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        self.port = self.listener.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.listener]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("service did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.listener.close()


@contextlib.contextmanager
def station_server(tmp_path, roles: tuple[str, ...] = ("edge", "operator")):
    """A RunningServer on SQLite under ``tmp_path`` with the test STATION registered, a token per role in
    ``srv.tokens`` and the app in ``srv.app``."""
    from edge_service import auth, store
    from edge_service.app import ServiceSettings, create_app

    app = create_app(ServiceSettings(database_url=f"sqlite:///{tmp_path / 'r.db'}", image_dir=tmp_path / "img"))
    with RunningServer(app) as srv:
        store.add_station(app.state.engine, StationContext.from_path(STATION))
        srv.tokens = {r: auth.create_token(app.state.engine, r, r).token for r in roles}
        srv.app = app
        yield srv


CHROMIUM = "/usr/bin/chromium"  # Debian's chromium, driven by Playwright (no browser downloads)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@contextlib.contextmanager
def chromium_browser():
    """Debian's headless chromium under Playwright; skips (fails under CI) where it is not installed."""
    if shutil.which(CHROMIUM) is None:
        message = f"Debian chromium not installed at {CHROMIUM} (apt-get install chromium; make test does it)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()

