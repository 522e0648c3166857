"""The station's status: a typed snapshot (``/status``), the Prometheus metrics (``/metrics``) and a health
check (``/healthz``: 200 while the runner is well, 503 in state ``error``) on the status port."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from prometheus_client import generate_latest
from pydantic import BaseModel

from inspection.line import metrics as m
from inspection.line.drift import DriftStatus

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


class TriggerStatus(BaseModel):
    """Trigger mode: the PLC handshake's state and counters (OPC 40100 state names)."""

    state: str
    buffered: int
    depth: int
    recipe: int
    recipe_name: str
    last_trigger_sequence: int | None
    presented_sequence: int | None
    last_error: str
    last_error_message: str
    counters: dict[str, float]
    servers: list[str]


class AssignmentStatus(BaseModel):
    """The model assignment from the results service: what runs (per recipe; "0" when free-running), what the
    service assigns, the last poll and its error, and what a shadow model costs against the frame budget."""

    running: dict[str, dict[str, Any]]
    assigned: dict[str, Any] | None  # the service's latest answer (None: not reached yet)
    applied: dict[str, Any] | None  # the assignment the running judges come from (None: the configured models)
    in_sync: bool
    last_poll_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    polls: int
    errors: int
    swaps: int
    shadow_ms: float | None  # shadow mode: mean milliseconds per frame of the shadow model
    live_ms: float | None
    frame_interval_ms: float | None
    shadow_over_budget: bool  # live + shadow take longer than the time between frames


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
    trigger: TriggerStatus | None = None  # trigger mode only
    assignment: AssignmentStatus | None = None  # [assignment] enabled only
    drift: DriftStatus | None = None  # the PASS scores against the model's good scores (inspection.line.drift)


def export_drift(d: DriftStatus) -> None:
    """The drift figures as Prometheus gauges (NaN while the window holds too few PASS parts)."""
    nan = float("nan")
    m.DRIFT_KS.set(nan if d.ks is None else d.ks)
    m.DRIFT_KS_CRITICAL.set(nan if d.ks_critical is None else d.ks_critical)
    m.DRIFT_MEAN_SHIFT.set(nan if d.mean_shift is None else d.mean_shift)
    m.DRIFT_MEDIAN_Z.set(nan if d.median_z is None else d.median_z)
    m.DRIFT_ALERT.set(1 if d.drifting else 0)
    m.DRIFT_COUNT.set(d.count)


class StatusServer:
    def __init__(self, host: str, port: int, status: Callable[[], LineStatus],
                 trigger: Callable[[bytes], tuple[int, dict]] | None = None):
        self.status, self.trigger = status, trigger
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, name="status", daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        status, trigger = self.status, self.trigger

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, 65536)) if length else b""
                if self.path != "/trigger" or trigger is None:
                    code, answer = 404, {"error": "not_found", "message": f"POST {self.path}: only POST /trigger, "
                                         "and only in trigger mode ([plant] enabled)"}
                else:
                    code, answer = trigger(body)
                data = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

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
                    body, ctype, code = b'{"error": "not_found"}', "application/json", 404
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
