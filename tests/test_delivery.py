"""What counts as delivered: only the results service's acknowledgement naming each id (stored or duplicate);
a 4xx refusal sets the result aside so the queue keeps moving; a 503 is retried, never set aside."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from line_support import CLI
from service_support import OTHER, make_result

from inspection.line.forwarders import HttpForwarder
from inspection.line.outbox import DELIVERED, PENDING, REJECTED, Outbox


class _Answer:
    """A stand-in for a wrong server in front of the service: every POST gets the same answer."""

    def __init__(self, status: int, body: bytes | None = None, ctype: str = "text/html",
                 ack: float | None = None):
        self.status, self.body, self.ctype, self.ack = status, body, ctype, ack
        answer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                sent = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                body = answer.body
                if answer.ack is not None:  # acknowledge only the first share of the ids
                    ids = [r["inspection_id"] for r in sent["results"]]
                    body = json.dumps({"stored": ids[:int(len(ids) * answer.ack)], "duplicates": []}).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.ctype)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *_a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _outbox(path, results: list[dict]) -> Outbox:
    box = Outbox(path, enabled=("http",))
    for r in results:
        box.add(r["inspection_id"], json.dumps(r))
    return box


def _states(box: Outbox) -> dict[str, int]:
    return {r[0]: r[1] for r in box.db.execute("SELECT inspection_id, http_state FROM outbox")}


@pytest.mark.parametrize("answer", [
    {"status": 200, "body": b"<html><body>Welcome to the proxy</body></html>"},
    {"status": 200, "body": b'{"ok": true}', "ctype": "application/json"},
    {"status": 200, "ack": 0.5, "ctype": "application/json"},
    {"status": 503, "body": b'{"detail": "database unavailable"}', "ctype": "application/json"},
], ids=["200-html", "200-json-without-ids", "200-acknowledging-half", "503"])
def test_only_an_acknowledgement_naming_the_id_counts_as_delivered(tmp_path, answer):
    server = _Answer(**answer)
    results = [make_result() for _ in range(6)]
    box = _outbox(tmp_path / "o.db", results)
    forwarder = HttpForwarder(tmp_path / "o.db", server.url, "token", threading.Event())
    try:
        with pytest.raises(RuntimeError):  # the forwarder retries it with backoff, and counts the failure
            forwarder.deliver(box, box.pending("http", 50))
    finally:
        forwarder.client.close()
        server.close()
    states = _states(box)
    acked = {r["inspection_id"] for r in results[:3]} if answer.get("ack") else set()
    assert {i for i, s in states.items() if s == DELIVERED} == acked
    assert {i for i, s in states.items() if s == PENDING} == {r["inspection_id"] for r in results} - acked
    assert REJECTED not in states.values()  # a wrong answer is retried, never set aside
    box.close()


def test_a_refused_result_is_set_aside_and_the_queue_keeps_moving(tmp_path, service_process):
    """A scoped edge token may not write for another station (403): that one result is set aside."""
    service = service_process
    out = subprocess.run([*CLI, "token", "create", "--role", "edge", "--name", "line1-box", "--station",
                          "plant1/area1/line1"], env=service.env, check=True, capture_output=True, text=True)
    token = out.stdout.strip().splitlines()[-1]
    results = [make_result() for _ in range(3)] + [make_result(station=OTHER)] + [make_result() for _ in range(3)]
    box = _outbox(tmp_path / "o.db", results)
    stop = threading.Event()
    forwarder = HttpForwarder(tmp_path / "o.db", service.url, token, stop, batch=50)
    forwarder.start()
    try:
        from line_support import wait_for

        wait_for(lambda: not box.pending("http", 50), 30, "the queue to move past the refused result", poll=0.1)
        late = make_result()  # and it keeps moving afterwards
        box.add(late["inspection_id"], json.dumps(late))
        forwarder.wake.set()
        wait_for(lambda: not box.pending("http", 50), 30, "a later result to be delivered", poll=0.1)
    finally:
        stop.set()
        forwarder.join(timeout=15)
    foreign = results[3]["inspection_id"]
    assert set(service.ids()) == {r["inspection_id"] for r in results if r["station"]["station"] != "st9"} | {
        late["inspection_id"]}
    [aside] = box.rejected("http")
    assert aside.inspection_id == foreign and aside.error is not None and aside.error.startswith("403")
    box.close()
