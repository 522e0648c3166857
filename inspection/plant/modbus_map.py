"""The Modbus TCP register map of the station: one block of holding registers (function codes 3, 6, 16;
function code 4 reads the same addresses). Addresses are 0-based protocol addresses (a PLC tool that counts
from 40001 adds 40001). 32-bit values take two registers, high word first. Strings are ASCII, two characters
per register (first character in the high byte), padded with NUL.

Inputs, written by the PLC (0-19)::

    0      Control            bit 0 Trigger: a rising edge starts one inspection
                              bit 1 Result Ack: a rising edge acknowledges the result named in Ack sequence
                              bit 2 Select Recipe: a rising edge switches to Recipe number (from the next trigger)
    1      Recipe number
    2-3    Ack sequence u32   the sequence number acknowledged; 0 = whichever result is presented
    4-19   Part id            up to 32 characters, taken with the Trigger edge (write it before or with it)

Outputs, written by the station (100-155; read-only, a write is answered with exception 02)::

    100    Status             bit 0 Ready (a trigger now is inspected), 1 Busy (inspecting or buffer full),
                              2 Trigger Ack (echo of Trigger once its edge was taken), 3 Result Ready,
                              4 OK, 5 NG, 6 Error (the presented result is an error result),
                              7 Result Ack echo, 8 Command Error (the last command was refused),
                              9 Recipe Ack (echo of Select Recipe)
    101    State              0 preoperational, 1 ready, 2 busy, 3 error
    102    Command error code why the last trigger/ack/recipe command was refused; 0 after a success
    103-4  Trigger sequence   u32, the number given to the last Trigger edge
    105    Trigger error code 0 accepted, 1 busy (an error result follows); 2, 8, 9 refused (no result)
    106    Buffered           results not yet acknowledged, the inspection in progress included
    107    Buffer depth       N (default 8)
    108    Active recipe
    110-1  Result sequence    u32, of the presented result (0 = none)
    112    Result error code  0 for a verdict, otherwise why it is an error result
    113-4  Score x1000        i32
    115-6  Threshold x1000    i32
    117    Result recipe      the recipe the part was inspected with
    118-9  Processing time    u32, trigger to result, 0.01 ms
    120-35 Result part id
    140-9  Counters           u32 each: triggers, OK, NG, errors (error results and refusals), refused
    150-5  Processing time    u32 each, min, mean, max, 0.01 ms

Error codes (the same numbers on OPC UA): 0 none, 1 busy, 2 buffer full, 3 camera, 4 inspection failed,
5 unknown sequence (ack), 6 ack out of order, 7 unknown recipe, 8 not ready, 9 bad part id.

The handshake (Cognex / LandingEdge style)::

    PLC  Trigger      ___/‾‾‾‾‾‾‾‾\\_____________________________________
    Stn  Trigger Ack  ____/‾‾‾‾‾‾‾\\_____________________________________   (Trigger sequence = n)
    Stn  Busy         ____/‾‾‾‾‾‾‾‾‾‾‾‾\\_____________________________
    Stn  Result Ready _________________/‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾\\__________   (Result sequence = n, OK/NG/Error)
    PLC  Result Ack   ______________________________/‾‾‾‾‾‾‾‾\\_______   (Ack sequence = n or 0)
    Stn  Ack echo     _______________________________/‾‾‾‾‾‾‾\\_______

Result Ready stays up while results are buffered: after an ack the next buffered result is presented at once
(a new Result sequence). A full buffer keeps Busy up and refuses Trigger edges with Command Error and code 2.
"""

from __future__ import annotations

from dataclasses import dataclass

from inspection.plant.records import PART_ID_MAX, HandshakeSnapshot, TriggerResult

# inputs
CONTROL = 0
RECIPE = 1
ACK_SEQUENCE = 2
PART_ID = 4
INPUT_COUNT = 20
TRIGGER_BIT, ACK_BIT, RECIPE_BIT = 1 << 0, 1 << 1, 1 << 2

# outputs
OUTPUT_BASE = 100
STATUS = 100
STATE = 101
COMMAND_ERROR = 102
TRIGGER_SEQUENCE = 103
TRIGGER_ERROR = 105
BUFFERED = 106
DEPTH = 107
ACTIVE_RECIPE = 108
RESULT_SEQUENCE = 110
RESULT_ERROR = 112
SCORE = 113
THRESHOLD = 115
RESULT_RECIPE = 117
PROCESSING = 118
RESULT_PART_ID = 120
COUNTERS = 140
TIMES = 150
OUTPUT_COUNT = 56

READY, BUSY, TRIGGER_ACK, RESULT_READY, OK, NG, ERROR, ACK_ECHO, COMMAND_ERROR_BIT, RECIPE_ACK = (
    1 << i for i in range(10))


def u32(value: int) -> list[int]:
    value &= 0xFFFFFFFF
    return [value >> 16, value & 0xFFFF]


def from_u32(regs: list[int]) -> int:
    return (regs[0] << 16) | regs[1]


def i32(value: int) -> list[int]:
    return u32(value & 0xFFFFFFFF)


def from_i32(regs: list[int]) -> int:
    v = from_u32(regs)
    return v - (1 << 32) if v & 0x80000000 else v


def text_to_regs(text: str, chars: int = PART_ID_MAX) -> list[int]:
    data = text.encode("ascii", "replace")[:chars].ljust(chars, b"\0")
    return [(data[i] << 8) | data[i + 1] for i in range(0, chars, 2)]


def regs_to_text(regs: list[int]) -> str:
    """Decode a NUL-padded register string; bytes outside ASCII come back as U+FFFD (refused as part ids)."""
    data = b"".join(r.to_bytes(2, "big") for r in regs).split(b"\0", 1)[0]
    return data.decode("ascii", "replace")


def hundredths(ms: float) -> int:
    return max(0, min(0xFFFFFFFF, round(ms * 100)))


def thousandths(x: float) -> int:
    return max(-(2**31), min(2**31 - 1, round(x * 1000)))


def _status(snap: HandshakeSnapshot, echo: int) -> int:
    p = snap.presented
    bits = (READY if snap.ready else 0) | (BUSY if snap.busy else 0)
    bits |= (TRIGGER_ACK if echo & TRIGGER_BIT else 0) | (ACK_ECHO if echo & ACK_BIT else 0)
    bits |= RECIPE_ACK if echo & RECIPE_BIT else 0
    bits |= COMMAND_ERROR_BIT if snap.last_error else 0
    if p is not None:
        bits |= RESULT_READY | {"OK": OK, "NG": NG, "ERROR": ERROR}[p.verdict]
    return bits


def _result_regs(p: TriggerResult | None) -> list[int]:
    if p is None:
        return [0] * (RESULT_PART_ID + PART_ID_MAX // 2 - RESULT_SEQUENCE)
    return [*u32(p.sequence), int(p.error), *i32(thousandths(p.score)), *i32(thousandths(p.threshold)),
            p.recipe, *u32(hundredths(p.processing_ms)), *text_to_regs(p.part_id)]


def output_registers(snap: HandshakeSnapshot, echo: int) -> list[int]:
    """The 56 output registers (100-155) for a snapshot; ``echo`` is the Control word already handled."""
    out = [0] * OUTPUT_COUNT
    trig = snap.last_trigger
    head = [_status(snap, echo), int(snap.state), int(snap.last_error), *u32(trig.sequence if trig else 0),
            int(trig.error) if trig else 0, snap.buffered, snap.depth, snap.recipe]
    out[0:len(head)] = head
    result = _result_regs(snap.presented)
    out[RESULT_SEQUENCE - OUTPUT_BASE:RESULT_SEQUENCE - OUTPUT_BASE + len(result)] = result
    c = snap.counters
    counters = [*u32(c.triggers), *u32(c.ok), *u32(c.ng), *u32(c.errors), *u32(c.refused),
                *u32(hundredths(c.processing_ms_min)), *u32(hundredths(c.processing_ms_mean)),
                *u32(hundredths(c.processing_ms_max))]
    out[COUNTERS - OUTPUT_BASE:COUNTERS - OUTPUT_BASE + len(counters)] = counters
    return out


@dataclass(frozen=True)
class StationOutputs:
    """The output registers decoded (what a PLC program, or the simulated PLC, reads)."""

    status: int
    state: int
    command_error: int
    trigger_sequence: int
    trigger_error: int
    buffered: int
    depth: int
    recipe: int
    result_sequence: int
    result_error: int
    score: float
    threshold: float
    result_recipe: int
    processing_ms: float
    result_part_id: str
    counters: tuple[int, int, int, int, int]  # triggers, OK, NG, errors, refused

    def has(self, bit: int) -> bool:
        return bool(self.status & bit)

    @classmethod
    def decode(cls, regs: list[int]) -> StationOutputs:
        def at(addr: int, n: int = 1) -> list[int]:
            return regs[addr - OUTPUT_BASE:addr - OUTPUT_BASE + n]

        return cls(status=at(STATUS)[0], state=at(STATE)[0], command_error=at(COMMAND_ERROR)[0],
                   trigger_sequence=from_u32(at(TRIGGER_SEQUENCE, 2)), trigger_error=at(TRIGGER_ERROR)[0],
                   buffered=at(BUFFERED)[0], depth=at(DEPTH)[0], recipe=at(ACTIVE_RECIPE)[0],
                   result_sequence=from_u32(at(RESULT_SEQUENCE, 2)), result_error=at(RESULT_ERROR)[0],
                   score=from_i32(at(SCORE, 2)) / 1000, threshold=from_i32(at(THRESHOLD, 2)) / 1000,
                   result_recipe=at(RESULT_RECIPE)[0], processing_ms=from_u32(at(PROCESSING, 2)) / 100,
                   result_part_id=regs_to_text(at(RESULT_PART_ID, PART_ID_MAX // 2)),
                   counters=tuple(from_u32(at(COUNTERS + 2 * i, 2)) for i in range(5)))  # type: ignore[arg-type]
