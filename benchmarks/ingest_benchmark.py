"""Ingest load benchmark of the results service: N concurrent clients posting batches of results.

    python benchmarks/ingest_benchmark.py                  # SQLite and PostgreSQL (127.0.0.1:5432/test)
    python benchmarks/ingest_benchmark.py --db sqlite --results 20000
    python benchmarks/ingest_benchmark.py --stream-clients 0,200   # the same load with live-stream clients open
    python benchmarks/ingest_benchmark.py --db postgresql --stream-clients 0,200 --stream-fields full,slim \
        --repeats 5                                            # the streams' cost, both event forms, interleaved

Starts `inspection serve` as a separate process on a loopback port with a fresh database (a new schema on
PostgreSQL), registers a station, creates an edge token, then runs the clients (threads with keep-alive
httpx clients, payloads serialised in advance) and reports sustained results/s and per-request latency.
Every run is repeated; the table gives the median run. All traffic stays on 127.0.0.1. With
``--stream-clients``, that many Server-Sent-Events clients (raw sockets on one asyncio thread) are connected
before the load starts (in a process of their own, asking for ``--stream-fields``); the table then says how
many events each got and how many were dropped. The variants run interleaved (each once per round, for
``--repeats`` rounds), so that a shared machine's changing load hits them alike; each row carries the load
averages at the start of its runs, the service's CPU seconds (of them system time) and the load generator's
(the stream readers' apart). ``--profile-dir`` runs the service under cProfile, timed by its event-loop
thread's CPU clock, one ``.prof`` per run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from multiprocessing.connection import Connection
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
        # `event: dropped` ends a stream (only its data line and the chunked terminator follow it), so it is
        # looked for in the last bytes only: one scan of each read, not two
        self.dropped = self.dropped or int(b"event: dropped" in (self.tail + data[-128:]))
        self.tail = data[-n:]
        if not self.announced and b": connected" in data:
            self.announced = True
            self.connected.release()


class _LocalStreamClients:
    """``n`` live-stream clients on one asyncio thread, counting the result events each receives."""

    def __init__(self, port: int, token: str, n: int, fields: str = "full"):
        self.port, self.token, self.n, self.fields = port, token, n, fields
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
        request = (f"GET /api/v1/stream?fields={self.fields} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   f"Authorization: Bearer {self.token}\r\n\r\n").encode()
        for _ in range(self.n):
            client = _CountingStream(request, self.connected)
            await self.loop.create_connection(lambda c=client: c, "127.0.0.1", self.port)
            self.clients.append(client)

    def __enter__(self) -> _LocalStreamClients:
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


def _stream_clients_process(conn: Connection, port: int, token: str, n: int, fields: str) -> None:
    """The child process of :class:`StreamClients`: answers "counts" and "close" on ``conn``."""
    with _LocalStreamClients(port, token, n, fields) as live:
        conn.send("connected")
        while conn.recv() == "counts":
            conn.send((live.events, live.dropped))
    conn.send("closed")


class StreamClients:
    """``n`` live-stream clients, counting the result events each receives, in a process of their own: readers
    on other machines would not take the ingest clients' GIL (the CPU is still shared: see ``pid``)."""

    def __init__(self, port: int, token: str, n: int, fields: str = "full"):
        self._conn, child = multiprocessing.get_context("spawn").Pipe()
        self._proc = multiprocessing.get_context("spawn").Process(
            target=_stream_clients_process, args=(child, port, token, n, fields), daemon=True)

    @property
    def pid(self) -> int:
        assert self._proc.pid is not None
        return self._proc.pid

    def _counts(self) -> tuple[list[int], int]:
        self._conn.send("counts")
        return self._conn.recv()

    @property
    def events(self) -> list[int]:
        return self._counts()[0]

    @property
    def dropped(self) -> int:
        return self._counts()[1]

    def __enter__(self) -> StreamClients:
        self._proc.start()
        if not self._conn.poll(120) or self._conn.recv() != "connected":
            self._proc.kill()
            raise RuntimeError("stream clients did not connect")
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.send("close")
        if self._conn.poll(60):
            self._conn.recv()
        self._proc.join(timeout=30)


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _cpu_used(server_pid: int, before: tuple[tuple[float, float], tuple[float, float]]) -> dict:
    server, load = cpu_times(server_pid), cpu_times(os.getpid())
    return {"server_cpu_s": sum(server) - sum(before[0]), "server_sys_s": server[1] - before[0][1],
            "load_cpu_s": sum(load) - sum(before[1])}


def _load_with_streams(server: ServiceProcess, batch: int, clients: int, total: int, streams: int,
                       fields: str = "full") -> dict:
    warm = _payloads(batch * clients, batch)
    run_load(server.port, server.edge, warm, clients)  # warm-up: connections, caches
    payloads = _payloads(total, batch)
    assert server.proc is not None
    cpu_before = cpu_times(server.proc.pid), cpu_times(os.getpid())
    if not streams:
        result = run_load(server.port, server.edge, payloads, clients)
        result.update(_cpu_used(server.proc.pid, cpu_before))
        return result
    with StreamClients(server.port, server.reader, streams, fields) as live:
        cpu_before = cpu_times(server.proc.pid), cpu_times(os.getpid())
        readers_before = sum(cpu_times(live.pid))
        result = run_load(server.port, server.edge, payloads, clients)
        result.update(_cpu_used(server.proc.pid, cpu_before), stream_cpu_s=sum(cpu_times(live.pid)) - readers_before)
        deadline = time.monotonic() + 30  # let the streams catch up with the last events
        while min(events := live.events) < total and time.monotonic() < deadline and not live.dropped:
            time.sleep(0.1)
        dropped = live.dropped
    result.update(stream_clients=streams, stream_fields=fields, events_min=min(events), events_max=max(events),
                  clients_with_every_event=sum(e >= total for e in events), stream_dropped=dropped)
    return result


# `inspection serve` under cProfile timed by the thread's CPU clock, so that waiting for a core on a loaded
# machine is not counted; only the event loop's thread is profiled (ingest's database work runs in others)
PROFILED_SERVE = """
import cProfile, runpy, sys, time
out = sys.argv[1]
sys.argv = ["inspection", *sys.argv[2:]]
profile = cProfile.Profile(time.thread_time)
try:
    profile.runcall(runpy.run_module, "inspection.cli", run_name="__main__")
except (SystemExit, KeyboardInterrupt):
    pass
finally:
    profile.dump_stats(out)
"""


class ProfiledService(ServiceProcess):
    """`inspection serve` under cProfile (the event loop's thread, CPU time), the stats written to ``out`` when
    it stops."""

    def __init__(self, workdir: Path, db_url: str, out: Path):
        super().__init__(workdir, db_url)
        self.out = out

    def _launch(self) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", PROFILED_SERVE, str(self.out), "serve", "--port", str(self.port),
                                 "--image-dir", str(self.images)],
                                env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        """SIGINT, not SIGTERM: uvicorn re-raises the signal it caught once it has shut down, and SIGINT's
        KeyboardInterrupt lets cProfile write its stats where SIGTERM would kill the process first."""
        if self.proc:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=60)
            self.proc = None


Variant = tuple[int, str]  # stream clients, and the form of event they ask for (fields=full|slim)


def variants(counts: list[int], forms: list[str]) -> list[Variant]:
    """Each count of stream clients with each form (no clients: one variant)."""
    return [(n, f) for n in counts for f in (forms if n else forms[:1])]


def run_once(db: str, total: int, batch: int, clients: int, variant: Variant, profile: Path | None = None) -> dict:
    """One run on a fresh database (a new SQLite file, or a new PostgreSQL schema), with the load averages
    before and after beside it."""
    load_before = os.getloadavg()[0]
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
        server = ProfiledService(Path(tmp), url, profile) if profile else ServiceProcess(Path(tmp), url)
        server.start()
        try:
            result = _load_with_streams(server, batch, clients, total, *variant)
        finally:
            server.stop()
            if schema:
                with psycopg.connect(PG, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")
    result.update(load_before=load_before, load_after=os.getloadavg()[0])
    print(db, variant, result, file=sys.stderr)
    return result


def bench(dbs: list[str], total: int, batch: int, clients: int, repeats: int, kinds: list[Variant],
          profile_dir: Path | None = None) -> list[dict]:
    """Every variant once per round, ``repeats`` rounds (interleaved, so that a change in the machine's load
    hits every variant alike); a row per database and variant with its median run."""
    runs: dict[tuple[str, Variant], list[dict]] = {(db, v): [] for db in dbs for v in kinds}
    for round_ in range(repeats):
        for db in dbs:
            for variant in kinds:
                name = f"serve-{db}-{variant[0]}-{variant[1]}-{round_}.prof"
                runs[db, variant].append(run_once(db, total, batch, clients, variant,
                                                  profile_dir / name if profile_dir else None))
    rows = []
    for (db, (streams, fields)), mine in runs.items():
        median = sorted(mine, key=lambda r: r["results_per_s"])[len(mine) // 2]
        rows.append({"db": db, "clients": clients, "batch": batch, "streams": streams,
                     "fields": fields if streams else None, "median": median,
                     "all_results_per_s": [r["results_per_s"] for r in mine],
                     "spread": statistics.pstdev([r["results_per_s"] for r in mine]),
                     "load": [r["load_before"] for r in mine]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--results", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stream-clients", default="0", help="comma-separated counts of live-stream clients")
    parser.add_argument("--stream-fields", default="full",
                        help="comma-separated forms the stream clients ask for (full, slim): each with each count")
    parser.add_argument("--profile-dir", type=Path, help="run the service under cProfile; one .prof per run here")
    args = parser.parse_args()
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    streams = [int(n) for n in args.stream_clients.split(",")]
    if args.profile_dir:
        args.profile_dir.mkdir(parents=True, exist_ok=True)
    kinds = variants(streams, args.stream_fields.split(","))
    rows = bench(dbs, args.results, args.batch, args.clients, args.repeats, kinds, args.profile_dir)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "ingest.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                                 "rows": rows}, indent=2) + "\n")
    print("| database | clients × batch | stream clients | fields | results | results/s (median of runs) | all runs "
          "| p50 ms | p99 ms | errors | server CPU s (of it system) | load-generator CPU s (stream readers) "
          "| events per stream client (min–max) | clients with every event | dropped | load average |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        m = r["median"]
        runs = ", ".join(f"{v:.0f}" for v in r["all_results_per_s"])
        live = (f"{m['events_min']}–{m['events_max']} | {m['clients_with_every_event']} | {m['stream_dropped']}"
                if r["streams"] else "– | – | –")
        load = ", ".join(f"{v:.1f}" for v in r["load"])
        readers = f" ({m['stream_cpu_s']:.2f})" if r["streams"] else ""
        print(f"| {r['db']} | {r['clients']} × {r['batch']} | {r['streams']} | {r['fields'] or '–'} | {m['results']} | "
              f"{m['results_per_s']:.0f} | {runs} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} | {m['errors']} | "
              f"{m['server_cpu_s']:.2f} ({m['server_sys_s']:.2f}) | {m['load_cpu_s']:.2f}{readers} | {live} | {load} |")


if __name__ == "__main__":
    main()
