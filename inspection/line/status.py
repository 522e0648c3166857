"""The station's status: a typed snapshot (``/status``), the Prometheus metrics (``/metrics``) and a health
check (``/healthz``: 200 while the runner is well, 503 in state ``error``) on the status port."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from prometheus_client import generate_latest
from pydantic import BaseModel

from inspection.line import metrics as m

log = logging.getLogger("inspection.line.status")
RunnerState = Literal["starting", "running", "finished", "stopping", "stopped", "error"]
RUNNER_STATES: tuple[RunnerState, ...] = ("starting", "running", "finished", "stopping", "stopped", "error")


class SourceStatus(BaseModel):
    name: str
    state: str
    live: bool
    frames: int
    dropped: int
    corrupt: int
    failed: int
    reopens: int
    stalls: int


class StageStatus(BaseModel):
    state: str
    alive: bool
    crashes: int
    restarts: int
    last_error: str | None


class OutboxStatus(BaseModel):
    depth: int
    oldest_age_s: float
    rejected: int


class LinkStatus(BaseModel):
    state: str
    last_error: str | None


class LineStatus(BaseModel):
    station: str
    state: RunnerState
    error: str | None  # why the runner stopped, in state error
    uptime_s: float
    model: dict[str, Any]
    source: SourceStatus
    stages: dict[str, StageStatus]
    results: dict[str, int]  # committed, by verdict
    outbox: dict[str, OutboxStatus]
    outbox_error: str | None = None  # the outbox could not be read
    links: dict[str, LinkStatus]


class StatusServer:
    def __init__(self, host: str, port: int, status: Callable[[], LineStatus]):
        self.status = status
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, name="status", daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        status = self.status

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                code = 200
                if self.path == "/status":
                    body, ctype = status().model_dump_json().encode(), "application/json"
                elif self.path == "/metrics":
                    status()  # refresh the outbox gauges and the state
                    body, ctype = generate_latest(m.REGISTRY), "text/plain; version=0.0.4"
                elif self.path == "/healthz":
                    st = status()
                    code = 503 if st.state == "error" else 200
                    body = json.dumps({"status": "error" if code == 503 else "ok", "state": st.state,
                                       "error": st.error}).encode()
                    ctype = "application/json"
                else:
                    self.send_error(404)
                    return
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:  # no request logging
                pass

        return Handler

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
