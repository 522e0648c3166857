"""Peak memory of the results service through the hostile cases of issue 9 (goal: under 300 MB in each).

    python benchmarks/service_memory.py [--db sqlite|postgresql] [--streams 200] [--results 10000]

`inspection serve` in its own process (a fresh SQLite file, or a fresh schema on the local PostgreSQL); before
each case the kernel's peak-RSS mark of the service process is reset (``/proc/PID/clear_refs``, 5) and after
it ``VmHWM`` is read, so each figure is that case's own peak, sampled by the kernel (no sampling gaps). When
the reset is not permitted, VmRSS is sampled every 5 ms instead (the output says which). Cases:

    idle               the service started, nothing sent
    image bomb         a 3.6 MB PNG declaring 25000 x 25000 16-bit RGB pixels (7.5 GB decoded), uploaded
    chunked body       a 500 MB chunked POST /api/v1/results, with no token and with an edge token
    ingest             8 clients x batches of 50, --results results
    200 streams        --streams live-stream clients reading while the same ingest runs
    200 stalled        --streams live-stream clients that never read (tiny receive windows) while it runs

Writes benchmarks/results/service_memory.json; prints a table for RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from ingest_benchmark import PG, StreamClients, _payloads, run_load  # noqa: E402
from line_support import ServiceProcess  # noqa: E402

LIMIT_MB = 300


class PeakRss:
    """The peak resident memory of one process over a stretch of time."""

    def __init__(self, pid: int):
        self.pid = pid
        self.kernel = False
        self._stop = threading.Event()
        self._peak = 0
        self._thread: threading.Thread | None = None

    def _field(self, name: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no {name} in /proc/{self.pid}/status")

    def _reset(self) -> bool:
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self._peak = max(self._peak, self._field("VmRSS"))

    def __enter__(self) -> PeakRss:
        if self._reset():
            self.kernel = True
        else:
            self._peak = self._field("VmRSS")
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread:
            self._stop.set()
            self._thread.join()
        else:
            self._peak = self._field("VmHWM")

    @property
    def mb(self) -> float:
        return self._peak / 1e6


def png_bomb(width: int = 25000, height: int = 25000, compressed_mb: float = 3.6) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` 16-bit RGB, with ``compressed_mb`` of deflated zero rows
    (a valid start of its pixel data: a decoder that trusts the header allocates the whole image)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + width * 6)
    z = zlib.compressobj(9)
    parts = []
    size = 0
    while size < compressed_mb * 1e6:
        block = z.compress(row * 64)
        parts.append(block)
        size += len(block)
    parts.append(z.flush(zlib.Z_SYNC_FLUSH))
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def _chunked_500mb() -> Iterator[bytes]:
    block = b"[" + b"0," * (512 * 1024 - 1)
    for _ in range(500):
        yield block


def case_image_bomb(server: ServiceProcess) -> str:
    payload = json.loads(_payloads(1, 1)[0])
    rid = payload["results"][0]["inspection_id"]
    edge = {"Authorization": f"Bearer {server.edge}"}
    assert httpx.post(f"{server.url}/api/v1/results", json=payload, headers=edge).status_code == 200
    bomb = png_bomb()
    res = httpx.put(f"{server.url}/api/v1/results/{rid}/images/original", content=bomb, timeout=120,
                    headers={**edge, "Content-Type": "image/png"})
    return f"{len(bomb) / 1e6:.1f} MB PNG: {res.status_code} {res.json().get('error', '')}"


def case_chunked(server: ServiceProcess) -> str:
    answers = []
    for headers in ({}, {"Authorization": f"Bearer {server.edge}"}):
        try:
            res = httpx.post(f"{server.url}/api/v1/results", content=_chunked_500mb(), timeout=120,
                             headers={**headers, "Content-Type": "application/json"})
            answers.append(str(res.status_code))
        except httpx.HTTPError as exc:  # the service closes the connection after its 413
            answers.append(type(exc).__name__)
    return f"no token: {answers[0]}, edge token: {answers[1]}"


def case_ingest(server: ServiceProcess, total: int) -> str:
    r = run_load(server.port, server.edge, _payloads(total, 50), 8)
    return f"{r['results']} results, {r['errors']} errors, {r['results_per_s']:.0f}/s"


def case_streams(server: ServiceProcess, total: int, streams: int) -> str:
    with StreamClients(server.port, server.reader, streams) as live:
        r = run_load(server.port, server.edge, _payloads(total, 50), 8)
        deadline = time.monotonic() + 30
        while min(live.events) < total and time.monotonic() < deadline:
            time.sleep(0.1)
        return (f"{r['results']} results, {r['errors']} errors; events per client "
                f"{min(live.events)}-{max(live.events)}, dropped {live.dropped}")


def case_stalled(server: ServiceProcess, total: int, streams: int) -> str:
    socks = []
    for _ in range(streams):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", server.port))
        s.sendall(f"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {server.reader}"
                  "\r\n\r\n".encode())
        socks.append(s)
    try:
        time.sleep(1)
        r = run_load(server.port, server.edge, _payloads(total, 50), 8)
        return f"{r['results']} results, {r['errors']} errors, {r['results_per_s']:.0f}/s with {streams} stalled"
    finally:
        for s in socks:
            s.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--streams", type=int, default=200)
    ap.add_argument("--results", type=int, default=10000)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        schema = None
        url = f"sqlite:///{tmp}/memory.db"
        if args.db == "postgresql":
            import psycopg

            schema = "mem_" + uuid.uuid4().hex[:8]
            with psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            url = f"{PG}?options=-csearch_path%3D{schema}"
        server = ServiceProcess(Path(tmp), url)
        server.start()
        assert server.proc is not None
        cases: list[tuple[str, Callable[[], str]]] = [
            ("idle", lambda: "started, nothing sent"),
            ("image bomb", lambda: case_image_bomb(server)),
            ("chunked 500 MB body", lambda: case_chunked(server)),
            ("ingest", lambda: case_ingest(server, args.results)),
            (f"{args.streams} streams + ingest", lambda: case_streams(server, args.results, args.streams)),
            (f"{args.streams} stalled streams + ingest", lambda: case_stalled(server, args.results, args.streams)),
        ]
        try:
            for name, run in cases:
                with PeakRss(server.proc.pid) as peak:
                    what = run()
                    time.sleep(0.5)
                rows.append({"case": name, "peak_mb": round(peak.mb, 1), "what": what,
                             "method": "VmHWM after a reset" if peak.kernel else "VmRSS sampled every 5 ms"})
                print(f"{name:32} peak {peak.mb:7.1f} MB  {what}", flush=True)
            alive = httpx.get(f"{server.url}/healthz", timeout=10).status_code
        finally:
            server.stop()
            if schema:
                with psycopg.connect(PG, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "db": args.db,
              "load_average": os.getloadavg(), "limit_mb": LIMIT_MB, "healthz_after": alive, "rows": rows}
    out = HERE / "results" / "service_memory.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print("\n| case | peak RSS MB | what happened |\n|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['peak_mb']:.0f} | {r['what']} |")
    worst = max(r["peak_mb"] for r in rows)
    print(f"\nworst {worst:.0f} MB (limit {LIMIT_MB}): {'met' if worst < LIMIT_MB else 'NOT met'}; "
          f"/healthz after: {alive}; measured by {rows[0]['method']}; written {out}")


if __name__ == "__main__":
    main()
