"""Sparkplug B beside the plain JSON topics: the station is one Sparkplug edge node with one device.

Topics ``spBv1.0/<group_id>/<type>/<edge_node_id>[/<device_id>]``; payloads are Sparkplug B protobuf
(:mod:`inspection.line.sparkplug_pb`). On every connect: subscribe to NCMD, NBIRTH (seq 0, ``bdSeq``,
``Node Control/Rebirth``), then DBIRTH with every device metric (:data:`DEVICE_METRICS`); a DDATA with the
result's metrics on each committed result (and with ``State`` when the station's state changes); the Last
Will is NDEATH carrying the session's ``bdSeq`` (persisted beside the outbox and incremented on every new
session), also published on a clean stop. An NCMD ``Node Control/Rebirth`` = true publishes NBIRTH and
DBIRTH again. Sparkplug messages are live (QoS 0, as the specification has them): while the broker is away
nothing is queued for it; the JSON topics remain the durable path.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from inspection.line.config import StationConfig
from inspection.line.sparkplug_pb import DataType, Payload, add_metric, decode, metric_value
from inspection.schema import StationContext

log = logging.getLogger("inspection.line.sparkplug")
NAMESPACE = "spBv1.0"
REBIRTH = "Node Control/Rebirth"
DEVICE_METRICS: dict[str, DataType] = {
    "Inspection/Verdict": DataType.String,  # PASS, FAIL, or ERROR for a trigger answered with an error result
    "Inspection/Score": DataType.Double,
    "Inspection/Threshold": DataType.Double,
    "Inspection/Part Id": DataType.String,
    "Inspection/Trigger Sequence": DataType.UInt64,
    "Inspection/Recipe": DataType.String,
    "Inspection/Model Version": DataType.String,
    "Inspection/Error": DataType.String,
    "Counters/Pass": DataType.UInt64,
    "Counters/Fail": DataType.UInt64,
    "Counters/Errors": DataType.UInt64,
    "State": DataType.String,
}


@dataclass(frozen=True)
class SparkplugIds:
    group_id: str
    edge_node_id: str
    device_id: str

    def topic(self, kind: str, device: bool = False) -> str:
        base = f"{NAMESPACE}/{self.group_id}/{kind}/{self.edge_node_id}"
        return f"{base}/{self.device_id}" if device else base


def now_ms() -> int:
    return int(time.time() * 1000)


class BdSeq:
    """The birth/death sequence number (0..255), kept in a file so that a restart starts a new one."""

    def __init__(self, path: Path):
        self.path = path
        try:
            last = int(path.read_text().strip())
        except (OSError, ValueError):
            last = -1
        self.value = (last + 1) % 256
        self._save()

    def next(self) -> int:
        self.value = (self.value + 1) % 256
        self._save()
        return self.value

    def _save(self) -> None:
        try:
            self.path.write_text(f"{self.value}\n")
        except OSError as exc:  # not fatal: a host application sees a repeated bdSeq after a restart
            log.warning("sparkplug: cannot keep bdSeq in %s: %s", self.path, exc)


class SparkplugNode:
    """One edge node (the station) with one device, on its own MQTT connection."""

    def __init__(self, ids: SparkplugIds, host: str, port: int, bdseq_file: Path, username: str | None = None,
                 password: str | None = None):
        self.ids, self.host, self.port = ids, host, port
        self.bdseq = BdSeq(bdseq_file)
        self._lock = threading.Lock()
        self._seq = 0
        self.values: dict[str, object] = dict.fromkeys(DEVICE_METRICS)
        self.values.update({"Counters/Pass": 0, "Counters/Fail": 0, "Counters/Errors": 0, "State": "online"})
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sparkplug-{ids.group_id}-"
                                  f"{ids.edge_node_id}", protocol=mqtt.MQTTv311, clean_session=True)
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=5)  # type: ignore[arg-type]  # seconds, float ok
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self._stopping = False
        self._set_will()

    # -- life cycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=5)
        self.client.loop_start()

    def stop(self) -> None:
        """A clean stop: DDEATH and NDEATH published (a clean disconnect sends no Will), then disconnect."""
        self._stopping = True
        if self.connected.is_set():
            with self._lock:
                self._publish("DDEATH", [], device=True)
            self.client.publish(self.ids.topic("NDEATH"), self._death(), qos=1).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()

    def _death(self) -> bytes:
        p = Payload(timestamp=now_ms())
        add_metric(p, "bdSeq", DataType.UInt64, self.bdseq.value, now_ms())
        return p.SerializeToString()

    def _set_will(self) -> None:
        self.client.will_set(self.ids.topic("NDEATH"), self._death(), qos=1, retain=False)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        if reason_code.is_failure:
            return
        client.subscribe(self.ids.topic("NCMD"), qos=1)
        self.connected.set()
        self.birth()

    def _on_disconnect(self, *_args: Any) -> None:
        self.connected.clear()
        if self._stopping:
            return
        self.bdseq.next()  # the next session is a new one: its Will and NBIRTH carry the next bdSeq
        self._set_will()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            payload = decode(bytes(msg.payload))
        except Exception as exc:
            log.warning("sparkplug: NCMD on %s is not a Sparkplug B payload: %s", msg.topic, exc)
            return
        for m in payload.metrics:
            if m.name == REBIRTH and metric_value(m) is True:
                log.info("sparkplug: rebirth requested")
                self.birth()
            else:
                log.warning("sparkplug: NCMD metric %r not supported (only %r)", m.name, REBIRTH)

    # -- messages ---------------------------------------------------------------------------------------
    def _publish(self, kind: str, metrics: list[tuple[str, DataType, object]], device: bool) -> None:
        """Under the lock: one payload with the next seq (NBIRTH resets it to 0)."""
        if kind == "NBIRTH":
            self._seq = 0
        ts = now_ms()
        p = Payload(timestamp=ts, seq=self._seq)
        self._seq = (self._seq + 1) % 256
        for name, datatype, value in metrics:
            add_metric(p, name, datatype, value, ts)
        self.client.publish(self.ids.topic(kind, device), p.SerializeToString(), qos=0)

    def birth(self) -> None:
        """NBIRTH then DBIRTH with every metric's current value."""
        with self._lock:
            self._publish("NBIRTH", [("bdSeq", DataType.UInt64, self.bdseq.value),
                                     (REBIRTH, DataType.Boolean, False)], device=False)
            self._publish("DBIRTH", [(n, t, self.values[n]) for n, t in DEVICE_METRICS.items()], device=True)

    def _data(self, changed: dict[str, object]) -> None:
        with self._lock:
            self.values.update(changed)
            if self.connected.is_set():
                self._publish("DDATA", [(n, DEVICE_METRICS[n], v) for n, v in changed.items()], device=True)

    def on_record(self, record: Any) -> None:
        """A result was committed (an InspectionResult, or a trigger error record): DDATA."""
        verdict = getattr(record, "verdict", None) or "ERROR"
        counter = {"PASS": "Counters/Pass", "FAIL": "Counters/Fail"}.get(verdict, "Counters/Errors")
        model = getattr(record, "model", None)
        self._data({"Inspection/Verdict": verdict, "Inspection/Score": getattr(record, "score", None),
                    "Inspection/Threshold": getattr(record, "threshold", None),
                    "Inspection/Part Id": record.part_id, "Inspection/Trigger Sequence": record.trigger_sequence,
                    "Inspection/Recipe": record.recipe,
                    "Inspection/Model Version": f"{model.name} {model.version}" if model else None,
                    "Inspection/Error": getattr(record, "message", None),
                    counter: int(self.values[counter] or 0) + 1})  # type: ignore[call-overload]

    def set_state(self, state: str) -> None:
        if state != self.values["State"]:
            self._data({"State": state})


def make_sparkplug(cfg: StationConfig, station: StationContext) -> SparkplugNode | None:
    """The node the config asks for (``[mqtt.sparkplug] enabled``), or None."""
    sp = cfg.mqtt.sparkplug
    if not sp.enabled or not cfg.mqtt.host:
        return None
    ids = SparkplugIds(sp.group_id or station.site, sp.edge_node_id or f"{station.area}-{station.line}-{station.cell}",
                       sp.device_id or station.station)
    bdseq_file = Path(str(cfg.outbox) + ".sparkplug-bdseq")
    return SparkplugNode(ids, cfg.mqtt.host, cfg.mqtt.port, bdseq_file, cfg.mqtt.username, cfg.mqtt.secret())
