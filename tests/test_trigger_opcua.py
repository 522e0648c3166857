"""`inspection run` with a [plant] section serving OPC UA (Basic256Sha256 SignAndEncrypt) and Modbus: a real
asyncua client runs 200 triggered inspections through the runner; each answered once, in order, with its
record (sequence number, part id, recipe, model) in the outbox; recipe changes between triggers."""

from __future__ import annotations

import os
import subprocess

import pytest
from line_support import CLI, line_status, wait_for, write_config
from service_support import free_port
from trigger_support import outbox_records

from inspection.model.shipped import demo_model_path
from inspection.plant.modbus_client import ModbusPlc
from inspection.plant.opcua_client import OpcUaPlc
from inspection.plant.plcsim import PlcSimulator
from inspection.plant.records import ErrorCode

USER, PASSWORD = "line-plc", "correct horse battery"


@pytest.fixture
def station(tmp_path):
    """`inspection run` in trigger mode: OPC UA and Modbus on free ports, two recipes (flange, plate)."""
    ports = {"opcua": free_port(), "modbus": free_port(), "status": free_port()}
    plant = f"""
[plant]
enabled = true
[plant.recipes.1]
name = "flange"
[plant.recipes.2]
name = "plate"
model = "{demo_model_path('knurled_plate')}"
[plant.modbus]
enabled = true
port = {ports['modbus']}
[plant.opcua]
enabled = true
port = {ports['opcua']}
cert_dir = "{tmp_path / 'pki'}"
users = [{{ name = "{USER}", password_env = "TEST_OPCUA_PASSWORD" }}]
"""
    cfg = write_config(tmp_path / "station.toml", 'kind = "simulated"\nrate = 100\ndefect_rate = 0.3',
                       status_port=ports["status"], extra=plant)
    proc = subprocess.Popen([*CLI, "run", "--config", str(cfg)], env={**os.environ, "TEST_OPCUA_PASSWORD": PASSWORD},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: ((line_status(ports["status"]) or {}).get("trigger") or {}).get("state") == "Ready"
                 or proc.poll() is not None, 60, "the triggered station to be Ready")
        assert proc.poll() is None, proc.communicate()
        yield ports, tmp_path, proc
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "trigger mode: Modbus TCP on" in out and "SHA-1 thumbprint" in out, out


def test_200_encrypted_opcua_triggers_through_inspection_run(station):
    ports, tmp, _ = station
    plc = OpcUaPlc(f"opc.tcp://127.0.0.1:{ports['opcua']}/inspection/", USER, PASSWORD, cert_dir=tmp / "client")
    try:
        sim = PlcSimulator(plc)
        report = sim.run(count=200, rate=20, buffer_check=True, prefix="UA")
        assert (report.triggers, report.results, report.refused) == (209, 208, 1)
        assert plc.select_recipe(2) == 0, "SelectRecipe over OPC UA"
        sim.one_part("UA-PLATE")
        assert plc.select_recipe(9) == ErrorCode.UNKNOWN_RECIPE
        assert plc.select_recipe(1) == 0
        sim.one_part("UA-FLANGE")
    finally:
        plc.close()
    assert report.problems == [], report.problems
    status = wait_for(lambda: (s := line_status(ports["status"])) and s["trigger"]["counters"]["ok"]
                      + s["trigger"]["counters"]["ng"] == 210 and s, 10, "the counters in /status")
    assert status["trigger"]["buffered"] == 0 and status["trigger"]["last_trigger_sequence"] == 211
    assert status["trigger"]["recipe_name"] == "flange" and status["trigger"]["state"] == "Ready"
    records = [r for r in outbox_records(tmp / "outbox.db") if r.get("kind") != "trigger_error"]
    assert [r["trigger_sequence"] for r in records] == [s for s in range(1, 212) if s != 9]
    assert [r["part_id"] for r in records[8:]] == [f"UA-{i:05d}" for i in range(200)] + ["UA-PLATE", "UA-FLANGE"]
    assert [r["recipe"] for r in records[-3:]] == ["flange", "plate", "flange"]
    assert records[-2]["model"]["name"] != records[-1]["model"]["name"]


def test_recipe_changes_between_triggers_over_modbus_drop_none(station):
    ports, tmp, _ = station
    plc = ModbusPlc("127.0.0.1", ports["modbus"])
    try:
        sim = PlcSimulator(plc)
        for i in range(40):
            assert plc.select_recipe(1 + i % 2) == 0
            sim.one_part(f"R-{i:03d}")
        assert plc.select_recipe(7) == ErrorCode.UNKNOWN_RECIPE
        sim.one_part("R-after-bad-recipe")
    finally:
        plc.close()
    assert sim.report.problems == [] and sim.report.results == 41 and sim.report.error_results == 0
    records = outbox_records(tmp / "outbox.db")
    assert [r["trigger_sequence"] for r in records] == list(range(1, 42))
    assert [r["recipe"] for r in records] == ["flange", "plate"] * 20 + ["plate"]
    names = {r["recipe"]: r["model"]["name"] for r in records}
    assert names["flange"] != names["plate"], names
    assert all(r["model"]["version"] for r in records)
