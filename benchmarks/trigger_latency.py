"""Trigger -> Result Ready latency of a triggered station, over OPC UA and over Modbus TCP.

    python benchmarks/trigger_latency.py [--rates 10,20] [--count 300] [--fps 100] [--camera free|software]

`inspection run` in its own process, in trigger mode ([plant]: Modbus TCP and OPC UA with Basic256Sha256
SignAndEncrypt and a user), the simulated flange camera free-running at --fps frames/s and the shipped
default model (1 inference thread); with ``--camera software`` the simulated camera is software-triggered
instead (it grabs one frame when the trigger asks for it, as a triggered GigE camera does: no frame wait).
The simulated PLC (plc-sim's PlcSimulator) triggers --count parts at each rate over each protocol, checks
every answer and measures from the trigger write/call to Result Ready with that sequence number read back.
Each trigger comes a random 0 to 1/fps s after its slot (--no-jitter: exactly on it): 10 and 20 parts/s are
whole multiples of the 10 ms frame period, so without it a whole run keeps one phase against the camera and
its frame wait is anywhere from 0 to 10 ms for every part, depending on the run (the run-to-run spread).
So each figure includes: the protocol round trips, waiting for the first frame captured after the trigger
(up to 1/fps when free-running), decoding, the model, and the durable outbox commit (a FAIL's images are
written after Result Ready, so not in it). Raw latencies go to benchmarks/results/trigger_latency.json, with
the CPU model, its flags and the load average. The issue's figure (OPC UA and Modbus, 10 and 20 parts/s, the
shipped model, free-running camera at 100 frames/s) is this script without options.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

from line_support import CLI, line_status, wait_for, write_config  # noqa: E402
from service_support import free_port  # noqa: E402

from inspection.model.shipped import default_model_path  # noqa: E402
from inspection.plant.modbus_client import ModbusPlc  # noqa: E402
from inspection.plant.opcua_client import OpcUaPlc  # noqa: E402
from inspection.plant.plcsim import PlcSimulator  # noqa: E402

USER, PASSWORD = "bench-plc", "bench-password"


def cpu_info() -> dict:
    model, flags = platform.processor(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if (line.startswith("model name") and not model) or line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "fma")
    return {"cpu": model, "cores": os.cpu_count(), "flags": [f for f in wanted if f in flags],
            "python": platform.python_version()}


def start_station(workdir: Path, fps: float, camera: str = "free", threads: int = 1,
                  model: Path | None = None) -> tuple[subprocess.Popen, dict]:
    ports = {"opcua": free_port(), "modbus": free_port(), "status": free_port()}
    plant = f"""
[plant]
enabled = true
[plant.modbus]
enabled = true
port = {ports['modbus']}
[plant.opcua]
enabled = true
port = {ports['opcua']}
cert_dir = "{workdir / 'pki'}"
users = [{{ name = "{USER}", password_env = "BENCH_OPCUA_PASSWORD" }}]
"""
    trigger = '\ntrigger = "software"' if camera == "software" else ""
    cfg = write_config(workdir / "station.toml", f'kind = "simulated"\nrate = {fps}\ndefect_rate = 0.2{trigger}',
                       status_port=ports["status"], extra=plant)
    text = cfg.read_text().replace("[model]\n", f"[model]\nthreads = {threads}\n", 1)
    if model is not None:
        text = text.replace(f'path = "{default_model_path()}"', f'path = "{model.resolve()}"', 1)
    cfg.write_text(text)
    # its own station lock folder: a test's station of the same name elsewhere on the box does not block it
    proc = subprocess.Popen([*CLI, "run", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                            env={**os.environ, "BENCH_OPCUA_PASSWORD": PASSWORD,
                                 "INSPECTION_LOCK_DIR": str(workdir / "locks")})
    wait_for(lambda: ((line_status(ports["status"]) or {}).get("trigger") or {}).get("state") == "Ready", 90,
             "the station to be Ready")
    return proc, ports


def measure(protocol: str, ports: dict, workdir: Path, rate: float, count: int, jitter_s: float) -> dict:
    if protocol == "opcua":
        plc = OpcUaPlc(f"opc.tcp://127.0.0.1:{ports['opcua']}/inspection/", USER, PASSWORD,
                       cert_dir=workdir / "client")
    else:
        plc = ModbusPlc("127.0.0.1", ports["modbus"])
    try:
        PlcSimulator(plc).run(count=20, rate=rate, buffer_check=False, prefix="WARM")  # warm-up, not counted
        report = PlcSimulator(plc).run(count=count, rate=rate, buffer_check=False, prefix="B",
                                       jitter_s=min(jitter_s, 0.5 / rate))
    finally:
        plc.close()
    lat = np.array(report.latencies_ms)
    return {"protocol": protocol, "rate": rate, "count": len(lat), "problems": report.problems[:10],
            "late": report.late, "error_results": report.error_results,
            "p50_ms": float(np.percentile(lat, 50)), "p90_ms": float(np.percentile(lat, 90)),
            "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max()), "mean_ms": float(lat.mean()),
            "latencies_ms": [round(x, 3) for x in lat.tolist()]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", default="10,20")
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--fps", type=float, default=100.0, help="simulated camera frames per second")
    ap.add_argument("--camera", choices=["free", "software"], default="free",
                    help="free-running at --fps, or software-triggered (one frame per trigger)")
    ap.add_argument("--threads", type=int, default=1, help="the model's onnxruntime threads ([model] threads)")
    ap.add_argument("--model", type=Path, default=None, help="model file (default: the shipped default model)")
    ap.add_argument("--no-jitter", action="store_true",
                    help="trigger exactly every 1/rate s, as the runs before 2026-12-01 12:30 did (locked to the "
                         "free-running camera's phase: the frame wait depends on the phase a run happens to get)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "trigger_latency.json")
    args = ap.parse_args()
    runs = []
    # each trigger up to one frame period after its slot: the parts' arrival is not locked to the camera's phase
    jitter = 0.0 if args.no_jitter or args.camera == "software" else 1.0 / args.fps
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        proc, ports = start_station(Path(tmp), args.fps, args.camera, args.threads, args.model)
        try:
            for protocol in ("opcua", "modbus"):
                for rate in (float(r) for r in args.rates.split(",")):
                    run = measure(protocol, ports, Path(tmp), rate, args.count, jitter)
                    runs.append(run)
                    print(f"{protocol:6} {rate:4g} parts/s: n={run['count']} p50 {run['p50_ms']:.1f} ms, "
                          f"p90 {run['p90_ms']:.1f}, p99 {run['p99_ms']:.1f}, max {run['max_ms']:.1f}; "
                          f"late {run['late']}, error results {run['error_results']}, problems "
                          f"{len(run['problems'])}", flush=True)
            status = line_status(ports["status"]) or {}
        finally:
            proc.terminate()
            proc.wait(60)
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": cpu_info(),
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "camera": args.camera, "model_threads": args.threads,
              "model": str(args.model or default_model_path()),
              "camera_fps": args.fps if args.camera == "free" else None, "trigger_jitter_s": jitter,
              "station_processing_ms": (status.get("trigger") or {}).get("counters"),
              "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"machine: {report['machine']}; load average before {load_before}, after {report['load_average_after']}")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
