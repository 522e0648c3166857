"""Trigger mode of the line runner with a real pymodbus client: every trigger answered once, in order, with
a record in the outbox carrying its sequence number, part id and recipe; error results committed too."""

from __future__ import annotations

from trigger_support import FewFramesCamera, TriggeredRunner, outbox_records, trigger_config

from inspection.plant.modbus_client import ModbusPlc
from inspection.plant.plcsim import PlcSimulator
from inspection.plant.records import ErrorCode


def test_200_triggers_over_modbus_each_committed_with_its_sequence(tmp_path):
    cfg = trigger_config(tmp_path)
    with TriggeredRunner(cfg) as runner:
        plc = ModbusPlc("127.0.0.1", cfg.plant.modbus.port)
        try:
            report = PlcSimulator(plc).run(count=200, rate=50, buffer_check=True)
        finally:
            plc.close()
        status = runner.snapshot()
    assert report.problems == [], report.problems
    assert report.triggers == 209 and report.refused == 1 and report.results == 208
    records = outbox_records(cfg.outbox)
    inspected = [r for r in records if r.get("kind") != "trigger_error"]
    assert [r["trigger_sequence"] for r in inspected] == [s for s in range(1, 210) if s != 9]
    assert [r["part_id"] for r in inspected[8:]] == [f"SIM-{i:05d}" for i in range(200)]
    assert all(r["recipe"] == "flange" and r["verdict"] in ("PASS", "FAIL") for r in inspected)
    assert len(records) == len(inspected), "no error results on a healthy station"
    assert status.trigger is not None and status.trigger.counters["triggers"] == 209
    assert status.trigger.counters["ok"] + status.trigger.counters["ng"] == 208
    assert status.results["PASS"] + status.results["FAIL"] == 208


def test_camera_error_is_an_error_result_committed_to_the_outbox(tmp_path):
    """A camera that gives no frame after the trigger (50 ms to wait): a CAMERA error result, committed."""
    cfg = trigger_config(tmp_path, plant={"frame_timeout_s": 0.05}, source={"kind": "simulated",
                                                                          "stall_timeout_s": 60})
    with TriggeredRunner(cfg, source=FewFramesCamera(1)):
        plc = ModbusPlc("127.0.0.1", cfg.plant.modbus.port)
        try:
            sim = PlcSimulator(plc)
            for i in range(3):
                sim.one_part(f"CAM-{i}")
            view = plc.view()
        finally:
            plc.close()
    assert sim.report.problems == [] and sim.report.error_results == 3
    assert view.ready
    records = outbox_records(cfg.outbox)
    assert [(r["kind"], r["trigger_sequence"], r["part_id"], r["error"]) for r in records] == [
        ("trigger_error", i + 1, f"CAM-{i}", ErrorCode.CAMERA.name) for i in range(3)]
