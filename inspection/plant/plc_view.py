"""What the simulated PLC sees of a station, whatever the protocol: the :class:`PlcClient` interface that
the Modbus and OPC UA clients implement, and the :class:`StationView` they return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from inspection.plant.records import TriggerAnswer


@dataclass(frozen=True)
class PresentedView:
    sequence: int
    verdict: str  # OK, NG or ERROR
    error: int
    part_id: str
    score: float


@dataclass(frozen=True)
class StationView:
    ready: bool
    busy: bool
    state: int
    buffered: int
    depth: int
    command_error: int
    presented: PresentedView | None


class PlcClient(Protocol):
    """One PLC's connection to a station: trigger, watch, acknowledge, change recipe."""

    name: str

    def trigger(self, part_id: str) -> TriggerAnswer: ...

    def view(self) -> StationView:
        """The station's state, read afresh."""
        ...

    def reported(self) -> StationView:
        """The station's state as it last reported it, without asking again (OPC UA: the data-change
        notifications' values); it may lag a command just called."""
        ...

    def wait_change(self) -> None:
        """Block until what :meth:`view` shows may have changed (a notification, or one poll period)."""
        ...

    def acknowledge(self, sequence: int) -> int:
        """Acknowledge; returns the station's error code for it (0 = done)."""
        ...

    def select_recipe(self, number: int) -> int: ...

    def close(self) -> None: ...
