"""End-to-end latency of the line runner: frame captured -> result committed in the outbox.

    python benchmarks/line_latency.py [--rate 20] [--seconds 30] [--repeats 3]

The simulated line at a set part rate with the shipped demo model (1 inference thread), the runner's real
stages (capture queue, inference, publish with overlay and local images for FAILs, durable outbox commit).
Two set-ups, run one after the other in the same run: outbox only, and with delivery running (a results
service in its own process and the local Mosquitto), since the forwarders share the 2 cores. Each figure
is the median over repeats of that repeat's percentile; the first 2 s of each run (warm-up) are excluded.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

from line_support import ServiceProcess, write_config  # noqa: E402

from inspection.line.config import load_config  # noqa: E402
from inspection.line.runner import LineRunner  # noqa: E402


def one_run(rate: float, seconds: float, deliver: bool, workdir: Path) -> dict:
    service = None
    extra = {}
    if deliver:
        service = ServiceProcess(workdir)
        service.start()
        extra = {"service_url": service.url, "mqtt_host": "127.0.0.1"}
    cfg_path = write_config(workdir / "station.toml", f'kind = "simulated"\nrate = {rate}\ndefect_rate = 0.1', **extra)
    if service:
        cfg_path.write_text(cfg_path.read_text().replace(f'url = "{service.url}"',
                                                         f'url = "{service.url}"\ntoken = "{service.edge}"'))
    runner = LineRunner(load_config(cfg_path), flush_timeout=20)
    runner.start()
    while runner.source_state != "running":
        time.sleep(0.05)
    time.sleep(2)
    skip = len(runner.latencies)
    time.sleep(seconds)
    lat = np.array(runner.latencies[skip:]) * 1e3
    st = runner.status()
    runner.stop()
    if service:
        service.stop()
    return {"count": len(lat), "p50_ms": float(np.percentile(lat, 50)), "p90_ms": float(np.percentile(lat, 90)),
            "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max()), "dropped": st["source"]["dropped"],
            "achieved_rate": len(lat) / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    mqtt_up = socket.socket().connect_ex(("127.0.0.1", 1883)) == 0
    rows = []
    for deliver in (False, True):
        if deliver and not mqtt_up:
            print("Mosquitto not running: skipping the delivery set-up", file=sys.stderr)
            continue
        runs = []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                runs.append(one_run(args.rate, args.seconds, deliver, Path(tmp)))
                print(deliver, runs[-1], file=sys.stderr)
        rows.append({"setup": "with HTTP + MQTT delivery" if deliver else "outbox only", "rate": args.rate,
                     "runs": runs} | {k: statistics.median(r[k] for r in runs)
                                      for k in ("count", "p50_ms", "p90_ms", "p99_ms", "max_ms", "dropped",
                                                "achieved_rate")})
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "line_latency.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                                       "rows": rows}, indent=2) + "\n")
    print("| set-up | part rate /s | results | p50 ms | p90 ms | p99 ms | max ms | dropped |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['setup']} | {r['rate']:g} | {r['count']:.0f} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['max_ms']:.1f} | {r['dropped']:.0f} |")


if __name__ == "__main__":
    main()
