"""The outbox's disk fills up (a small tmpfs of the test's own): the station stops taking frames (live frames
are dropped and counted), says `error: outbox disk full` in /status, /metrics and its MQTT status, keeps
every committed result, and resumes by itself once there is space again; stopped while full, it exits 3."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest
from line_support import CLI, Mosquitto, line_status, wait_for, write_config
from prometheus_client import generate_latest
from service_support import STATION, free_port

from inspection.line import metrics as m
from inspection.line.config import load_config
from inspection.line.runner import LineRunner


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs mounted for the test (needs root; skipped otherwise), unmounted afterwards."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True,
                         text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for the full-disk test (needs root): {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """A filler file that leaves about ``leave`` bytes free on the disk."""
    st = os.statvfs(disk)
    filler = disk / f"filler-{uuid.uuid4().hex[:6]}"
    filler.write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
    return filler


def _committed(outbox: Path) -> int:
    db = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)
    try:
        return db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    finally:
        db.close()


class StatusListener:
    """Every payload on the station's retained MQTT status topic, in order."""

    def __init__(self, port: int, topic: str):
        import paho.mqtt.client as mqtt

        self.seen: list[bytes] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = lambda _c, _u, msg: self.seen.append(msg.payload)
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_a_full_outbox_disk_pauses_the_line_and_it_resumes_when_space_returns(tmp_path, small_disk):
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    cfg_path = write_config(tmp_path / "s.toml", 'kind = "simulated"\nrate = 20',
                            service_url="http://127.0.0.1:9", mqtt_host="127.0.0.1", mqtt_port=broker.port)
    cfg = load_config(cfg_path)
    cfg.outbox = small_disk / "outbox.db"
    listener = StatusListener(broker.port, f"test/{STATION}/status")
    runner = LineRunner(cfg)
    runner.start()
    try:
        wait_for(lambda: runner.counters.passed + runner.counters.rejected_parts >= 10, 30, "10 results")
        filler = _fill(small_disk, leave=64 * 1024)
        st = wait_for(lambda: (s := runner.status())["state"] == "error" and s, 30, "state error")
        assert st["error"].startswith("outbox disk full"), st
        metrics = generate_latest(m.REGISTRY).decode()
        assert 'line_state{state="error"} 1.0' in metrics and "line_outbox_disk_full 1.0" in metrics
        wait_for(lambda: listener.seen and listener.seen[-1] == b"error: outbox disk full", 10, "MQTT status")
        held = _committed(cfg.outbox)
        dropped = runner.counters.dropped
        wait_for(lambda: runner.counters.dropped >= dropped + 20, 10, "live frames dropped while paused")
        assert _committed(cfg.outbox) == held  # nothing taken while the disk is full
        assert runner.supervisor.threads["publish"].is_alive() and runner.status()["state"] == "error"
        filler.unlink()  # space returns
        wait_for(lambda: runner.status()["state"] == "running", 15, "the line to resume")
        wait_for(lambda: _committed(cfg.outbox) >= held + 20, 20, "results committed again")
        assert runner.status()["error"] is None and "line_outbox_disk_full 0.0" in generate_latest(m.REGISTRY).decode()
        wait_for(lambda: listener.seen[-1] == b"online", 10, "MQTT status online again")
    finally:
        runner.stop()
        listener.stop()
        broker.stop()
    st = runner.status()
    c = runner.counters
    assert st["state"] == "stopped" and c.failed == 0
    assert c.frames == c.passed + c.rejected_parts + c.dropped + c.corrupt
    assert _committed(cfg.outbox) == c.passed + c.rejected_parts  # every committed result kept


def test_stopped_while_the_outbox_disk_is_full_it_exits_non_zero(tmp_path, small_disk):
    port = free_port()
    cfg = write_config(tmp_path / "s.toml", 'kind = "simulated"\nrate = 20', service_url="http://127.0.0.1:9",
                       status_port=port)
    outbox = small_disk / "outbox.db"
    proc = subprocess.Popen([*CLI, "run", "--config", str(cfg), "--outbox", str(outbox)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: (s := line_status(port)) and s["results"]["PASS"] + s["results"]["FAIL"] >= 10, 60,
                 "10 results")
        _fill(small_disk, leave=64 * 1024)
        st = wait_for(lambda: (s := line_status(port)) and s["state"] == "error" and s, 30, "state error")
        assert st["error"].startswith("outbox disk full") and proc.poll() is None  # waits, does not exit
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    assert proc.returncode == 3, out
    assert "outbox disk full at stop" in out
