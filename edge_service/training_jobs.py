"""Training jobs of the results service: one folder per job under the jobs folder with its state in
``job.json``, run by a worker process (never in the web server's process; see :mod:`training_worker`).

At most ``TrainingSettings.max_running`` jobs run at once (default 1); starting another is refused (409,
:class:`JobsBusy`) rather than queued, so a job never waits behind one nobody watches. Cancelling kills the
worker's process group. A job found ``running`` or ``queued`` when the service starts was interrupted by a
restart: it is marked failed, and a worker of it still alive (the service was killed) is killed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from edge_service import training_worker
from edge_service.settings import ServiceSettings, TrainingSettings
from edge_service.training_models import ACTIVE_STATES, JobState, TrainingJob

log = logging.getLogger("edge_service")
LOG_TAIL = 40
SAVE_EVERY_S = 1.0
KILL_GRACE_S = 5.0


class JobNotFound(LookupError):
    pass


class JobsBusy(RuntimeError):
    """As many jobs as allowed are running."""


class JobConflict(RuntimeError):
    """The job is not in a state that allows this (cancel a finished job, publish an unfinished one)."""


def jobs_dir(settings: ServiceSettings) -> Path:
    return settings.training.jobs_dir or Path(settings.image_dir).resolve().parent / "inspection-training"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Worker:
    stop: tuple[JobState, str] | None = None  # set when it is cancelled or the service stops: (state, why)
    proc: subprocess.Popen[str] | None = None
    thread: threading.Thread | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_TAIL))


class TrainingJobs:
    def __init__(self, root: Path, settings: TrainingSettings):
        self.root, self.settings = Path(root), settings
        self._lock = threading.RLock()
        self._workers: dict[str, _Worker] = {}

    # ------------------------------------------------------------------ files
    def job_dir(self, job_id: str) -> Path:
        if not job_id or not all(c in "0123456789abcdef" for c in job_id):
            raise JobNotFound(job_id)
        return self.root / job_id

    def new_staging(self) -> Path:
        """An empty folder to check an upload in; :meth:`start` makes it a job's folder."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f".staging-{uuid.uuid4().hex}"
        path.mkdir()
        return path

    def save(self, job: TrainingJob) -> None:
        path = self.job_dir(job.id) / "job.json"
        tmp = path.with_name("job.json.tmp")
        tmp.write_text(job.model_dump_json(indent=2))
        tmp.replace(path)

    def get(self, job_id: str) -> TrainingJob:
        path = self.job_dir(job_id) / "job.json"
        if not path.is_file():
            raise JobNotFound(job_id)
        with self._lock:
            return TrainingJob.model_validate_json(path.read_text())

    def newest(self, limit: int = 50) -> list[TrainingJob]:
        """Newest first (a job folder whose job.json cannot be read is passed over, with a warning)."""
        found = []
        for path in self.root.glob("*/job.json"):
            try:
                found.append(TrainingJob.model_validate_json(path.read_text()))
            except (OSError, ValueError) as exc:
                log.warning("training job file %s unreadable: %s", path, str(exc).splitlines()[0])
        return sorted(found, key=lambda j: j.created_at, reverse=True)[:limit]

    def running(self) -> list[str]:
        with self._lock:
            return [i for i, w in self._workers.items() if w.thread is not None and w.thread.is_alive()]

    def check_capacity(self) -> None:
        busy = self.running()
        if len(busy) >= self.settings.max_running:
            raise JobsBusy(f"{len(busy)} training job(s) running ({', '.join(busy)}); at most "
                           f"{self.settings.max_running} at a time: wait for it to finish or cancel it")

    # ------------------------------------------------------------------ life cycle
    def start(self, job: TrainingJob, staging: Path) -> TrainingJob:
        """Make the staging folder the job's folder and start its worker; JobsBusy if none may start now."""
        with self._lock:
            self.check_capacity()
            staging.rename(self.job_dir(job.id))
            job = job.model_copy(update={"state": "running", "started_at": now(), "stage": "starting"})
            self.save(job)
            worker = _Worker()
            worker.thread = threading.Thread(target=self._run, args=(job, worker), daemon=True,
                                             name=f"training-{job.id}")
            self._workers[job.id] = worker
            worker.thread.start()
        return job

    def cancel(self, job_id: str, who: str) -> TrainingJob:
        job = self.get(job_id)
        with self._lock:
            worker = self._workers.get(job_id)
        if job.state not in ACTIVE_STATES or worker is None:
            raise JobConflict(f"training job {job_id} is {job.state}; only a queued or running job can be cancelled")
        worker.stop = ("cancelled", f"cancelled by {who}")
        self._log(worker, f"cancelled by {who}")
        self._kill(worker)
        if worker.thread is not None:
            worker.thread.join(timeout=KILL_GRACE_S + 5)
        return self.get(job_id)

    def recover(self) -> None:
        """At start: jobs left running or queued were interrupted; kill their workers if still alive."""
        if not self.root.is_dir():  # no job yet (the folder is made by the first upload)
            return
        for leftover in self.root.glob(".staging-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        for job in self.newest(limit=10**6):
            if job.state in ACTIVE_STATES:
                self._kill_orphan(self.job_dir(job.id))
                self.save(job.model_copy(update={
                    "state": "failed", "finished_at": now(), "stage": None,
                    "error": "interrupted: the results service restarted while the job ran; start it again"}))

    def shutdown(self) -> None:
        """At stop: running workers are killed and their jobs marked failed (interrupted)."""
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.stop = ("failed", "interrupted: the results service stopped while the job ran; start it again")
            self._kill(worker)
        for worker in workers:
            if worker.thread is not None:
                worker.thread.join(timeout=KILL_GRACE_S + 5)

    # ------------------------------------------------------------------ the worker
    def _run(self, job: TrainingJob, worker: _Worker) -> None:
        job_dir = self.job_dir(job.id)
        try:
            for step in training_worker.steps(job_dir, job, self.settings.threads):
                job = self._run_step(job, worker, step)
                if worker.stop is not None or job.state != "running":
                    break
            if worker.stop is not None:
                self._finish(job, worker, *worker.stop)
            elif job.state == "running":
                job = job.model_copy(update={"report": training_worker.read_report(job_dir)})
                self._finish(job, worker, "succeeded")
        except Exception as exc:  # the job fails, the service goes on
            log.exception("training job %s failed", job.id)
            self._finish(job, worker, "failed", f"{type(exc).__name__}: {exc}")
        finally:
            (job_dir / "worker.pid").unlink(missing_ok=True)

    def _run_step(self, job: TrainingJob, worker: _Worker, step: training_worker.Step) -> TrainingJob:
        job_dir = self.job_dir(job.id)
        if worker.stop is not None:
            return job
        proc = subprocess.Popen(step.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1, start_new_session=True, cwd=job_dir)
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, proc.pid, 10)  # the web server stays responsive
        worker.proc = proc
        (job_dir / "worker.pid").write_text(str(proc.pid))
        if worker.stop is not None:  # cancelled while it was being started
            self._kill(worker)
        job = job.model_copy(update={"stage": step.name})
        self.save(job.model_copy(update={"log_tail": list(worker.tail)}))
        saved = time.monotonic()
        assert proc.stdout is not None
        with (job_dir / "worker.log").open("a") as log_file:
            for raw in proc.stdout:
                line = raw.strip()
                parsed = training_worker.progress_of(line) if step.name == "training" else None
                if parsed is not None:
                    stage, fraction = parsed
                    job = job.model_copy(update={"stage": stage,
                                                 "progress": max(job.progress, step.start + step.span * fraction)})
                elif line.strip():
                    log_file.write(line + "\n")
                    self._log(worker, line)
                if time.monotonic() - saved > SAVE_EVERY_S:
                    self.save(job.model_copy(update={"log_tail": list(worker.tail)}))
                    saved = time.monotonic()
        code = proc.wait()
        worker.proc = None
        if worker.stop is not None:
            return job
        if code != 0:
            self._finish(job, worker, "failed", training_worker.error_of(list(worker.tail), code, step.name))
            return job.model_copy(update={"state": "failed"})
        job = job.model_copy(update={"progress": step.start + step.span})
        self.save(job.model_copy(update={"log_tail": list(worker.tail)}))
        return job

    def _finish(self, job: TrainingJob, worker: _Worker, state: JobState, error: str | None = None) -> None:
        done = job.model_copy(update={"state": state, "error": error, "finished_at": now(),
                                      "log_tail": list(worker.tail), "stage": None,
                                      "progress": 1.0 if state == "succeeded" else job.progress})
        with self._lock:
            self.save(done)

    @staticmethod
    def _log(worker: _Worker, line: str) -> None:
        worker.tail.append(line[:500])

    @staticmethod
    def _kill(worker: _Worker) -> None:
        proc = worker.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    @staticmethod
    def _kill_orphan(job_dir: Path) -> None:
        """A worker left alive by a killed service: only a process whose command line names this job."""
        try:
            pid = int((job_dir / "worker.pid").read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            return
        if str(job_dir) in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            log.warning("killed the worker (pid %d) of interrupted training job %s", pid, job_dir.name)
