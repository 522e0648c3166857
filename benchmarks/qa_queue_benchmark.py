"""Review-queue load benchmark on PostgreSQL: 100,000 stored results, the QA page in headless Chromium.

    python benchmarks/qa_queue_benchmark.py                 # 100,000 results, PostgreSQL 127.0.0.1:5432/test
    python benchmarks/qa_queue_benchmark.py --results 20000 --repeats 5

Fills a fresh schema (dropped afterwards) with results spread over 30 days on 20 stations (5 % FAIL, a
fifth of the FAILs reviewed, part ids P000000...), runs `inspection serve` in its own process on a loopback port
and measures:

- each queue query the page makes (default, today's FAILs, unreviewed FAILs under a line, a part-id prefix,
  a score range, the second page by cursor): server-side time of ``GET /api/v1/qa/queue?limit=50``;
- the page load in Chromium: from navigation start to the first 50 rows drawn (token given in advance);
- the PostgreSQL plan of each query (the index it uses).

Writes benchmarks/results/qa_queue.json. Every request stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))
from line_support import ServiceProcess  # noqa: E402

from edge_service import auth, store  # noqa: E402
from edge_service.database import make_engine, prepare  # noqa: E402
from edge_service.qa_queue import QueueQuery, _conditions  # noqa: E402
from inspection.schema import InspectionResult, ModelInfo, StageTimings, StationContext  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432/test"
CHROMIUM = "/usr/bin/chromium"
STATIONS = [f"plant1/area1/line{li}/cell1/st{s}" for li in range(1, 5) for s in range(1, 6)]


def fill(engine, total: int) -> None:
    now = datetime.now(UTC)
    model = ModelInfo(name="demo", version="1", sha256="0" * 64)
    timings = StageTimings(preprocess_ms=0.1, inference_ms=8.5, postprocess_ms=0.2)
    for start in range(0, total, 1000):
        batch = []
        for i in range(start, min(start + 1000, total)):
            fail = i % 20 == 0
            batch.append(InspectionResult(
                inspection_id=uuid.uuid4(), station=StationContext.from_path(STATIONS[(i // 3) % len(STATIONS)]),
                part_id=f"P{i:06d}", inspected_at=now - timedelta(seconds=(total - i) * 30 * 86400 / total),
                model=model, verdict="FAIL" if fail else "PASS", score=0.6 + (i % 7) / 10 if fail else 0.3,
                threshold=0.5, image_width=256, image_height=256, regions=[], timings=timings))
        store.ingest(engine, batch)
    with engine.begin() as conn:  # a fifth of the FAILs reviewed
        conn.exec_driver_sql("UPDATE results SET review_state = 'confirmed_defect', defect_class = 'crack' "
                             "WHERE verdict = 'FAIL' AND substr(part_id, 6, 1) = '0'")
        conn.exec_driver_sql("ANALYZE results")


def queries(now: datetime) -> dict[str, dict]:
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "default (newest 50)": {},
        "today's FAILs": {"verdict": "FAIL", "since": today.isoformat()},
        "unreviewed FAILs under a line": {"verdict": "FAIL", "review_state": "unreviewed",
                                          "station": "plant1/area1/line2"},
        "part id prefix": {"part_id": "P0421"},
        "score range 0.9-1.0": {"min_score": 0.9, "max_score": 1.0},
        "one station, this week": {"station": STATIONS[7], "since": (now - timedelta(days=7)).isoformat()},
    }


def plan(engine, params: dict) -> str:
    q = QueueQuery(limit=50, **{k: (datetime.fromisoformat(v) if k == "since" else v) for k, v in params.items()})
    from sqlalchemy import select
    from sqlalchemy.dialects import postgresql

    from edge_service.database import results

    stmt = (select(results).where(*_conditions(q)).order_by(results.c.inspected_at.desc(),
                                                            results.c.inspection_id.desc()).limit(51))
    sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT TEXT) " + sql.replace("%", "%%")).all()
    return "\n".join(r[0] for r in rows)


def time_api(url: str, token: str, params: dict, repeats: int) -> dict:
    times = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        client.get("/api/v1/qa/queue", params={**params, "limit": 50}).raise_for_status()  # warm
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = client.get("/api/v1/qa/queue", params={**params, "limit": 50})
            times.append((time.perf_counter() - t0) * 1e3)
            res.raise_for_status()
        second = None
        if res.json()["next_cursor"]:
            t0 = time.perf_counter()
            client.get("/api/v1/qa/queue", params={**params, "limit": 50, "cursor": res.json()["next_cursor"]})
            second = (time.perf_counter() - t0) * 1e3
    return {"p50_ms": statistics.median(times), "max_ms": max(times), "rows": len(res.json()["items"]),
            "second_page_ms": second}


def time_page(url: str, token: str, repeats: int) -> tuple[list[float], list[float]]:
    """Loads of the queue page (to 50 rows drawn) and, as a reference for this machine's state, loads of
    /healthz (a 15-byte JSON answer) in the same browser."""
    from playwright.sync_api import sync_playwright

    loads, reference = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu",
                                                                   "--disable-background-networking"])
        for _ in range(repeats + 1):
            page = browser.new_page()
            page.add_init_script(f"sessionStorage.setItem('inspectionToken', {json.dumps(token)})")
            page.goto(url + "/qa", wait_until="commit")
            page.wait_for_function("document.querySelectorAll('#queue tbody tr').length === 50", timeout=30000)
            loads.append(page.evaluate("performance.now()"))
            if "--verbose" in sys.argv:
                print(page.evaluate("JSON.stringify(performance.getEntriesByType('resource').map(e => "
                                    "[e.name.split('/').slice(3).join('/').slice(0, 40), Math.round(e.startTime), "
                                    "Math.round(e.duration)]))"))
            page.close()
            page = browser.new_page()
            page.goto(url + "/healthz", wait_until="load")
            reference.append(page.evaluate("performance.now()"))
            page.close()
        browser.close()
    return loads[1:], reference[1:]  # the first warms the browser's cache of scripts


def measure(url: str, token: str, engine, args) -> dict:
    report: dict = {"results": args.results, "database": "postgresql", "queries": {}}
    for name, params in queries(datetime.now(UTC)).items():
        timing = time_api(url, token, params, args.repeats)
        explain = plan(engine, params)
        timing["plan"] = explain.splitlines()[:6]
        report["queries"][name] = timing
        print(f"{name:34s} p50 {timing['p50_ms']:7.1f} ms  max {timing['max_ms']:7.1f} ms  "
              f"rows {timing['rows']}  {explain.splitlines()[1].strip()[:70]}", flush=True)
    loads, reference = time_page(url, token, min(args.repeats, 10))
    report["page_load_ms"] = {"median": statistics.median(loads), "max": max(loads), "runs": loads}
    report["reference_healthz_load_ms"] = {"median": statistics.median(reference), "runs": reference}
    print(f"page load (navigation to 50 rows drawn): median {statistics.median(loads):.0f} ms, "
          f"max {max(loads):.0f} ms; reference /healthz load median {statistics.median(reference):.0f} ms",
          flush=True)
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--verbose", action="store_true", help="print each page load's resource timings")
    args = ap.parse_args()
    schema = f"qa_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"{PG}?options=-csearch_path%3D{schema}"
            srv = ServiceProcess(Path(tmp), url)  # migrates the schema; its own process, as in production
            engine = prepare(make_engine(url))
            for path in STATIONS:
                store.add_station(engine, StationContext.from_path(path))
            t0 = time.perf_counter()
            fill(engine, args.results)
            print(f"stored {args.results} results in {time.perf_counter() - t0:.1f} s", flush=True)
            token = auth.create_token(engine, "bench-qa", "qa").token
            srv.start()
            try:
                report = measure(srv.url, token, engine, args)
            finally:
                srv.stop()
                engine.dispose()
        out = HERE / "results" / "qa_queue.json"
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out}")
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
