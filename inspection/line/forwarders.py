"""Delivering the outbox: to the results service over HTTP and to the plant's MQTT broker.

Both run in their own threads, read the outbox in order, and mark entries delivered only once the far side
acknowledged them (HTTP 200 with the service's acknowledgement naming the id as stored or duplicate; MQTT
PUBACK at QoS 1). A result the service refuses with a 4xx is set aside (rejected, kept, re-queueable) so the
queue keeps moving; anything else (5xx, a wrong answer, the link down) is retried with exponential backoff and
full jitter, so results wait in the outbox while a link is down and none is lost. Secrets (token, password)
are never logged.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from pydantic import BaseModel, ConfigDict, ValidationError

from inspection.line.backoff import Backoff
from inspection.line.image_writer import PendingImages
from inspection.line.local_images import heatmap_path
from inspection.line.metrics import DELIVERED, DELIVERY_ERRORS, REJECTED, UNACKNOWLEDGED
from inspection.line.outbox import REJECTED as STATE_REJECTED
from inspection.line.outbox import Outbox
from inspection.schema import StationContext

log = logging.getLogger("inspection.forward")


class Forwarder(threading.Thread):
    dest = ""

    def __init__(self, outbox_path: Path, batch: int, stop: threading.Event):
        super().__init__(name=f"forward-{self.dest}", daemon=True)
        self.outbox_path, self.batch, self.stop_event = outbox_path, batch, stop
        self.backoff = Backoff()
        self.state = "starting"
        self.last_error: str | None = None
        self.wake = threading.Event()
        self.drain_deadline: float | None = None  # set at shutdown: keep delivering until then

    def _stopping(self) -> bool:
        if not self.stop_event.is_set():
            return False
        return self.drain_deadline is None or time.monotonic() > self.drain_deadline

    def run(self) -> None:
        outbox: Outbox | None = None
        try:
            outbox = Outbox(self.outbox_path)
            self.setup()
            self._loop(outbox)
        except Exception as exc:  # the outbox cannot be read: the runner sees this thread end and reports it
            log.exception("%s forwarder stopped", self.dest)
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            try:
                self.teardown()
            except Exception:
                log.exception("%s forwarder: teardown failed", self.dest)
            if outbox is not None:
                outbox.close()
            self.state = "stopped"

    def _loop(self, outbox: Outbox) -> None:
        while not self._stopping():
            entries = outbox.pending(self.dest, self.batch)
            if not entries:
                if self.stop_event.is_set():
                    break  # drained
                self.wake.wait(0.2)
                self.wake.clear()
                continue
            try:
                self.deliver(outbox, entries)
                self.backoff.reset()
                self.state, self.last_error = "delivering", None
            except Exception as exc:  # the link is down or refusing: wait and retry the same entries
                DELIVERY_ERRORS.labels(dest=self.dest).inc()
                self.state, self.last_error = "retrying", str(exc)[:300]
                delay = self.backoff.next()
                log.warning("%s delivery failed (%s); retrying in %.1f s", self.dest, self.last_error, delay)
                if self.stop_event.is_set():  # draining at shutdown: retry soon, within the flush time
                    time.sleep(min(delay, 0.5))
                else:
                    self.stop_event.wait(delay)

    def setup(self) -> None: ...

    def teardown(self) -> None: ...

    def deliver(self, outbox: Outbox, entries: list) -> None:
        raise NotImplementedError


IMAGE_WAIT_S = 30.0  # how long the HTTP forwarder waits for a committed result's images to be written
RETRIED_4XX = frozenset({401, 408, 425, 429})  # the box's credentials or the server's load, not the result


def refused_for_good(status: int) -> bool:
    """A 4xx refuses the result itself (invalid, too big, another station's): retrying cannot help. 401 (the
    token), 408, 425 and 429 (timing, load) and every 5xx are retried with backoff instead."""
    return 400 <= status < 500 and status not in RETRIED_4XX


class IngestAck(BaseModel):
    """The results service's answer to a batch: the ids it stored and the ones it already had."""

    model_config = ConfigDict(strict=True)

    stored: list[str]
    duplicates: list[str]


def acknowledged_ids(res: httpx.Response) -> set[str]:
    """The ids the service's own acknowledgement names; an answer that is not one raises RuntimeError."""
    try:
        ack = IngestAck.model_validate_json(res.content)
    except ValidationError:
        ctype = res.headers.get("content-type", "no content type")
        raise RuntimeError(f"answer 200 ({ctype}) is not the results service's acknowledgement: "
                           f"{res.text[:120]!r}") from None
    return set(ack.stored) | set(ack.duplicates)


class HttpForwarder(Forwarder):
    """Batches to ``POST /api/v1/results``, then the images to ``PUT .../images/{kind}``."""

    dest = "http"

    def __init__(self, outbox_path: Path, url: str, token: str | None, stop: threading.Event, batch: int = 50,
                 timeout: float = 10.0, pending_images: PendingImages | None = None):
        super().__init__(outbox_path, batch, stop)
        self.pending_images = pending_images  # trigger mode: images still being written after the commit
        self.url = url.rstrip("/")
        self.client = httpx.Client(base_url=self.url, timeout=timeout,
                                   headers={"Authorization": f"Bearer {token}"} if token else {})

    def teardown(self) -> None:
        self.client.close()

    def _post(self, entries: list) -> httpx.Response:
        body = '{"results": [' + ",".join(e.record for e in entries) + "]}"
        return self.client.post("/api/v1/results", content=body, headers={"Content-Type": "application/json"})

    def deliver(self, outbox: Outbox, entries: list) -> None:
        res = self._post(entries)
        if refused_for_good(res.status_code):
            if len(entries) > 1:  # something in the batch is refused: one by one, to set only that one aside
                for e in entries:
                    self.deliver(outbox, [e])
                return
            reason = f"{res.status_code}: {res.text[:300]}"
            outbox.mark(self.dest, [entries[0].inspection_id], STATE_REJECTED, reason)
            REJECTED.labels(dest=self.dest).inc()
            log.error("results service refused %s for good (%s); set aside", entries[0].inspection_id, reason)
            return
        if res.status_code != 200:
            raise RuntimeError(f"results service answered {res.status_code}: {res.text[:200]}")
        acked = acknowledged_ids(res)
        done = [e for e in entries if e.inspection_id in acked]
        for e in done:
            self._upload_images(e)
        outbox.mark(self.dest, [e.inspection_id for e in done])
        DELIVERED.labels(dest=self.dest).inc(len(done))
        if len(done) < len(entries):
            UNACKNOWLEDGED.labels(dest=self.dest).inc(len(entries) - len(done))
            raise RuntimeError(f"results service acknowledged {len(done)} of {len(entries)} results; the rest "
                               "is sent again")

    def _upload_images(self, entry) -> None:
        if self.pending_images is not None and not self.pending_images.wait(entry.inspection_id, IMAGE_WAIT_S):
            log.warning("the images of %s were still being written after %g s; uploading what there is",
                        entry.inspection_id, IMAGE_WAIT_S)
        heatmap = str(heatmap_path(entry.original_path)) if entry.original_path else None
        for kind, path in (("original", entry.original_path), ("overlay", entry.overlay_path), ("heatmap", heatmap)):
            if not path:
                continue
            p = Path(path)
            if not p.is_file():
                continue  # removed by local retention or never written (disk full): the result still counts
            ctype = "image/png" if p.suffix == ".png" else "image/jpeg"
            res = self.client.put(f"/api/v1/results/{entry.inspection_id}/images/{kind}", content=p.read_bytes(),
                                  headers={"Content-Type": ctype})
            if res.status_code in (413, 415, 422):
                log.error("results service refused the %s image of %s: %s", kind, entry.inspection_id, res.text[:200])
            elif res.status_code != 204:
                raise RuntimeError(f"image upload answered {res.status_code}")


def topic_base(prefix: str, station: StationContext) -> str:
    return "/".join([prefix.strip("/"), station.site, station.area, station.line, station.cell, station.station])


class MqttForwarder(Forwarder):
    """QoS 1 results to ``<prefix>/<site>/<area>/<line>/<cell>/<station>/inspection/result``, the newest
    retained at ``.../inspection/last``, a retained ``.../status`` (online; Last Will offline) and the score
    drift figures retained at ``.../status/drift`` (JSON)."""

    dest = "mqtt"

    def __init__(self, outbox_path: Path, host: str, port: int, prefix: str, station: StationContext,
                 stop: threading.Event, username: str | None = None, password: str | None = None,
                 batch: int = 100, ack_timeout: float = 10.0):
        super().__init__(outbox_path, batch, stop)
        self.host, self.port, self.ack_timeout = host, port, ack_timeout
        base = topic_base(prefix, station)
        self.result_topic, self.last_topic, self.status_topic = (f"{base}/inspection/result",
                                                                  f"{base}/inspection/last", f"{base}/status")
        client_id = f"inspection-{socket.gethostname()}-{station.path}"  # per box: two boxes never collide
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv311, clean_session=True)
        if username:
            self.client.username_pw_set(username, password)
        self.client.will_set(self.status_topic, "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=5)  # type: ignore[arg-type]  # paho takes seconds as float
        self.client.on_connect = self._on_connect
        self.connected = threading.Event()
        self.status = "online"  # retained at .../status: online, or "error: ..." while the station is in error
        self.drift_topic, self.drift = f"{base}/status/drift", ""  # the drift figures, retained (JSON)

    def _on_connect(self, client, _userdata, _flags, reason_code, _props):
        if not reason_code.is_failure:
            client.publish(self.status_topic, self.status, qos=1, retain=True)
            if self.drift:
                client.publish(self.drift_topic, self.drift, qos=1, retain=True)
            self.connected.set()

    def set_status(self, status: str) -> None:
        """Say the station's state on the retained status topic (again on every reconnect)."""
        self.status = status
        if self.connected.is_set():
            self.client.publish(self.status_topic, status, qos=1, retain=True)

    def set_drift(self, payload: str) -> None:
        """The drift figures (JSON, inspection.line.drift.DriftStatus), retained at ``.../status/drift``."""
        self.drift = payload
        if self.connected.is_set():
            self.client.publish(self.drift_topic, payload, qos=1, retain=True)

    def setup(self) -> None:
        self.client.on_disconnect = lambda *_a: self.connected.clear()
        self.client.connect_async(self.host, self.port, keepalive=10)
        self.client.loop_start()

    def teardown(self) -> None:
        if self.connected.is_set():
            self.client.publish(self.status_topic, "offline", qos=1, retain=True).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()

    def deliver(self, outbox: Outbox, entries: list) -> None:
        if not self.connected.wait(timeout=1.0):
            raise RuntimeError(f"broker {self.host}:{self.port} not connected")
        infos = [(e, self.client.publish(self.result_topic, e.record, qos=1)) for e in entries]
        deadline = time.monotonic() + self.ack_timeout
        acked = []
        for e, info in infos:
            try:
                info.wait_for_publish(max(0.01, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                break
            if not info.is_published():
                break
            acked.append(e.inspection_id)
        outbox.mark(self.dest, acked)
        DELIVERED.labels(dest=self.dest).inc(len(acked))
        if acked:
            last = next(e for e in reversed(entries) if e.inspection_id == acked[-1])
            self.client.publish(self.last_topic, last.record, qos=1, retain=True)
        if len(acked) < len(entries):
            raise RuntimeError(f"broker acknowledged {len(acked)} of {len(entries)} results")
