"""`inspection plant serve` with the real shipped model, driven by `inspection plc-sim` over Modbus TCP and
OPC UA (separate processes, loopback); plc-sim's own failures: no station, a refused session, a station that
breaks the handshake."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from plant_support import fake_inspect
from service_support import free_port

from inspection.plant.handshake import PlcHandshake
from inspection.plant.modbus import ModbusStation
from inspection.plant.records import Trigger, TriggerAnswer

CLI = [sys.executable, "-m", "inspection.cli"]
PASSWORD = "plant-test-password"


def _env() -> dict[str, str]:
    return {**os.environ, "INSPECTION_OPCUA_PASSWORD": PASSWORD}


class Serve:
    def __init__(self, tmp: Path):
        self.modbus, self.opcua = free_port(), free_port()
        self.log = tmp / "serve.log"
        self.proc = subprocess.Popen(
            [*CLI, "plant", "serve", "--modbus-port", str(self.modbus), "--opcua-port", str(self.opcua),
             "--cert-dir", str(tmp / "pki"), "--user", "plc"], env=_env(), stdout=self.log.open("w"),
            stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 90
        while "station ready" not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"plant serve did not get ready: {self.text()}")
            time.sleep(0.2)

    def text(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    s = Serve(tmp_path_factory.mktemp("plant-serve"))
    yield s
    s.stop()


def _sim(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "plc-sim", *args], env=_env(), capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("protocol", ["modbus", "opcua"])
def test_plc_sim_against_the_shipped_model(serve, protocol, tmp_path):
    port = serve.modbus if protocol == "modbus" else serve.opcua
    extra = ["--user", "plc", "--cert-dir", str(tmp_path / "pki")] if protocol == "opcua" else []
    out = _sim("--protocol", protocol, "--port", str(port), "--rate", "20", "--count", "30",
               "--report", str(tmp_path / "report.json"), *extra)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "every answer checked, no problems" in out.stdout and re.search(r"p50 [\d.]+ ms, p99 [\d.]+ ms", out.stdout)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["problems"] == [] and report["results"] == 38 and report["refused"] == 1
    assert report["ok"] > 0 and report["ng"] > 0, "the synthetic parts include defects the shipped model finds"
    assert report["error_results"] == 0 and len(report["latencies_ms"]) == 30


def test_serve_prints_the_certificate_thumbprint_and_its_counters_at_stop(tmp_path):
    s = Serve(tmp_path)
    try:
        text = s.text()
        assert re.search(r"server certificate created: .*server_cert\.der, SHA-1 thumbprint [0-9A-F]{40}", text)
        assert f"Modbus TCP on 127.0.0.1:{s.modbus}" in text
        out = _sim("--port", str(s.modbus), "--count", "3", "--rate", "50", "--no-buffer-check")
        assert out.returncode == 0, out.stdout + out.stderr
    finally:
        code = s.stop()
    assert code == 0
    assert "3 triggers: " in s.text() and PASSWORD not in s.text()


def test_plc_sim_without_a_station_exits_2_naming_it():
    port = free_port()
    out = _sim("--port", str(port), "--count", "1")
    assert out.returncode == 2 and f"127.0.0.1:{port}" in out.stderr


def test_plc_sim_with_a_wrong_password_is_refused(serve, tmp_path):
    env = {**_env(), "INSPECTION_OPCUA_PASSWORD": "wrong"}
    out = subprocess.run([*CLI, "plc-sim", "--protocol", "opcua", "--port", str(serve.opcua), "--user", "plc",
                          "--cert-dir", str(tmp_path / "pki"), "--count", "1"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "BadUserAccessDenied" in out.stderr


class OverwritingHandshake(PlcHandshake):
    """A broken station: when the buffer is full it drops the oldest result instead of refusing."""

    def _place(self, trig: Trigger) -> TriggerAnswer:
        if len(self._slots) >= self.depth and self._slots[0].result is not None:
            self._slots.popleft()
        return super()._place(trig)


def test_plc_sim_finds_a_station_that_overwrites_a_full_buffer():
    core = OverwritingHandshake(fake_inspect, depth=3)
    core.start()
    server = ModbusStation(core, port=free_port())
    server.start()
    try:
        out = _sim("--port", str(server.port), "--count", "5", "--rate", "50", timeout=60)
    finally:
        server.stop()
        core.stop()
    assert out.returncode == 1
    assert "trigger into a full buffer answered 0, expected 2" in out.stderr
    assert "buffer check: failed" in out.stdout


@pytest.mark.parametrize(("args", "named"), [
    (["--protocol", "serial"], "--protocol 'serial'"),
    (["--modbus-port", "70000"], "plant.modbus.port"),
])
def test_serve_bad_options_exit_2_naming_them(args, named):
    out = subprocess.run([*CLI, "plant", "serve", *args], env=_env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and named in out.stderr


def test_serve_opcua_without_a_user_is_refused():
    env = {k: v for k, v in os.environ.items() if k != "INSPECTION_OPCUA_PASSWORD"}
    out = subprocess.run([*CLI, "plant", "serve", "--protocol", "opcua", "--user", "plc"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "INSPECTION_OPCUA_PASSWORD" in out.stderr
    out = subprocess.run([*CLI, "plant", "serve", "--protocol", "opcua"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "plant.opcua.users" in out.stderr and "--allow-anonymous" in out.stderr
