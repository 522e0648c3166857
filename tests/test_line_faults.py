"""Store-and-forward under faults, with the real parts: the results service in its own process, the real
Mosquitto broker at 127.0.0.1:1883, and the runner killed with SIGKILL."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time

import pytest
from line_support import CLI, Subscriber, write_config
from service_support import STATION, need_service

from inspection.line.config import load_config
from inspection.line.runner import LineRunner

MOSQUITTO = ["mosquitto", "-d", "-c", "/etc/mosquitto/mosquitto.conf"]


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def restart_mosquitto() -> None:
    """Stop the broker gracefully (it saves its persistent sessions) and start it with the same command."""
    subprocess.run(["pkill", "-TERM", "-x", "mosquitto"], check=False)
    deadline = time.monotonic() + 10
    while _port_open(1883) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the broker is down for a moment
    subprocess.run(MOSQUITTO, check=True)
    while not _port_open(1883) and time.monotonic() < deadline + 10:
        time.sleep(0.05)


@pytest.mark.slow
def test_service_outage_and_broker_restart_lose_nothing(tmp_path, service_process):
    need_service("Mosquitto", "127.0.0.1", 1883)
    if shutil.which("mosquitto") is None:
        pytest.skip("the mosquitto binary is needed to restart the broker")
    service = service_process
    cfg_path = write_config(tmp_path / "station.toml", 'kind = "simulated"\nrate = 22\ndefect_rate = 0.1',
                            service_url=service.url, mqtt_host="127.0.0.1")
    text = cfg_path.read_text().replace(f'url = "{service.url}"', f'url = "{service.url}"\ntoken = "{service.edge}"')
    cfg_path.write_text(text)
    cfg = load_config(cfg_path)
    sub = Subscriber(f"test/{STATION}/inspection/result", client_id=f"fault-test-{os.getpid()}")
    sub.start()
    runner = LineRunner(cfg, flush_timeout=40)
    try:
        runner.start()
        while runner.source_state != "running":
            time.sleep(0.05)
        t0 = time.monotonic()
        time.sleep(6)
        service.stop()  # the IT side goes away for 10 s
        time.sleep(10)
        service.start()
        time.sleep(3)
        restart_mosquitto()  # the broker restarts mid-run
        while time.monotonic() - t0 < 32:
            time.sleep(0.2)
        produced_for = time.monotonic() - t0
        runner.stop()  # finishes frames in flight, then flushes the outbox
        st = runner.status()
    finally:
        if not _port_open(1883):
            subprocess.run(MOSQUITTO, check=False)
    total = st["results"]["PASS"] + st["results"]["FAIL"]
    assert produced_for >= 30 and total >= 20 * 30, st
    assert st["outbox"]["http"]["depth"] == 0 and st["outbox"]["mqtt"]["depth"] == 0, st
    ids = service.ids()
    assert len(ids) == total and len(set(ids)) == total  # every result, exactly once
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not set(ids) <= sub.ids:
        time.sleep(0.2)
    sub.stop()
    missing = set(ids) - sub.ids
    assert not missing, f"{len(missing)} of {total} results never reached the MQTT subscriber"


def _outbox_ids(path) -> tuple[set[str], set[str]]:
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT inspection_id, http_state FROM outbox").fetchall()
    finally:
        db.close()
    return {r[0] for r in rows}, {r[0] for r in rows if r[1] == 0}


@pytest.mark.slow
def test_kill_9_then_restart_loses_and_duplicates_nothing(tmp_path, service_process):
    service = service_process
    cfg = write_config(tmp_path / "station.toml", 'kind = "simulated"\nrate = 20', service_url=service.url)
    env = {**os.environ, "INSPECTION_SERVICE_TOKEN": service.edge}
    runner = subprocess.Popen([*CLI, "run", "--config", str(cfg), "--duration", "120"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(7)
        service.stop()  # results pile up in the outbox
        time.sleep(3)
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
    finally:
        if runner.poll() is None:
            runner.kill()
    committed, pending = _outbox_ids(tmp_path / "outbox.db")
    assert len(pending) >= 20, "the kill should find results waiting in the outbox"
    service.start()
    again = subprocess.run([*CLI, "run", "--config", str(cfg), "--duration", "4", "--flush-timeout", "30"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    ids = service.ids()
    assert len(ids) == len(set(ids)), "a result reached the service twice"
    assert committed <= set(ids), f"{len(committed - set(ids))} committed results were lost"
    _, still_pending = _outbox_ids(tmp_path / "outbox.db")
    assert not still_pending


def test_sigterm_flushes_and_status_and_retained_topics(tmp_path, service_process):
    """SIGTERM: frames in flight finish and the outbox is delivered; the status port answers while running;
    MQTT carries a retained online status and the newest result retained at .../inspection/last."""
    need_service("Mosquitto", "127.0.0.1", 1883)
    import json

    import httpx
    import paho.mqtt.client as mqtt
    from service_support import free_port

    service = service_process
    status_port = free_port()
    prefix = f"sig{os.getpid()}"
    cfg = write_config(tmp_path / "station.toml", 'kind = "simulated"\nrate = 15', service_url=service.url,
                       mqtt_host="127.0.0.1")
    cfg.write_text(cfg.read_text().replace('topic_prefix = "test"', f'topic_prefix = "{prefix}"')
                   .replace("port = 0", f"port = {status_port}"))
    env = {**os.environ, "INSPECTION_SERVICE_TOKEN": service.edge}
    runner = subprocess.Popen([*CLI, "run", "--config", str(cfg)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        status = {}
        while time.monotonic() < deadline:
            try:
                status = httpx.get(f"http://127.0.0.1:{status_port}/status", timeout=1).json()
                if status["results"]["PASS"] + status["results"]["FAIL"] >= 20:
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.3)
        assert status["source"]["state"] == "running" and status["links"]["http"]["state"] == "delivering"
        metrics = httpx.get(f"http://127.0.0.1:{status_port}/metrics").text
        assert "line_capture_to_commit_seconds_bucket" in metrics and 'line_outbox_depth{dest="http"}' in metrics
        runner.send_signal(signal.SIGTERM)
        out, _ = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0, out
    assert "undelivered: http 0, mqtt 0" in out, out
    committed = [int(x) for x in out.split("undelivered")[0].split() if x.isdigit()][:2]
    ids = service.ids()
    assert len(ids) == sum(committed) and len(set(ids)) == len(ids)

    retained: dict[str, bytes] = {}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, msg: retained.__setitem__(msg.topic, msg.payload)
    client.connect("127.0.0.1", 1883)
    client.subscribe(f"{prefix}/{STATION}/#", qos=1)
    client.loop_start()
    time.sleep(1.5)
    held = dict(retained)  # what the broker held; the cleanup below echoes back empty payloads
    for topic in held:  # leave the shared broker clean: an empty retained payload deletes it
        client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()
    assert held.get(f"{prefix}/{STATION}/status") == b"offline"  # said on the way out
    last = json.loads(held[f"{prefix}/{STATION}/inspection/last"])
    assert last["inspection_id"] in ids
