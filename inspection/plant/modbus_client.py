"""A PLC's side of the Modbus handshake (pymodbus client): what the simulated PLC and the tests drive."""

from __future__ import annotations

import time

from pymodbus.client import ModbusTcpClient

from inspection.plant import modbus_map as mm
from inspection.plant.plc_view import PresentedView, StationView
from inspection.plant.records import ErrorCode, TriggerAnswer


class ModbusError(ConnectionError):
    pass


class ModbusPlc:
    """Drives the register map like a PLC program: set a bit, wait for its echo, clear it."""

    name = "modbus"

    def __init__(self, host: str, port: int, timeout: float = 3.0, poll_s: float = 0.001):
        self.poll_s = poll_s
        self.client = ModbusTcpClient(host, port=port, timeout=timeout)
        if not self.client.connect():
            raise ModbusError(f"cannot connect to Modbus TCP {host}:{port}")
        self.timeout = timeout
        self.inputs = [0] * mm.INPUT_COUNT

    def read(self) -> mm.StationOutputs:
        rr = self.client.read_holding_registers(mm.OUTPUT_BASE, count=mm.OUTPUT_COUNT, device_id=1)
        if rr.isError():
            raise ModbusError(f"reading the outputs failed: {rr}")
        return mm.StationOutputs.decode(list(rr.registers))

    def write_inputs(self) -> None:
        rr = self.client.write_registers(0, self.inputs, device_id=1)
        if rr.isError():
            raise ModbusError(f"writing the inputs failed: {rr}")

    def _pulse(self, bit: int, echo: int) -> mm.StationOutputs:
        """Raise a Control bit, wait for its echo, lower it again; the outputs as they were at the echo."""
        self.inputs[mm.CONTROL] |= bit
        self.write_inputs()
        deadline = time.monotonic() + self.timeout
        while not (out := self.read()).has(echo):
            if time.monotonic() > deadline:
                raise ModbusError(f"no echo of control bit {bit} within {self.timeout:g} s")
        self.inputs[mm.CONTROL] &= ~bit
        self.write_inputs()
        return out

    def trigger(self, part_id: str) -> TriggerAnswer:
        self.inputs[mm.PART_ID:mm.PART_ID + mm.PART_ID_MAX // 2] = mm.text_to_regs(part_id)
        out = self._pulse(mm.TRIGGER_BIT, mm.TRIGGER_ACK)
        return TriggerAnswer(out.trigger_sequence, ErrorCode(out.trigger_error))

    def acknowledge(self, sequence: int) -> int:
        self.inputs[mm.ACK_SEQUENCE:mm.ACK_SEQUENCE + 2] = mm.u32(sequence)
        return self._pulse(mm.ACK_BIT, mm.ACK_ECHO).command_error

    def select_recipe(self, number: int) -> int:
        self.inputs[mm.RECIPE] = number
        return self._pulse(mm.RECIPE_BIT, mm.RECIPE_ACK).command_error

    def wait_change(self) -> None:
        """Modbus has no notifications: the PLC's scan cycle (1 ms) between polls."""
        time.sleep(self.poll_s)

    def view(self) -> StationView:
        out = self.read()
        presented = None
        if out.has(mm.RESULT_READY):
            verdict = "OK" if out.has(mm.OK) else "NG" if out.has(mm.NG) else "ERROR"
            presented = PresentedView(out.result_sequence, verdict, out.result_error, out.result_part_id, out.score)
        return StationView(ready=out.has(mm.READY), busy=out.has(mm.BUSY), state=out.state, buffered=out.buffered,
                           depth=out.depth, command_error=out.command_error, presented=presented)

    def reported(self) -> StationView:
        """Modbus has no notifications: what the station reports is a fresh read."""
        return self.view()

    def close(self) -> None:
        self.client.close()
