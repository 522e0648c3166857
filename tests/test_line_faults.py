"""Store-and-forward under faults, with the real parts: the results service in its own process, a Mosquitto
broker (the test's own on a free port when it must be stopped; the machine's shared one, under a unique
topic prefix, otherwise), and the runner killed with SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import time

import pytest
from line_support import CLI, Mosquitto, Subscriber, wait_for, write_config
from service_support import STATION, need_service

from inspection.line.config import load_config
from inspection.line.runner import LineRunner


@pytest.mark.slow
def test_service_outage_and_broker_restart_lose_nothing(tmp_path, service_process):
    broker = Mosquitto(tmp_path / "broker")  # the test's own broker: it is stopped and started mid-run
    broker.start()
    service = service_process
    cfg_path = write_config(tmp_path / "station.toml", 'kind = "simulated"\nrate = 22\ndefect_rate = 0.1',
                            service_url=service.url, mqtt_host="127.0.0.1", mqtt_port=broker.port)
    text = cfg_path.read_text().replace(f'url = "{service.url}"', f'url = "{service.url}"\ntoken = "{service.edge}"')
    cfg_path.write_text(text)
    cfg = load_config(cfg_path)
    sub = Subscriber(f"test/{STATION}/inspection/result", client_id=f"fault-test-{os.getpid()}", port=broker.port)
    sub.start()
    runner = LineRunner(cfg, flush_timeout=40)

    def outbox(dest: str) -> int:
        return runner.status()["outbox"][dest]["depth"]

    try:
        runner.start()
        wait_for(lambda: runner.source_state == "running", 30, "the source to run")
        t0 = time.monotonic()
        wait_for(lambda: len(service.ids()) >= 60, 30, "results delivered to the service")
        service.stop()  # the IT side goes away: results pile up in the outbox
        wait_for(lambda: outbox("http") >= 150, 30, "150 results waiting for the service", poll=0.2)
        service.start()
        wait_for(lambda: outbox("http") < 20, 60, "the backlog delivered once the service is back", poll=0.2)
        broker.stop()  # the broker restarts mid-run (gracefully: it keeps the subscriber's session)
        wait_for(lambda: outbox("mqtt") >= 20, 30, "results waiting for the broker", poll=0.2)
        broker.start()
        wait_for(lambda: time.monotonic() - t0 >= 32 and runner.counters.passed + runner.counters.rejected_parts
                 >= 20 * 30 and outbox("mqtt") < 50, 120, "32 s of production and 600 results", poll=0.2)
        produced_for = time.monotonic() - t0
        runner.stop()  # finishes frames in flight, then flushes the outbox
        st = runner.status()
        total = st["results"]["PASS"] + st["results"]["FAIL"]
        assert produced_for >= 30 and total >= 20 * 30, st
        assert st["outbox"]["http"]["depth"] == 0 and st["outbox"]["mqtt"]["depth"] == 0, st
        ids = service.ids()
        assert len(ids) == total and len(set(ids)) == total  # every result, exactly once
        with contextlib.suppress(AssertionError):
            wait_for(lambda: set(ids) <= sub.ids, 20, "the subscriber to have every result", poll=0.2)
        missing = set(ids) - sub.ids
        assert not missing, f"{len(missing)} of {total} results never reached the MQTT subscriber"
    finally:
        sub.stop()
        broker.stop()


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
        wait_for(lambda: len(service.ids()) >= 40, 60, "results delivered to the service", poll=0.2)
        service.stop()  # results pile up in the outbox
        wait_for(lambda: len(_outbox_ids(tmp_path / "outbox.db")[1]) >= 20, 30, "20 results waiting", poll=0.1)
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
    wanted = {f"{prefix}/{STATION}/status", f"{prefix}/{STATION}/inspection/last"}
    with contextlib.suppress(AssertionError):
        wait_for(lambda: wanted <= set(retained), 10, "the retained status and last result")
    held = dict(retained)  # what the broker held; the cleanup below echoes back empty payloads
    for topic in held:  # leave the shared broker clean: an empty retained payload deletes it
        client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()
    assert held.get(f"{prefix}/{STATION}/status") == b"offline"  # said on the way out
    last = json.loads(held[f"{prefix}/{STATION}/inspection/last"])
    assert last["inspection_id"] in ids


def test_mqtt_last_will_says_offline_after_kill_9(tmp_path):
    """Killed with SIGKILL, the runner cannot say goodbye: the broker publishes its Last Will (retained)."""
    import paho.mqtt.client as mqtt

    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    cfg = write_config(tmp_path / "station.toml", 'kind = "simulated"\nrate = 5', mqtt_host="127.0.0.1",
                       mqtt_port=broker.port)
    seen: list[bytes] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, msg: seen.append(msg.payload)
    client.connect("127.0.0.1", broker.port)
    client.subscribe(f"test/{STATION}/status", qos=1)
    client.loop_start()
    runner = subprocess.Popen([*CLI, "run", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: seen and seen[-1] == b"online", 60, "the runner's online status")
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
        wait_for(lambda: seen[-1] == b"offline", 20, "the Last Will")
    finally:
        if runner.poll() is None:
            runner.kill()
        client.loop_stop()
        client.disconnect()
        broker.stop()
    assert seen[-2:] == [b"online", b"offline"]
