"""The supervisor: runs each stage in its own thread and keeps it honest.

An unexpected exception in a stage is logged with its traceback, counted (``crashes``), the frame the stage
held is counted as failed, and the stage is restarted after a backoff (full jitter). A stage that crashes
``max_failures`` times in a row without completing an item in between, or raises :class:`FatalStageError`
(the outbox cannot be written), cannot recover: the supervisor reports it (``on_fatal``), the stage drains
its input counting every frame as failed, and the runner stops with state ``error``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from inspection.line import metrics as m
from inspection.line.backoff import Backoff
from inspection.line.stages import FatalStageError, Stage

log = logging.getLogger("inspection.line.supervisor")
StageState = Literal["starting", "running", "restarting", "finished", "failed"]


@dataclass
class StageHealth:
    state: StageState = "starting"
    crashes: int = 0  # unexpected exceptions
    restarts: int = 0
    last_error: str | None = None


class Supervisor:
    def __init__(self, stages: list[Stage], on_fatal: Callable[[str], None], max_failures: int = 3,
                 backoff_base: float = 0.1, backoff_cap: float = 2.0):
        self.stages, self.on_fatal, self.max_failures = stages, on_fatal, max_failures
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.health = {s.name: StageHealth() for s in stages}
        self.threads = {s.name: threading.Thread(target=self._supervise, args=(s,), name=s.name, daemon=True)
                        for s in stages}

    def start(self) -> None:
        for t in self.threads.values():
            t.start()

    def dead(self) -> list[str]:
        """Stages whose thread ended without finishing or failing (never expected): the runner is in error."""
        return [name for name, t in self.threads.items() if t.ident is not None and not t.is_alive()
                and self.health[name].state not in ("finished", "failed")]

    def _supervise(self, stage: Stage) -> None:
        health = self.health[stage.name]
        backoff = Backoff(self.backoff_base, self.backoff_cap)
        in_a_row = 0
        m.STAGE_UP.labels(stage=stage.name).set(1)
        try:
            while True:
                health.state = "running"
                before = stage.done
                try:
                    stage.run()
                    health.state = "finished"
                    return
                except FatalStageError as exc:
                    log.error("stage %s cannot go on", stage.name, exc_info=True)
                    self._give_up(stage, health, str(exc))
                    return
                except Exception as exc:
                    in_a_row = 1 if stage.done > before else in_a_row + 1
                    if in_a_row == 1:
                        backoff.reset()
                    self._crashed(stage, health, exc)
                    if in_a_row >= self.max_failures:
                        self._give_up(stage, health, f"crashed {in_a_row} times in a row, last: {health.last_error}")
                        return
                health.state = "restarting"
                time.sleep(backoff.next())
                health.restarts += 1
                m.STAGE_RESTARTS.labels(stage=stage.name).inc()
                log.warning("stage %s restarted (%d)", stage.name, health.restarts)
        finally:
            m.STAGE_UP.labels(stage=stage.name).set(0)
            try:
                stage.close()
            except Exception:
                log.exception("stage %s: close failed", stage.name)

    def _crashed(self, stage: Stage, health: StageHealth, exc: Exception) -> None:
        health.crashes += 1
        health.last_error = f"{type(exc).__name__}: {exc}"[:300]
        m.STAGE_CRASHES.labels(stage=stage.name).inc()
        log.exception("stage %s crashed", stage.name)
        stage.abandon(f"stage {stage.name} crashed: {health.last_error}")

    def _give_up(self, stage: Stage, health: StageHealth, reason: str) -> None:
        health.state = "failed"
        health.last_error = reason[:300]
        stage.abandon(f"stage {stage.name} failed: {reason}")
        self.on_fatal(f"stage {stage.name}: {reason}")
        try:
            stage.drain_failed()
        except Exception:
            log.exception("stage %s: draining failed", stage.name)
