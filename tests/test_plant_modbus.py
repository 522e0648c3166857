"""The Modbus TCP server with a real pymodbus client on loopback: 200 triggered inspections through the
handshake, buffer-full and acknowledge errors, busy error results, recipes, writes outside the inputs."""

from __future__ import annotations

import pytest
from plant_support import GatedInspect, fake_inspect, wait_until
from service_support import free_port

from inspection.plant import modbus_map as mm
from inspection.plant.handshake import PlcHandshake
from inspection.plant.modbus import ModbusStation
from inspection.plant.modbus_client import ModbusPlc
from inspection.plant.plcsim import PlcSimulator
from inspection.plant.records import ErrorCode


def _serve(inspect, depth=8, recipes=None):
    core = PlcHandshake(inspect, depth=depth, recipes=recipes)
    core.start()
    server = ModbusStation(core, port=free_port())
    server.start()
    return core, server


@pytest.fixture
def station():
    core, server = _serve(fake_inspect, depth=3, recipes={1: "flange", 2: "plate"})
    plc = ModbusPlc("127.0.0.1", server.port)
    yield core, plc
    plc.close()
    server.stop()
    core.stop()


def test_200_triggered_inspections_each_answered_once_in_order():
    core, server = _serve(fake_inspect, depth=8)
    acked: list[int] = []
    original = core.acknowledge

    def recording_ack(sequence: int = 0):
        result = original(sequence)
        acked.append(result.sequence)
        return result

    core.acknowledge = recording_ack  # type: ignore[method-assign]
    plc = ModbusPlc("127.0.0.1", server.port)
    try:
        report = PlcSimulator(plc).run(count=200, rate=400, buffer_check=True)
    finally:
        plc.close()
        server.stop()
        core.stop()
    assert report.problems == []
    assert report.results == 208 and report.refused == 1 and report.triggers == 209
    assert report.ok + report.ng == 208 and len(report.latencies_ms) == 200
    assert acked == [s for s in range(1, 210) if s != 9], "every accepted trigger acknowledged once, in order"
    c = core.snapshot().counters
    assert (c.triggers, c.ok + c.ng, c.refused) == (209, 208, 1)


def test_full_buffer_sets_busy_and_refuses_with_code_2(station):
    core, plc = station
    for i in range(3):
        assert plc.trigger(f"P{i}").error == ErrorCode.NONE
        wait_until(core, lambda i=i: core.snapshot().counters.ok + core.snapshot().counters.ng == i + 1)
    out = plc.read()
    assert out.has(mm.BUSY) and not out.has(mm.READY) and out.buffered == 3 and out.state == 2
    refused = plc.trigger("P3")
    assert (refused.sequence, refused.error) == (4, ErrorCode.BUFFER_FULL)
    out = plc.read()
    assert out.has(mm.COMMAND_ERROR_BIT) and out.command_error == 2 and out.trigger_error == 2
    assert out.result_sequence == 1 and out.result_part_id == "P0", "a refusal must not overwrite"
    assert plc.acknowledge(1) == 0 and plc.read().result_sequence == 2
    assert plc.read().has(mm.READY) and not plc.read().has(mm.COMMAND_ERROR_BIT)


def test_unknown_and_out_of_order_acks_set_command_error(station):
    core, plc = station
    plc.trigger("A")
    wait_until(core, lambda: core.snapshot().ready)
    plc.trigger("B")
    wait_until(core, lambda: core.snapshot().counters.ok + core.snapshot().counters.ng == 2)
    assert plc.acknowledge(99) == ErrorCode.UNKNOWN_SEQUENCE
    out = plc.read()
    assert out.has(mm.COMMAND_ERROR_BIT) and out.result_sequence == 1 and out.buffered == 2
    assert plc.acknowledge(2) == ErrorCode.ACK_OUT_OF_ORDER
    assert plc.acknowledge(0) == 0 and plc.read().result_sequence == 2
    assert plc.acknowledge(2) == 0 and not plc.read().has(mm.RESULT_READY)


def test_trigger_while_inspecting_is_answered_by_an_error_result():
    gated = GatedInspect()
    core, server = _serve(gated)
    plc = ModbusPlc("127.0.0.1", server.port)
    try:
        plc.trigger("first")
        assert gated.started.wait(5)
        busy = plc.trigger("second")
        assert busy.error == ErrorCode.BUSY and plc.read().has(mm.BUSY)
        gated.release()
        wait_until(core, lambda: core.snapshot().presented is not None)
        first = plc.read()
        assert first.result_sequence == 1 and not first.has(mm.ERROR) and first.has(mm.NG)
        assert plc.acknowledge(1) == 0
        second = plc.read()
        assert (second.result_sequence, second.result_error, second.result_part_id) == (2, 1, "second")
        assert second.has(mm.ERROR) and second.has(mm.RESULT_READY)
    finally:
        gated.release(3)
        plc.close()
        server.stop()
        core.stop()


def test_recipe_select_and_unknown_recipe(station):
    core, plc = station
    assert plc.select_recipe(2) == 0 and plc.read().recipe == 2
    assert plc.select_recipe(9) == ErrorCode.UNKNOWN_RECIPE
    out = plc.read()
    assert out.recipe == 2 and out.has(mm.COMMAND_ERROR_BIT) and out.has(mm.READY), "the station keeps running"
    plc.trigger("R")
    wait_until(core, lambda: core.snapshot().presented is not None)
    assert plc.read().result_recipe == 2


def test_part_id_that_is_not_ascii_is_refused(station):
    _, plc = station
    plc.inputs[mm.PART_ID] = 0xC3A9  # UTF-8 é
    plc.inputs[mm.CONTROL] = mm.TRIGGER_BIT
    plc.write_inputs()
    out = plc.read()
    assert out.trigger_error == ErrorCode.BAD_PART_ID and out.command_error == ErrorCode.BAD_PART_ID


def test_a_score_and_counters_read_back_as_written(station):
    core, plc = station
    for i in range(1, 3):
        plc.trigger(f"S{i}")
        wait_until(core, lambda: core.snapshot().presented is not None)
        out = plc.read()
        assert out.score == pytest.approx(i / 1000) and out.threshold == 0.5
        plc.acknowledge(i)
    assert plc.read().counters == (2, 1, 1, 0, 0)


def test_writes_to_outputs_or_outside_the_map_get_illegal_address(station):
    _, plc = station
    assert plc.client.write_register(mm.STATUS, 1, device_id=1).exception_code == 2
    assert plc.client.read_holding_registers(50, count=2, device_id=1).exception_code == 2
    assert plc.read().status & mm.READY, "the station still answers"


def test_trigger_is_taken_on_the_rising_edge_only(station):
    """A PLC that writes its whole output block every cycle must not trigger again while Trigger stays up."""
    core, plc = station
    plc.inputs[mm.CONTROL] = mm.TRIGGER_BIT
    for _ in range(3):
        plc.write_inputs()
    assert core.snapshot().counters.triggers == 1 and plc.read().has(mm.TRIGGER_ACK)
    plc.inputs[mm.CONTROL] = 0
    plc.write_inputs()
    assert not plc.read().has(mm.TRIGGER_ACK)
    wait_until(core, lambda: core.snapshot().ready)
    plc.inputs[mm.CONTROL] = mm.TRIGGER_BIT
    plc.write_inputs()
    assert core.snapshot().counters.triggers == 2


def test_raw_register_layout_is_as_documented(station):
    """Checked on the raw registers, not through the shared codec: high word first, ASCII high byte first."""
    core, plc = station
    plc.client.write_registers(mm.PART_ID, [0x4142, 0x4300], device_id=1)  # "ABC"
    plc.client.write_register(mm.CONTROL, mm.TRIGGER_BIT, device_id=1)
    wait_until(core, lambda: core.snapshot().presented is not None)
    raw = plc.client.read_holding_registers(100, count=56, device_id=1).registers
    assert raw[3:5] == [0, 1], "trigger sequence u32 at 103-104, high word first"
    assert raw[10:12] == [0, 1] and raw[12] == 0, "result sequence at 110-111, result error at 112"
    assert raw[13:15] == [0, 1] and raw[15:17] == [0, 500], "score and threshold x1000 at 113-116"
    assert raw[20:22] == [0x4142, 0x4300], "result part id at 120, first character in the high byte"
    assert raw[0] & 0b1000 and raw[0] & 0b100000, "Status bit 3 Result Ready, bit 5 NG"
    assert raw[40:42] == [0, 1], "trigger counter at 140-141"


def test_plc_sim_with_trigger_jitter_checks_every_answer_and_refuses_a_jitter_of_a_whole_period(station):
    """Triggers off their slots (as parts arriving unsynchronised with a free-running camera) are answered and
    checked like paced ones; a jitter as long as the part period would reorder slots and is refused."""
    _core, plc = station
    with pytest.raises(ValueError, match=r"jitter 0\.01 s: .* less than one part period \(0\.01 s\)"):
        PlcSimulator(plc).run(count=5, rate=100, buffer_check=False, jitter_s=0.01)
    report = PlcSimulator(plc).run(count=50, rate=100, buffer_check=False, jitter_s=0.005, seed=3)
    assert report.problems == [] and report.triggers == 50 and len(report.latencies_ms) == 50
