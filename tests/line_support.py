"""Helpers for the line-runner tests: a results service in its own process, configs, MQTT subscriber."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
import paho.mqtt.client as mqtt
import pytest
from service_support import STATION, free_port

from inspection.model.shipped import default_model_path

CLI = [sys.executable, "-m", "inspection.cli"]
FAULTY_CLI = [sys.executable, str(Path(__file__).with_name("faulty_cli.py"))]  # the CLI with a fault injected
T = TypeVar("T")


class ServiceProcess:
    """`inspection serve` in its own process on a fixed port (SQLite in workdir unless a database URL is
    given), with a registered station and edge and operator tokens; it can be stopped and started again."""

    def __init__(self, workdir: Path, db_url: str | None = None):
        self.db = db_url or f"sqlite:///{workdir / 'service.db'}"
        self.port = free_port()
        self.images = workdir / "service-images"
        self.env = {**os.environ, "INSPECTION_DATABASE_URL": self.db}
        subprocess.run([*CLI, "station", "add", STATION], env=self.env, check=True, capture_output=True)
        self.edge = self._token("edge")
        self.reader = self._token("operator")
        self.proc = None

    def _token(self, role: str) -> str:
        out = subprocess.run([*CLI, "token", "create", "--role", role, "--name", f"test-{role}"], env=self.env,
                             check=True, capture_output=True, text=True).stdout
        return out.strip().splitlines()[-1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _launch(self) -> subprocess.Popen:
        return subprocess.Popen([*CLI, "serve", "--port", str(self.port), "--image-dir", str(self.images)],
                                env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> None:
        self.proc = self._launch()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("results service did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None

    def ids(self) -> list[str]:
        """Every stored inspection id (all pages)."""
        out, cursor = [], None
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.reader}"}) as c:
            while True:
                params = {"limit": 500} | ({"cursor": cursor} if cursor else {})
                body = c.get("/api/v1/results", params=params).json()
                out += [r["inspection_id"] for r in body["items"]]
                cursor = body["next_cursor"]
                if not cursor:
                    return out


def write_config(path: Path, source: str, service_url: str | None = None, mqtt_host: str | None = None,
                 extra: str = "", mqtt_port: int = 1883, status_port: int = 0) -> Path:
    station = dict(zip(("site", "area", "line", "cell", "station"), STATION.split("/"), strict=True))
    lines = [f'outbox = "{path.parent / "outbox.db"}"', "", "[station]", *[f'{k} = "{v}"' for k, v in station.items()],
             "", "[model]", f'path = "{default_model_path()}"',
             "", "[source]", source, "", "[images]", f'dir = "{path.parent / "images"}"', "",
             "[status]", f"port = {status_port}", ""]
    if service_url:
        lines += ["[service]", f'url = "{service_url}"', ""]
    if mqtt_host:
        lines += ["[mqtt]", f'host = "{mqtt_host}"', f"port = {mqtt_port}", 'topic_prefix = "test"', ""]
    path.write_text("\n".join(lines) + extra)
    return path


class Subscriber:
    """A persistent-session QoS 1 subscriber: it keeps its subscription across a broker restart."""

    def __init__(self, topic: str, client_id: str, port: int = 1883):
        self.port = port
        self.ids: set[str] = set()
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.reconnect_delay_set(min_delay=0.1, max_delay=1)
        self.topic = topic
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda *_a: self.connected.clear()

    def _on_connect(self, client, _u, _f, rc, _p):
        if not rc.is_failure:
            client.subscribe(self.topic, qos=1)
            self.connected.set()

    def _on_message(self, _c, _u, msg):
        import json

        with self.lock:
            self.ids.add(json.loads(msg.payload)["inspection_id"])

    def start(self) -> None:
        self.client.connect("127.0.0.1", self.port, keepalive=5)
        self.client.loop_start()
        assert self.connected.wait(10), "subscriber could not connect"

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_for(condition: Callable[[], T], timeout: float, what: str, poll: float = 0.05) -> T:
    """Poll ``condition`` until it returns something truthy (returned) or the deadline passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)


def line_status(port: int) -> dict | None:
    """The runner's /status, or None while it does not answer."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/status", timeout=1).json()
    except (httpx.HTTPError, ValueError):
        return None


class Mosquitto:
    """A Mosquitto broker of the test's own on a free port (persistence in tmp), which the test may stop and
    start again; the machine's broker is never touched."""

    def __init__(self, workdir: Path):
        if shutil.which("mosquitto") is None:
            pytest.skip("the mosquitto binary is needed for a broker of the test's own")
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        user = f"user {getpass.getuser()}\n"  # started as root, mosquitto would drop to a user who cannot write here
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                             f"persistence_location {workdir}/\n{user}")
        self.proc: subprocess.Popen | None = None

    def _port_open(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def start(self) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(self._port_open, 10, f"mosquitto on port {self.port}")

    def stop(self) -> None:
        """Graceful: SIGTERM, so the broker saves its persistent sessions."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None
