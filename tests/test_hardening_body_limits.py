"""Body limits that hold (issue 9 item 2), against the real service under uvicorn: a chunked body is counted
while it streams and refused with 413 at the route's limit (ingest 16 MB, image upload 8 MB) and the
connection closed; a body without a token is refused with 401 from its headers; the server's memory stays
bounded and /healthz answers while a large body is on its way."""

from __future__ import annotations

import json
import select
import socket
from pathlib import Path

import httpx
import pytest
from service_support import STATION, RunningServer, make_result

from edge_service import auth, store
from edge_service.app import ServiceSettings, create_app
from edge_service.database import upgrade
from inspection.schema import StationContext

CHUNK = b"x" * 65536


def rss_bytes() -> int:
    """Resident memory of this process (the server runs in a thread of it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class ChunkedUpload:
    """A raw HTTP/1.1 request with a chunked body, sent chunk by chunk until the server answers or closes."""

    def __init__(self, port: int, method: str, path: str, headers: dict[str, str], length: int | None = None):
        """``length``: declare a Content-Length instead of a chunked body (the body is then not sent by
        ``send``-ing chunks: the test sees whether the header alone is refused)."""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        framing = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", framing,
                 *(f"{k}: {v}" for k, v in headers.items())]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.sent = 0

    def send(self, total: int, chunk: bytes = CHUNK) -> bool:
        """Send up to ``total`` more body bytes; False as soon as the server has answered or closed."""
        goal = self.sent + total
        while self.sent < goal:
            readable, writable, _ = select.select([self.sock], [self.sock], [], 30)
            if readable:
                return False
            if not writable:
                raise AssertionError("server neither read nor answered for 30 s")
            try:
                self.sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:  # reset or broken pipe: the server closed
                return False
            self.sent += len(chunk)
        return True

    def finish(self, last: bytes = b"") -> None:
        if last:
            self.sock.sendall(b"%x\r\n%s\r\n" % (len(last), last))
        self.sock.sendall(b"0\r\n\r\n")

    def answer(self) -> tuple[int, dict, bool]:
        """Status, JSON body, and whether the server closed the connection after it."""
        data = b""
        self.sock.settimeout(30)
        closed = False
        while True:
            try:
                piece = self.sock.recv(65536)
            except ConnectionResetError:
                closed = True
                break
            if not piece:
                closed = True
                break
            data += piece
            head, sep, body = data.partition(b"\r\n\r\n")
            length = next((int(h.split(b":")[1]) for h in head.split(b"\r\n")
                           if h.lower().startswith(b"content-length:")), None)
            if (sep and length is not None and len(body) >= length
                    and b"connection: close" not in head.lower()):
                break  # a kept-alive connection: the answer is complete
        self.sock.close()
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1])
        return status, json.loads(body[:length] if length else body), closed


@pytest.fixture
def server(tmp_path):
    app = create_app(ServiceSettings(database_url=f"sqlite:///{tmp_path / 'r.db'}", image_dir=tmp_path / "img"))
    upgrade(app.state.engine)
    edge = auth.create_token(app.state.engine, "edge", "edge").token
    store.add_station(app.state.engine, StationContext.from_path(STATION))
    with RunningServer(app) as running:
        running.token = edge
        yield running


def _healthz(server) -> int:
    return httpx.get(f"{server.url}/healthz", timeout=10).status_code


def test_chunked_ingest_over_the_limit_is_cut_off_with_413(server):
    before = rss_bytes()
    upload = ChunkedUpload(server.port, "POST", "/api/v1/results",
                           {"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"})
    assert upload.send(8 * 1024 * 1024)  # half the limit: still reading
    assert _healthz(server) == 200  # answers while a large body is on its way
    upload.send(300 * 1024 * 1024)  # would be 300 MB more
    status, body, closed = upload.answer()
    assert status == 413 and body["error"] == "too_large" and "16777216" in body["message"]
    assert closed
    assert upload.sent < 100 * 1024 * 1024, upload.sent  # the server stopped reading near the limit
    assert rss_bytes() - before < 150 * 1024 * 1024
    assert _healthz(server) == 200


def test_unauthenticated_body_is_refused_from_the_headers(server):
    before = rss_bytes()
    upload = ChunkedUpload(server.port, "POST", "/api/v1/results", {"Content-Type": "application/json"})
    upload.send(300 * 1024 * 1024)
    status, body, closed = upload.answer()
    assert status == 401 and body["error"] == "unauthenticated" and closed
    assert upload.sent < 64 * 1024 * 1024, upload.sent
    assert rss_bytes() - before < 100 * 1024 * 1024


def test_image_upload_limit_is_its_own(server):
    r = make_result()
    ok = httpx.post(f"{server.url}/api/v1/results", json={"results": [r]},
                    headers={"Authorization": f"Bearer {server.token}"}, timeout=10)
    assert ok.status_code == 200, ok.text
    upload = ChunkedUpload(server.port, "PUT", f"/api/v1/results/{r['inspection_id']}/images/original",
                           {"Authorization": f"Bearer {server.token}", "Content-Type": "image/png"})
    upload.send(12 * 1024 * 1024)  # over 8 MB, under the ingest limit
    status, body, _ = upload.answer()
    assert status == 413 and "8388608" in body["message"]
    # by Content-Length alone: refused before any of the body is read (sending a 9 MB body that the server
    # never reads would race its close against the client's write and lose the answer to a reset)
    declared = ChunkedUpload(server.port, "PUT", f"/api/v1/results/{r['inspection_id']}/images/original",
                             {"Authorization": f"Bearer {server.token}", "Content-Type": "image/png"},
                             length=9 * 1024 * 1024)
    status, body, _ = declared.answer()
    assert status == 413 and "8388608" in body["message"]


def test_chunked_body_under_the_limit_is_accepted(server):
    results = [make_result() for _ in range(3)]
    payload = json.dumps({"results": results}).encode()
    upload = ChunkedUpload(server.port, "POST", "/api/v1/results",
                           {"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"})
    middle = len(payload) // 2
    assert upload.send(middle, payload[:middle])
    upload.finish(payload[middle:])
    status, body, _ = upload.answer()
    assert status == 200, body
    assert sorted(body["stored"]) == sorted(r["inspection_id"] for r in results)
