"""The assignment poller: the line runner follows the model the results service assigns to its station.

Every ``poll_interval_s`` it reads the station's assignment. When the model, threshold or shadow model differs
from what runs, it gets the model file (from the cache, else downloaded and SHA-256 checked), loads it beside
the running one, runs it once on a blank image, and swaps the judges (:class:`Judges`) in one reference
assignment: the frame being inspected finishes with the old model, the next one is judged by the new one. A
threshold change alone swaps a view of the loaded model (no reload). Anything refused (a SHA-256 mismatch, a
file that is not an inspection model, a bad threshold) is logged and reported in ``/status``; the running
model stays. While the service is down the station keeps its model and retries with backoff; after a restart
the last applied assignment is loaded from the cache.

Recipes (trigger mode): an assignment applies to the recipes whose configured model has the assigned model's
name (``flange`` v2 replaces ``flange`` v1 wherever it is used); when no recipe holds that name, to the recipe
active when it arrives. A threshold-only assignment (no model) applies to the recipes whose configured model
has its ``model_version``, else to the active recipe. Recipes that the previous assignment changed and this one
does not go back to their configured models.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from inspection.errors import InspectionError
from inspection.line.assignment_client import AssignedModel, Assignment, AssignmentClient, AssignmentError
from inspection.line.assignment_models import (
    FREE_RUNNING,
    Judge,
    Judges,
    ThresholdSource,
    valid_threshold,
    warm_up,
    with_threshold,
)
from inspection.line.backoff import Backoff
from inspection.line.config import StationConfig
from inspection.line.status import AssignmentStatus
from inspection.model.runtime import InspectionModel

log = logging.getLogger("inspection.line.assignment")


class AssignmentPoller:
    def __init__(self, client: AssignmentClient, judges: Judges, poll_interval_s: float, threads: int = 1,
                 active_recipe: Callable[[], int] | None = None, on_swap: Callable[[], None] | None = None):
        self.client, self.judges, self.interval, self.threads = client, judges, poll_interval_s, threads
        self.active_recipe = active_recipe or (lambda: FREE_RUNNING)
        self.on_swap = on_swap
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="assignment", daemon=True)
        self.loaded: dict[str, InspectionModel] = {m.info.sha256: m for m in judges.base.values()}
        self.assigned: Assignment | None = None  # the service's latest answer
        self.applied: Assignment | None = None  # what runs
        self.targets: set[int] = set()  # the recipes the applied assignment changed
        self.last_poll_at: float | None = None
        self.last_success_at: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.polls = self.errors = 0

    # ------------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread.ident is not None:
            self.thread.join(timeout=self.client.http.timeout.read or 30)
        self.client.close()

    def restore(self) -> None:
        """At start: run the last applied assignment from the cache (files only, no download)."""
        try:
            last = self.client.load_applied()
            if last is None:
                return
            for m in (last.model, last.shadow):
                if m is not None and not self.client.cached(m).is_file() and m.sha256 not in self.loaded:
                    raise AssignmentError(f"model {m.label()}: not in the cache ({self.client.cached(m)})")
            self.apply(last, save=False)
            log.info("restored the last assignment from the cache: %s", self._describe(last))
        except (InspectionError, ValueError) as exc:
            self._failed(f"the cached assignment was not restored: {exc}")

    def _run(self) -> None:
        backoff = Backoff(min(1.0, self.interval), max(self.interval * 6, 5.0))
        while not self.stop_event.is_set():
            try:
                self.poll_once()
                backoff.reset()
                delay = self.interval
            except (InspectionError, ValueError) as exc:
                self._failed(str(exc))
                delay = max(backoff.next(), self.interval / 10)
            except Exception as exc:  # never let the poller die: the line keeps running either way
                log.exception("assignment poll failed")
                self._failed(f"{type(exc).__name__}: {exc}")
                delay = max(backoff.next(), self.interval / 10)
            self.stop_event.wait(delay)

    def poll_once(self) -> None:
        self.last_poll_at = time.time()
        self.polls += 1
        assignment = self.client.fetch()
        self.assigned = assignment
        if self.applied is None or assignment.wanted() != self.applied.wanted():
            self.apply(assignment)
        self.last_success_at, self.last_error = time.time(), None

    def _failed(self, message: str) -> None:
        if message != self.last_error:
            log.error("assignment: %s", message)  # once per distinct error; repeats are counted
        self.errors += 1
        self.last_error, self.last_error_at = message, time.time()

    # ------------------------------------------------------------------------------------------ apply

    def apply(self, assignment: Assignment, save: bool = True) -> None:
        """Load what the assignment names and swap it in; on any error nothing changes (and it raises)."""
        threshold = valid_threshold(assignment.threshold)
        live = self._model(assignment.model) if assignment.model else None
        shadow = self._model(assignment.shadow) if assignment.shadow else None
        targets = self._targets(assignment)
        source: ThresholdSource = "assignment" if threshold is not None else "model"
        new = {n: Judge(with_threshold(live or self.judges.base[n], threshold), source, shadow) for n in targets}
        new |= {n: Judge(self.judges.base[n]) for n in self.targets - targets}  # back to the configured model
        before = {n: j.describe() for n, j in self.judges.current.items()}
        new = {n: j for n, j in new.items() if j.describe() != before[n]}  # what really changes
        if new:
            self.judges.swap(new)
        self.applied, self.targets = assignment, targets
        self._forget_unused()
        for n, judge in new.items():
            what = "model" if n == FREE_RUNNING else f"recipe {n}"
            log.warning("%s swapped: %s -> %s", what, _label(before[n]), _label(judge.describe()))
        if new and self.on_swap:
            self.on_swap()
        if save:
            self.client.save_applied(assignment)

    def _targets(self, a: Assignment) -> set[int]:
        base = self.judges.base
        if len(base) == 1:
            return set(base)
        if a.model is not None:
            named = {n for n, m in base.items() if m.info.name == a.model.name}
        else:
            named = {n for n, m in base.items() if a.model_version and m.info.version == a.model_version}
        return named or {self.active_recipe()}

    def _model(self, ref: AssignedModel) -> InspectionModel:
        """The assigned model, loaded (reused when already loaded), checked against the assignment."""
        if ref.sha256 in self.loaded:
            return self.loaded[ref.sha256]
        path = self.client.model_file(ref)
        model = InspectionModel.load(path, threads=self.threads)
        if model.info.sha256 != ref.sha256:  # changed on disk between the check and the load
            raise AssignmentError(f"model {ref.label()}: {path} changed on disk (SHA-256 {model.info.sha256})")
        if (model.info.name, model.info.version) != (ref.name, ref.version):
            raise AssignmentError(f"model {ref.label()}: the file's metadata says {model.info.name} "
                                  f"{model.info.version}; refused")
        warm_up(model)
        self.loaded[ref.sha256] = model
        return model

    def _forget_unused(self) -> None:
        """Keep loaded: the configured models, what runs, and the assignment's previous models (rollback)."""
        keep = {m.info.sha256 for m in self.judges.base.values()}
        for j in self.judges.current.values():
            keep |= {j.live.info.sha256} | ({j.shadow.info.sha256} if j.shadow else set())
        if len(self.loaded) > len(keep) + 2:
            for sha in [s for s in self.loaded if s not in keep][:-2]:
                del self.loaded[sha]

    # ----------------------------------------------------------------------------------------- status

    @staticmethod
    def _describe(a: Assignment | None) -> dict | None:
        if a is None:
            return None
        return {"model": a.model.model_dump(exclude={"download_url"}) if a.model else None,
                "model_version": a.model_version, "threshold": a.threshold,
                "shadow": a.shadow.model_dump(exclude={"download_url"}) if a.shadow else None,
                "updated_by": a.updated_by, "updated_at": a.updated_at.isoformat() if a.updated_at else None}

    def status(self) -> AssignmentStatus:
        cost = self.judges.cost
        shadowing = any(j.shadow for j in self.judges.current.values())
        return AssignmentStatus(
            running={str(n): j.describe() for n, j in self.judges.current.items()},
            assigned=self._describe(self.assigned), applied=self._describe(self.applied),
            in_sync=self.assigned is not None and self.applied is not None
            and self.assigned.wanted() == self.applied.wanted(),
            last_poll_at=_utc(self.last_poll_at), last_success_at=_utc(self.last_success_at),
            last_error=self.last_error, last_error_at=_utc(self.last_error_at), polls=self.polls,
            errors=self.errors, swaps=self.judges.swaps,
            shadow_ms=round(cost.shadow_ms, 3) if shadowing else None,
            live_ms=round(cost.live_ms, 3) if shadowing else None,
            frame_interval_ms=round(cost.interval_ms, 3) if shadowing and cost.interval_ms else None,
            shadow_over_budget=shadowing and cost.over_budget())


def _utc(t: float | None) -> datetime | None:
    return datetime.fromtimestamp(t, UTC) if t is not None else None


def _label(d: dict) -> str:
    shadow = f", shadow {d['shadow']['name']} {d['shadow']['version']}" if d.get("shadow") else ""
    return f"{d['name']} {d['version']} (threshold {d['threshold']:g}, {d['threshold_source']}){shadow}"


def make_poller(cfg: StationConfig, station_path: str, judges: Judges,
                active_recipe: Callable[[], int] | None = None,
                on_swap: Callable[[], None] | None = None) -> AssignmentPoller | None:
    """The station's poller when ``[assignment]`` is enabled (``[service]`` url and token), else None."""
    a = cfg.assignment
    if not a.enabled or not cfg.service.url:
        return None
    client = AssignmentClient(cfg.service.url, cfg.service.secret(), station_path, a.cache_dir, a.timeout_s,
                              int(a.max_model_mb * 1024 * 1024))
    return AssignmentPoller(client, judges, a.poll_interval_s, cfg.model.threads, active_recipe, on_swap)
