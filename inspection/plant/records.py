"""The typed boundary between the handshake core, the protocol servers and whatever inspects a part.

A line runner plugs into the plant side by providing one callable, :data:`InspectFn`: it gets a
:class:`Trigger` (sequence number, part id, recipe, trigger time) and returns a :class:`TriggerResult`. It may
raise :class:`CameraError` when no frame could be taken; any other exception is answered as
``INSPECTION_FAILED``. Error codes are the same numbers on every protocol (Modbus registers, OPC UA
variables); each protocol also reports them in its own terms (a Modbus exception, an OPC UA status code).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

PlantVerdict = Literal["OK", "NG", "ERROR"]


class ErrorCode(enum.IntEnum):
    """Why a trigger, an acknowledge or a recipe change was not carried out (0 = no error)."""

    NONE = 0
    BUSY = 1  # a trigger arrived while an inspection was in progress: answered with an error result
    BUFFER_FULL = 2  # the result buffer holds N unacknowledged results: trigger refused, nothing overwritten
    CAMERA = 3  # no frame could be taken for the trigger
    INSPECTION_FAILED = 4  # the inspection raised an unexpected error
    UNKNOWN_SEQUENCE = 5  # an acknowledge for a sequence number that is not in the buffer
    ACK_OUT_OF_ORDER = 6  # an acknowledge for a buffered result that is not the one presented (the oldest)
    UNKNOWN_RECIPE = 7  # a recipe number the station does not hold
    NOT_READY = 8  # the station is preoperational or in error
    BAD_PART_ID = 9  # a part id that is too long or not printable ASCII

    @property
    def text(self) -> str:
        return _TEXT[self]


_TEXT = {
    ErrorCode.NONE: "no error",
    ErrorCode.BUSY: "trigger while an inspection was in progress",
    ErrorCode.BUFFER_FULL: "result buffer full: acknowledge results before triggering again",
    ErrorCode.CAMERA: "no frame could be taken",
    ErrorCode.INSPECTION_FAILED: "the inspection failed",
    ErrorCode.UNKNOWN_SEQUENCE: "no buffered result has this sequence number",
    ErrorCode.ACK_OUT_OF_ORDER: "acknowledge the presented (oldest) result first",
    ErrorCode.UNKNOWN_RECIPE: "no such recipe",
    ErrorCode.NOT_READY: "the station is not ready",
    ErrorCode.BAD_PART_ID: "part id must be at most 32 printable ASCII characters",
}

PART_ID_MAX = 32


class StationState(enum.IntEnum):
    """The VisionSystem's state, as OPC 40100 names them (numbers used in Modbus and OPC UA)."""

    PREOPERATIONAL = 0
    READY = 1
    BUSY = 2
    ERROR = 3


class CameraError(Exception):
    """Raised by an inspect callable when no frame could be taken for a trigger."""


class HandshakeError(Exception):
    """A refused acknowledge or recipe change: the code says why, the message says what."""

    def __init__(self, code: ErrorCode, message: str):
        super().__init__(message)
        self.code = code


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Trigger:
    """One trigger from the PLC: the station answers it with exactly one result (or a refusal)."""

    sequence: int
    part_id: str
    recipe: int
    triggered_at: datetime = field(default_factory=now)


@dataclass(frozen=True)
class TriggerResult:
    """The answer to one trigger: a verdict with score and threshold, or an error result with its code."""

    sequence: int
    part_id: str
    recipe: int
    verdict: PlantVerdict
    score: float
    threshold: float
    model_version: str
    triggered_at: datetime
    completed_at: datetime
    processing_ms: float = 0.0
    error: ErrorCode = ErrorCode.NONE
    message: str = ""

    @classmethod
    def inspected(cls, trigger: Trigger, passed: bool, score: float, threshold: float,
                  model_version: str) -> TriggerResult:
        return cls(sequence=trigger.sequence, part_id=trigger.part_id, recipe=trigger.recipe,
                   verdict="OK" if passed else "NG", score=score, threshold=threshold,
                   model_version=model_version, triggered_at=trigger.triggered_at, completed_at=now())

    @classmethod
    def failed(cls, trigger: Trigger, code: ErrorCode, message: str = "") -> TriggerResult:
        return cls(sequence=trigger.sequence, part_id=trigger.part_id, recipe=trigger.recipe, verdict="ERROR",
                   score=0.0, threshold=0.0, model_version="", triggered_at=trigger.triggered_at,
                   completed_at=now(), error=code, message=message or code.text)


@dataclass(frozen=True)
class TriggerAnswer:
    """What the station says at once to a trigger: its sequence number, and whether it was refused."""

    sequence: int
    error: ErrorCode = ErrorCode.NONE
    message: str = ""

    @property
    def accepted(self) -> bool:
        """True when a result for this sequence number will be presented (it may be an error result)."""
        return self.error in (ErrorCode.NONE, ErrorCode.BUSY)


@dataclass(frozen=True)
class Counters:
    """Totals since start, as Keyence and OPC 40100 expose them. triggers = ok + ng + errors + pending;
    errors = missed + refused (missed: answered by an error result, BUSY, CAMERA or INSPECTION_FAILED; refused:
    answered at once without a result, of which buffer_full for a full buffer). ack_errors counts refused
    acknowledges (unknown sequence, out of order)."""

    triggers: int = 0
    ok: int = 0
    ng: int = 0
    errors: int = 0
    refused: int = 0
    missed: int = 0
    buffer_full: int = 0
    ack_errors: int = 0
    processing_ms_min: float = 0.0
    processing_ms_mean: float = 0.0
    processing_ms_max: float = 0.0


@dataclass(frozen=True)
class HandshakeSnapshot:
    """Everything a protocol server shows, taken at one instant under the core's lock."""

    state: StationState
    ready: bool
    busy: bool
    presented: TriggerResult | None  # the oldest unacknowledged result: Result Ready while it is not None
    last: TriggerResult | None  # the most recent completed result (for SCADA), acknowledged or not
    buffered: int  # results waiting for an acknowledge, including the inspection in progress
    depth: int
    recipe: int
    last_trigger: TriggerAnswer | None
    last_error: ErrorCode  # of the last refused command (trigger, acknowledge, recipe); NONE after a success
    last_error_message: str
    counters: Counters
    version: int  # grows on every change; a server refreshes what it shows when it differs


InspectFn = Callable[[Trigger], TriggerResult]
"""What a station provides to answer a trigger: grab a frame, inspect it with the recipe's model."""
