"""Ingest load benchmark of the results service: N concurrent clients posting batches of results.

    python benchmarks/ingest_benchmark.py                  # SQLite and PostgreSQL (127.0.0.1:5432/test)
    python benchmarks/ingest_benchmark.py --db sqlite --results 20000
    python benchmarks/ingest_benchmark.py --stream-clients 0,200   # the same load with live-stream clients open

Starts `inspection serve` as a separate process on a loopback port with a fresh database (a new schema on
PostgreSQL), registers a station, creates an edge token, then runs the clients (threads with keep-alive
httpx clients, payloads serialised in advance) and reports sustained results/s and per-request latency.
Every run is repeated; the table gives the median run. All traffic stays on 127.0.0.1. With
``--stream-clients``, that many Server-Sent-Events clients (raw sockets on one asyncio thread) are connected
before the load starts; the table then says how many events each got and how many were dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))
from line_support import ServiceProcess  # noqa: E402
from service_support import STATION  # noqa: E402

from inspection.schema import InspectionResult, ModelInfo, StageTimings, StationContext  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432/test"


def _payloads(total: int, batch: int) -> list[bytes]:
    station = StationContext.from_path(STATION)
    out = []
    for start in range(0, total, batch):
        rows = [InspectionResult(inspection_id=uuid.uuid4(), station=station, part_id=f"P{start + i}",
                                 inspected_at=datetime.now(UTC), model=ModelInfo(name="demo", version="1",
                                                                                 sha256="0" * 64),
                                 verdict="FAIL" if (start + i) % 20 == 0 else "PASS",
                                 score=0.7 if (start + i) % 20 == 0 else 0.4, threshold=0.5,
                                 image_width=256, image_height=256, regions=[],
                                 timings=StageTimings(preprocess_ms=0.1, inference_ms=8.5, postprocess_ms=0.2))
                .model_dump(mode="json") for i in range(min(batch, total - start))]
        out.append(json.dumps({"results": rows}).encode())
    return out


def run_load(port: int, token: str, payloads: list[bytes], clients: int) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    chunks = [payloads[i::clients] for i in range(clients)]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def client(mine: list[bytes]) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as c:
            for body in mine:
                t = time.perf_counter()
                r = c.post("/api/v1/results", content=body)
                dt = time.perf_counter() - t
                with lock:
                    latencies.append(dt)
                    if r.status_code != 200:
                        errors.append(f"{r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=client, args=(c,)) for c in chunks]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t0
    n = sum(len(json.loads(p)["results"]) for p in payloads)
    lat = np.array(latencies) * 1e3
    return {"results": n, "requests": len(latencies), "seconds": elapsed, "results_per_s": n / elapsed,
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)), "errors": len(errors),
            "first_error": errors[0] if errors else None}


class _CountingStream(asyncio.Protocol):
    """One raw-socket stream client: counts ``event: result`` frames as the bytes arrive (no buffering or
    copying beyond the kernel's: the load generator shares the 2 cores with the service it measures)."""

    PATTERN = b"event: result"

    def __init__(self, request: bytes, connected: threading.Semaphore):
        self.request, self.connected = request, connected
        self.events = self.dropped = 0
        self.tail = b""
        self.announced = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        n = len(self.PATTERN) - 1
        edge = self.tail + data[:n]  # a frame name split across two reads
        self.events += data.count(self.PATTERN) + edge.count(self.PATTERN)
        self.dropped += data.count(b"event: dropped")
        self.tail = data[-n:]
        if not self.announced and b": connected" in data:
            self.announced = True
            self.connected.release()


class StreamClients:
    """``n`` live-stream clients on one asyncio thread, counting the result events each receives."""

    def __init__(self, port: int, token: str, n: int):
        self.port, self.token, self.n = port, token, n
        self.connected = threading.Semaphore(0)
        self.clients: list[_CountingStream] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def events(self) -> list[int]:
        return [c.events for c in self.clients]

    @property
    def dropped(self) -> int:
        return sum(c.dropped for c in self.clients)

    async def _connect(self) -> None:
        request = (f"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.token}"
                   "\r\n\r\n").encode()
        for _ in range(self.n):
            client = _CountingStream(request, self.connected)
            await self.loop.create_connection(lambda c=client: c, "127.0.0.1", self.port)
            self.clients.append(client)

    def __enter__(self) -> StreamClients:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._connect(), self.loop).result(timeout=60)
        for _ in range(self.n):
            if not self.connected.acquire(timeout=60):
                raise RuntimeError("stream clients did not connect")
        return self

    async def _close(self) -> None:
        for client in self.clients:  # the server sees the disconnects and ends the streams
            if client.transport is not None:
                client.transport.abort()
        await asyncio.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load_with_streams(server: ServiceProcess, batch: int, clients: int, total: int, streams: int) -> dict:
    warm = _payloads(batch * clients, batch)
    run_load(server.port, server.edge, warm, clients)  # warm-up: connections, caches
    payloads = _payloads(total, batch)
    assert server.proc is not None
    cpu_before = cpu_seconds(server.proc.pid), cpu_seconds(os.getpid())
    if not streams:
        result = run_load(server.port, server.edge, payloads, clients)
        result.update(server_cpu_s=cpu_seconds(server.proc.pid) - cpu_before[0],
                      load_cpu_s=cpu_seconds(os.getpid()) - cpu_before[1])
        return result
    with StreamClients(server.port, server.reader, streams) as live:
        result = run_load(server.port, server.edge, payloads, clients)
        result.update(server_cpu_s=cpu_seconds(server.proc.pid) - cpu_before[0],
                      load_cpu_s=cpu_seconds(os.getpid()) - cpu_before[1])
        deadline = time.monotonic() + 30  # let the streams catch up with the last events
        while min(live.events) < total and time.monotonic() < deadline and not live.dropped:
            time.sleep(0.1)
    result.update(stream_clients=streams, events_min=min(live.events), events_max=max(live.events),
                  clients_with_every_event=sum(e >= total for e in live.events), stream_dropped=live.dropped)
    return result


def bench(db: str, total: int, batch: int, clients: int, repeats: int, streams: int = 0) -> dict:
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            schema = None
            if db == "sqlite":
                url = f"sqlite:///{tmp}/bench.db"
            else:
                import psycopg

                schema = "bench_" + uuid.uuid4().hex[:8]
                with psycopg.connect(PG, autocommit=True) as conn:
                    conn.execute(f"CREATE SCHEMA {schema}")
                url = f"{PG}?options=-csearch_path%3D{schema}"
            server = ServiceProcess(Path(tmp), url)
            server.start()
            try:
                result = _load_with_streams(server, batch, clients, total, streams)
            finally:
                server.stop()
                if schema:
                    with psycopg.connect(PG, autocommit=True) as conn:
                        conn.execute(f"DROP SCHEMA {schema} CASCADE")
            print(db, result, file=sys.stderr)
            runs.append(result)
    median = sorted(runs, key=lambda r: r["results_per_s"])[len(runs) // 2]
    return {"db": db, "clients": clients, "batch": batch, "streams": streams, "median": median,
            "all_results_per_s": [r["results_per_s"] for r in runs],
            "spread": statistics.pstdev([r["results_per_s"] for r in runs])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--results", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stream-clients", default="0", help="comma-separated counts of live-stream clients")
    args = parser.parse_args()
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    streams = [int(n) for n in args.stream_clients.split(",")]
    rows = [bench(db, args.results, args.batch, args.clients, args.repeats, n) for db in dbs for n in streams]
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "ingest.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                                 "rows": rows}, indent=2) + "\n")
    print("| database | clients × batch | stream clients | results | results/s (median of runs) | all runs | p50 ms "
          "| p99 ms | errors | server CPU s | load-generator CPU s | events per stream client (min–max) "
          "| clients with every event | dropped |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        m = r["median"]
        runs = ", ".join(f"{v:.0f}" for v in r["all_results_per_s"])
        live = (f"{m['events_min']}–{m['events_max']} | {m['clients_with_every_event']} | {m['stream_dropped']}"
                if r["streams"] else "– | – | –")
        print(f"| {r['db']} | {r['clients']} × {r['batch']} | {r['streams']} | {m['results']} | "
              f"{m['results_per_s']:.0f} | {runs} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} | {m['errors']} | "
              f"{m['server_cpu_s']:.1f} | {m['load_cpu_s']:.1f} | {live} |")


if __name__ == "__main__":
    main()
