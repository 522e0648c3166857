"""Sparkplug B against the real Mosquitto (127.0.0.1:1883, a unique group id per test), with a subscriber
that decodes every payload: NBIRTH/DBIRTH with the metrics, DDATA on each triggered result (with its sequence
number), rebirth on an NCMD Node Control/Rebirth, and NDEATH with the session's bdSeq after kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import uuid

import httpx
import paho.mqtt.client as mqtt
import pytest
from line_support import CLI, line_status, wait_for, write_config
from service_support import free_port, need_service

from inspection.line.sparkplug import DEVICE_METRICS, REBIRTH
from inspection.line.sparkplug_pb import DataType, Payload, add_metric, decode, metric_value


class SparkplugSubscriber:
    """Every message under ``spBv1.0/<group>/#``, decoded: (type, seq, {metric name: value})."""

    def __init__(self, group: str):
        self.group, self.messages, self.lock = group, [], threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{group}")
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: self.subscribed.set()

    def _on_message(self, _c, _u, msg):
        kind = msg.topic.split("/")[2]
        p = decode(msg.payload)
        with self.lock:
            values = {m.name: metric_value(m) for m in p.metrics}
            types = {m.name: m.datatype for m in p.metrics}
            self.messages.append((kind, p.seq if p.HasField("seq") else None, values, types))

    def start(self):
        self.client.connect("127.0.0.1", 1883)
        self.client.subscribe(f"spBv1.0/{self.group}/#", qos=1)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def of(self, kind):
        with self.lock:
            return [m for m in self.messages if m[0] == kind]

    def stop(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_sparkplug_birth_data_rebirth_and_death_after_kill_9(tmp_path):
    need_service("Mosquitto", "127.0.0.1", 1883)
    group = f"test-{uuid.uuid4().hex[:10]}"
    status_port = free_port()
    extra = f"""
[mqtt.sparkplug]
enabled = true
group_id = "{group}"
edge_node_id = "node1"
device_id = "cam1"

[plant]
enabled = true
"""
    cfg = write_config(tmp_path / "station.toml", 'kind = "simulated"\nrate = 100', mqtt_host="127.0.0.1",
                       status_port=status_port, extra=extra)
    (tmp_path / "outbox.db.sparkplug-bdseq").write_text("41\n")  # a previous run's session
    sub = SparkplugSubscriber(group)
    sub.start()
    proc = subprocess.Popen([*CLI, "run", "--config", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: ((line_status(status_port) or {}).get("trigger") or {}).get("state") == "Ready", 60,
                 "the station to be Ready")
        nbirth = wait_for(lambda: sub.of("NBIRTH"), 10, "NBIRTH")[0]
        dbirth = wait_for(lambda: sub.of("DBIRTH"), 10, "DBIRTH")[0]
        assert nbirth[1] == 0 and nbirth[2] == {"bdSeq": 42, REBIRTH: False}
        assert nbirth[3] == {"bdSeq": DataType.UInt64, REBIRTH: DataType.Boolean}
        assert set(dbirth[2]) == set(DEVICE_METRICS) and dbirth[1] == 1
        assert dbirth[2]["Counters/Pass"] == 0 and dbirth[2]["Inspection/Verdict"] is None
        with httpx.Client(timeout=20) as client:
            answers = [client.post(f"http://127.0.0.1:{status_port}/trigger", json={"part_id": f"SP-{i}"}).json()
                       for i in range(5)]
        ddata = wait_for(lambda: len(sub.of("DDATA")) >= 5 and sub.of("DDATA"), 10, "five DDATA")
        results = [d[2] for d in ddata if "Inspection/Verdict" in d[2]]
        assert [r["Inspection/Trigger Sequence"] for r in results] == [1, 2, 3, 4, 5]
        assert [r["Inspection/Part Id"] for r in results] == [f"SP-{i}" for i in range(5)]
        assert [r["Inspection/Verdict"] for r in results] == [{"OK": "PASS", "NG": "FAIL"}[a["verdict"]]
                                                               for a in answers]
        assert [r["Inspection/Score"] for r in results] == pytest.approx([a["score"] for a in answers])
        assert [d[1] for d in ddata] == list(range(2, 2 + len(ddata))), "seq goes on from DBIRTH"
        rebirth = Payload(timestamp=1)
        add_metric(rebirth, REBIRTH, DataType.Boolean, True, 1)
        sub.client.publish(f"spBv1.0/{group}/NCMD/node1", rebirth.SerializeToString(), qos=1)
        wait_for(lambda: len(sub.of("NBIRTH")) == 2 and len(sub.of("DBIRTH")) == 2, 10, "a rebirth")
        reborn = sub.of("DBIRTH")[1][2]
        assert sub.of("NBIRTH")[1][1] == 0 and sub.of("NBIRTH")[1][2]["bdSeq"] == 42
        assert reborn["Inspection/Trigger Sequence"] == 5 and reborn["Counters/Pass"] + reborn["Counters/Fail"] == 5
        assert not sub.of("NDEATH")
        os.kill(proc.pid, signal.SIGKILL)
        death = wait_for(lambda: sub.of("NDEATH"), 20, "NDEATH after kill -9")[0]
        assert death[2] == {"bdSeq": 42}, "the Will carries the session's bdSeq"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        sub.stop()
