"""The Modbus TCP server of the station (pymodbus): the register map of :mod:`inspection.plant.modbus_map`
over the handshake core.

The PLC's writes are handled inside the write request, before it is answered: Select Recipe first, then
Result Ack, then Trigger (so a PLC that acknowledges and triggers in one write frees the slot first). The
output registers are filled from one snapshot of the core on every read, so a PLC always reads a consistent
set. Refused commands are not Modbus exceptions (the write is taken): they set Command Error and a code, as
Cognex and LandingEdge report them. Writes to the outputs or outside the map are answered with exception 02.

Modbus TCP has no security of its own: bind it to the PLC network only (the default is 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from inspection.plant import modbus_map as mm
from inspection.plant.handshake import PlcHandshake
from inspection.plant.records import HandshakeError

log = logging.getLogger(__name__)


class ModbusStation:
    """The handshake on Modbus TCP, served from its own thread. ``start()`` returns once it listens."""

    def __init__(self, core: PlcHandshake, host: str = "127.0.0.1", port: int = 5020):
        self.core, self.host, self.port = core, host, port
        self._echo = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def address(self) -> str:
        return f"modbus-tcp://{self.host}:{self.port}"

    def device(self) -> SimDevice:
        return SimDevice(id=0, action=self._action, simdata=[
            SimData(address=0, count=mm.INPUT_COUNT, values=0, datatype=DataType.REGISTERS),
            SimData(address=mm.OUTPUT_BASE, count=mm.OUTPUT_COUNT, values=0, datatype=DataType.REGISTERS,
                    readonly=True)])

    # -- the register logic ---------------------------------------------------------------------------
    async def _action(self, func_code: int, start: int, address: int, count: int, registers: list[int],
                      values: list[int] | list[bool] | None) -> None:
        """pymodbus calls this before every access: a write to the inputs is handled, outputs refreshed."""
        if values is not None and address < mm.INPUT_COUNT:
            image = registers[mm.CONTROL - start:mm.INPUT_COUNT - start]
            image[address:address + len(values)] = [int(v) for v in values]
            self.handle_inputs(registers[mm.CONTROL - start], image)
        self._refresh(registers, start)
        return None

    def handle_inputs(self, old_control: int, inputs: list[int]) -> None:
        """React to the edges between the Control word before and after a write (``inputs``: 0-19)."""
        control = inputs[mm.CONTROL]
        rising = control & ~old_control
        if rising & mm.RECIPE_BIT:
            self._quietly(lambda: self.core.select_recipe(inputs[mm.RECIPE]))
        if rising & mm.ACK_BIT:
            self._quietly(lambda: self.core.acknowledge(mm.from_u32(inputs[mm.ACK_SEQUENCE:mm.ACK_SEQUENCE + 2])))
        if rising & mm.TRIGGER_BIT:
            self.core.trigger(mm.regs_to_text(inputs[mm.PART_ID:mm.PART_ID + mm.PART_ID_MAX // 2]))
        self._echo = control

    @staticmethod
    def _quietly(command: Callable[[], object]) -> None:
        with contextlib.suppress(HandshakeError):  # shown in Command Error and its code; the core logged it
            command()

    def _refresh(self, registers: list[int], start: int) -> None:
        at = mm.OUTPUT_BASE - start
        registers[at:at + mm.OUTPUT_COUNT] = mm.output_registers(self.core.snapshot(), self._echo)

    # -- serving --------------------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name="modbus-server",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"Modbus server on {self.host}:{self.port} did not start within {timeout:g} s")
        if self._error is not None:
            raise OSError(f"Modbus server cannot listen on {self.host}:{self.port}: {self._error}")
        log.info("Modbus TCP server on %s", self.address)

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            server = ModbusTcpServer(self.device(), address=(self.host, self.port))
            await server.serve_forever(background=True)
        except Exception as exc:  # pymodbus raises RuntimeError when it cannot listen
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await server.shutdown()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop and self._stop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)
