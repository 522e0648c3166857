"""Where a trigger's time goes: timestamps at each hand-off inside a triggered station, per trigger.

    python benchmarks/trigger_profile.py [--protocol modbus|opcua] [--count 200] [--rate 10] [--fps 100]
                                         [--software-trigger]

The station (the line runner in trigger mode, Modbus TCP or OPC UA with Basic256Sha256 SignAndEncrypt and a
user, the simulated flange camera, the shipped model) runs in this process with its hand-offs wrapped to take
a timestamp; the simulated PLC (`inspection plc-sim`) runs in its own process and reports each trigger's
trigger -> Result Ready latency. Segments:

    received    the PLC's trigger taken by the protocol server (core.trigger called)
    worker      the handshake's worker thread starts the inspection
    frame       the freshest frame after the trigger is in hand (the frame wait)
    model       decoded and inspected (the model)
    queued      the publish thread picks the result up
    committed   the record is durable in the outbox (the images are written after Result Ready)
    answered    the result is in the handshake's buffer (Result Ready from now on)
    visible     Modbus: the first read that shows Result Ready with this sequence number; OPC UA: the
                server's variables show it (written, the data-change notification sent)

Times are monotonic (CLOCK_MONOTONIC is shared by the two processes).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

from line_support import CLI  # noqa: E402
from service_support import free_port  # noqa: E402
from trigger_support import TriggeredRunner, trigger_config  # noqa: E402

from inspection.line.assignment_models import Judge  # noqa: E402
from inspection.line.trigger_publish import TriggeredPublishStage  # noqa: E402
from inspection.plant.modbus import ModbusStation  # noqa: E402
from inspection.plant.opcua import OpcUaStation  # noqa: E402

USER, PASSWORD, PASSWORD_ENV = "bench-plc", "bench-password", "INSPECTION_OPCUA_PASSWORD"
SEGMENTS = ("received", "worker", "frame", "model", "queued", "committed", "answered", "visible")
stamps: dict[int, dict[str, float]] = defaultdict(dict)
current = threading.local()
verdicts: dict[int, str] = {}


def _mark(seq: int | None, what: str) -> None:
    if seq is not None and what not in stamps[seq]:
        stamps[seq][what] = time.monotonic()


def instrument(runner) -> None:
    """Wrap the hand-offs of a started triggered runner."""
    mode = runner.trigger_mode
    core = mode.plant.core
    trigger, inspect = core.trigger, core._inspect

    def timed_trigger(part_id: str = ""):
        t = time.monotonic()
        answer = trigger(part_id)
        stamps[answer.sequence]["received"] = t
        return answer

    def timed_inspect(trig):
        current.seq = trig.sequence
        _mark(trig.sequence, "worker")
        return inspect(trig)

    core.trigger, core._inspect = timed_trigger, timed_inspect
    frames = mode.frames
    take_after = frames.take_after

    def timed_take(when, timeout):
        frame = take_after(when, timeout)
        _mark(getattr(current, "seq", None), "frame")
        return frame

    frames.take_after = timed_take
    judge_inspect = Judge.inspect

    def timed_judge(self, *args, **kwargs):
        out = judge_inspect(self, *args, **kwargs)
        _mark(getattr(current, "seq", None), "model")
        return out

    Judge.inspect = timed_judge  # type: ignore[method-assign]

    def on_change() -> None:
        snap = core.snapshot()
        if snap.last is not None:
            _mark(snap.last.sequence, "answered")

    core.subscribe(on_change)


def _wrap_publish_and_modbus() -> None:
    commit = TriggeredPublishStage._commit

    def timed_commit(self, outbox, item, result, image, **kwargs):
        seq = item.trigger.sequence if getattr(item, "trigger", None) else None
        _mark(seq, "queued")
        if seq is not None:
            verdicts[seq] = result.verdict
        out = commit(self, outbox, item, result, image, **kwargs)
        _mark(seq, "committed")
        return out

    TriggeredPublishStage._commit = timed_commit  # type: ignore[method-assign]
    refresh = ModbusStation._refresh

    def timed_refresh(self, registers, start):
        refresh(self, registers, start)
        snap = self.core.snapshot()
        if snap.presented is not None:
            _mark(snap.presented.sequence, "visible")

    ModbusStation._refresh = timed_refresh  # type: ignore[method-assign]
    refresh_ua = OpcUaStation._refresh

    async def timed_refresh_ua(self):
        await refresh_ua(self)
        presented = self._shown.get("ResultManagement.Result.SequenceNumber")
        if self._shown.get("ResultManagement.Result.ResultReady") and presented:
            _mark(presented, "visible")

    OpcUaStation._refresh = timed_refresh_ua  # type: ignore[method-assign]


def _stats(values: list[float]) -> str:
    a = np.array(values)
    return f"p50 {np.percentile(a, 50):6.2f}  p90 {np.percentile(a, 90):6.2f}  p99 {np.percentile(a, 99):6.2f}  " \
           f"max {a.max():6.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--protocol", choices=["modbus", "opcua"], default="modbus")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--fps", type=float, default=100.0)
    ap.add_argument("--software-trigger", action="store_true", help="the camera grabs one frame per trigger")
    args = ap.parse_args()
    _wrap_publish_and_modbus()
    with tempfile.TemporaryDirectory() as tmp:
        source = {"kind": "simulated", "rate": args.fps, "defect_rate": 0.2}
        if args.software_trigger:
            source["trigger"] = "software"
        plant: dict = {}
        if args.protocol == "opcua":
            os.environ[PASSWORD_ENV] = PASSWORD
            plant = {"opcua": {"enabled": True, "port": free_port(), "cert_dir": str(Path(tmp) / "pki"),
                               "users": [{"name": USER, "password_env": PASSWORD_ENV}]}}
        cfg = trigger_config(Path(tmp), plant=plant, source=source)
        report = Path(tmp) / "plc.json"
        port = cfg.plant.opcua.port if args.protocol == "opcua" else cfg.plant.modbus.port
        user = ["--user", USER, "--cert-dir", str(Path(tmp) / "plc-pki")] if args.protocol == "opcua" else []
        with TriggeredRunner(cfg) as runner:
            instrument(runner)
            load = os.getloadavg()
            subprocess.run([*CLI, "plc-sim", "--protocol", args.protocol, "--port", str(port), *user,
                            "--rate", str(args.rate), "--count", str(args.count), "--no-buffer-check",
                            "--report", str(report)], check=True, stdout=subprocess.DEVNULL)
        client = json.loads(report.read_text())["latencies_ms"]
    seqs = sorted(s for s in stamps if all(k in stamps[s] for k in SEGMENTS))
    print(f"{args.protocol}: {len(seqs)} of {len(client)} triggers fully stamped; camera {args.fps:g} frames/s"
          f"{' (software trigger)' if args.software_trigger else ''}, {args.rate:g} parts/s; load average {load}")
    for a, b in itertools.pairwise(SEGMENTS):
        print(f"  {a:>9} -> {b:<9} {_stats([(stamps[s][b] - stamps[s][a]) * 1e3 for s in seqs])} ms")
    inside = [(stamps[s]["visible"] - stamps[s]["received"]) * 1e3 for s in seqs]
    total = [client[s - 1] for s in seqs if s - 1 < len(client)]
    print(f"  {'received':>9} -> {'visible':<9} {_stats(inside)} ms  (inside the station)")
    for verdict in ("PASS", "FAIL"):
        some = [(stamps[s]["visible"] - stamps[s]["received"]) * 1e3 for s in seqs if verdicts.get(s) == verdict]
        if some:
            print(f"  {'':>9}    {verdict:<9} {_stats(some)} ms  ({len(some)} parts)")
    print(f"  {'PLC':>9} total     {_stats(total)} ms  (trigger write to Result Ready read, plc-sim)")
    print(f"  {'PLC':>9} overhead  {_stats([t - i for t, i in zip(total, inside, strict=False)])} ms  "
          f"(the {args.protocol} round trips and polling or notification around it)")


if __name__ == "__main__":
    main()
