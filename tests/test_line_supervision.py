"""The supervisor: a stage that crashes once is restarted and the line goes on; a stage that cannot recover
(the model fails on every frame, the outbox cannot be written) puts the station in state error within 2 s,
and `inspection run` exits non-zero. Every frame taken is committed or counted (never silently lost)."""

from __future__ import annotations

import logging
import os
import resource
import shutil
import sqlite3
import subprocess
import time

import pytest
from line_support import FAULTY_CLI, line_status, wait_for, write_config
from prometheus_client import generate_latest
from service_support import free_port

from inspection.line import metrics as m
from inspection.line.config import load_config
from inspection.line.runner import LineRunner
from inspection.model.runtime import InspectionModel
from inspection.model.shipped import default_model_path
from inspection.sources.simulated import SimulatedLine

EXIT_LINE_ERROR = 3


class FlakyModel:
    """The real model, except that the inspect calls numbered in ``fail_on`` raise RuntimeError."""

    def __init__(self, fail_on: set[int]):
        self.model = InspectionModel.load(default_model_path())
        self.fail_on, self.calls = fail_on, 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def inspect(self, image, name=None, mapping=None):
        self.calls += 1
        if self.calls in self.fail_on:
            raise RuntimeError(f"injected fault in inspect call {self.calls}")
        return self.model.inspect(image, name=name, mapping=mapping)


def _committed(outbox) -> int:
    db = sqlite3.connect(outbox)
    try:
        return db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    finally:
        db.close()


def test_a_stage_that_crashes_once_is_restarted_and_the_line_goes_on(tmp_path, samples, caplog):
    folder = tmp_path / "in"
    shutil.copytree(samples / "flange" / "test" / "good", folder)
    cfg = load_config(write_config(tmp_path / "s.toml", f'kind = "folder"\npath = "{folder}"',
                                   service_url="http://127.0.0.1:9"))  # down: nothing is pruned
    caplog.set_level(logging.ERROR)
    runner = LineRunner(cfg, model=FlakyModel({5}))
    runner.start()
    runner.wait()
    runner.stop()
    st = runner.status()
    assert st["state"] == "stopped" and st["error"] is None, st
    assert st["stages"]["inference"]["crashes"] == 1 and st["stages"]["inference"]["restarts"] == 1
    assert "injected fault in inspect call 5" in st["stages"]["inference"]["last_error"]
    src = st["source"]
    assert src["frames"] == 12 and src["failed"] == 1  # the frame it crashed on is counted, not lost
    assert st["results"]["PASS"] + st["results"]["FAIL"] == 11 == _committed(cfg.outbox)
    crash = [r for r in caplog.records if "stage inference crashed" in r.getMessage()]
    assert crash and crash[0].exc_info is not None  # logged with its traceback
    metrics = generate_latest(m.REGISTRY).decode()
    assert _metric(metrics, 'line_stage_crashes_total{stage="inference"}') >= 1
    assert _metric(metrics, 'line_stage_restarts_total{stage="inference"}') >= 1
    assert _metric(metrics, "line_frames_failed_total") >= 1


def _metric(text: str, name: str) -> float:
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")))


class _DyingSource(SimulatedLine):
    """A source whose read ends its thread (an exception the supervisor does not handle)."""

    def read(self, timeout):
        raise SystemExit("the capture thread is gone")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_stage_thread_is_never_reported_as_running(tmp_path):
    cfg = load_config(write_config(tmp_path / "s.toml", 'kind = "simulated"'))
    runner = LineRunner(cfg, source=_DyingSource(pool_size=8))
    runner.start()
    try:
        wait_for(lambda: not runner.supervisor.threads["capture"].is_alive(), 10, "the capture thread to end")
        st = runner.status()
    finally:
        runner.stop()
    assert st["state"] == "error" and "stage capture" in st["error"], st
    assert st["stages"]["capture"]["alive"] is False


def _run_station(tmp_path, env_extra: dict, preexec=None) -> tuple[subprocess.Popen, int, object]:
    port = free_port()
    cfg = write_config(tmp_path / "station.toml", 'kind = "simulated"\nrate = 20',
                       service_url="http://127.0.0.1:9", status_port=port)  # service down: nothing is pruned
    env = {**os.environ, **env_extra}
    proc = subprocess.Popen([*FAULTY_CLI, "run", "--config", str(cfg), "--duration", "90"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=preexec)
    return proc, port, tmp_path / "outbox.db"


def _watch_until_error(proc: subprocess.Popen, port: int) -> tuple[dict, float]:
    """Poll /status until it says error; that status and the wall-clock time it was first seen."""
    last: dict = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        st = line_status(port)
        if st is not None:
            last = st
            if st["state"] == "error":
                return st, time.time()
            assert st["state"] in ("starting", "running"), st
        time.sleep(0.02)
    raise AssertionError(f"status never said error; last status {last}; exit code {proc.poll()}")


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out


def _summary_counts(out: str) -> dict[str, int]:
    """From the last line `N PASS, M FAIL, d dropped, c corrupt, f failed of F frames; undelivered: ...`."""
    line = next(line for line in reversed(out.splitlines()) if " PASS, " in line)
    words = line.replace(",", " ").replace(";", " ").split()
    counts = {words[i + 1]: int(w) for i, w in enumerate(words[:-1]) if w.isdigit()}
    return counts


def test_a_model_failing_on_every_frame_stops_the_station_with_error(tmp_path):
    mark = tmp_path / "fault-at"
    proc, port, outbox = _run_station(tmp_path, {"INSPECTION_TEST_FAULT_FROM": "15",
                                                  "INSPECTION_TEST_FAULT_MARK": str(mark)})
    try:
        st, seen_at = _watch_until_error(proc, port)
    finally:
        code, out = _finish(proc)
    fault_at = float(mark.read_text())
    print(f"status said error {seen_at - fault_at:.2f} s after the first fault")
    assert seen_at - fault_at < 2.0, f"status said error {seen_at - fault_at:.2f} s after the fault"
    assert "stage inference" in st["error"] and "injected fault" in st["error"], st
    assert st["stages"]["inference"]["state"] == "failed" and st["stages"]["inference"]["crashes"] >= 3
    assert code == EXIT_LINE_ERROR, out
    assert "error: the station stopped: stage inference" in out
    n = _summary_counts(out)
    assert n["PASS"] + n["FAIL"] == _committed(outbox) == 14  # the 14 frames before the fault, all committed
    assert n["failed"] >= 3 and n["frames"] == n["PASS"] + n["FAIL"] + n["dropped"] + n["corrupt"] + n["failed"]


def _limit_file_size() -> None:
    """In the child: no file may grow past 1.5 MB (the outbox's write-ahead log reaches it after ~50 results);
    a write beyond fails with EFBIG, as on a full disk (Python ignores SIGXFSZ)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_500_000, 1_500_000))


def test_an_outbox_that_cannot_be_written_stops_the_station_with_error(tmp_path):
    proc, port, outbox = _run_station(tmp_path, {"INSPECTION_TEST_FAULT_FROM": "1000000"}, _limit_file_size)
    try:
        st, seen_at = _watch_until_error(proc, port)
    finally:
        code, out = _finish(proc)
    committed = _committed(outbox)
    db = sqlite3.connect(outbox)
    last_commit = db.execute("SELECT MAX(created) FROM outbox").fetchone()[0]
    db.close()
    assert committed >= 10, "the outbox should have taken results before it filled up"
    print(f"status said error {seen_at - last_commit:.2f} s after the last commit ({committed} committed)")
    assert seen_at - last_commit < 2.0, f"status said error {seen_at - last_commit:.2f} s after the last commit"
    assert "stage publish" in st["error"] and "cannot be written" in st["error"], st
    assert code == EXIT_LINE_ERROR, out
    n = _summary_counts(out)
    assert n["PASS"] + n["FAIL"] == committed  # what status counted as committed is what the outbox holds
    assert n["failed"] >= 1 and n["frames"] == n["PASS"] + n["FAIL"] + n["dropped"] + n["corrupt"] + n["failed"]


def test_inspection_run_goes_on_after_a_single_fault(tmp_path):
    mark = tmp_path / "fault-at"
    proc, port, _ = _run_station(tmp_path, {"INSPECTION_TEST_FAULT_FROM": "5", "INSPECTION_TEST_FAULT_ONLY": "1",
                                            "INSPECTION_TEST_FAULT_MARK": str(mark)})
    try:
        st = wait_for(lambda: (s := line_status(port)) and s["results"]["PASS"] + s["results"]["FAIL"] >= 20 and s,
                      60, "20 results after the fault")
        assert mark.exists() and st["state"] == "running", st
        assert st["stages"]["inference"]["restarts"] == 1 and st["source"]["failed"] == 1
        proc.send_signal(15)
    finally:
        code, out = _finish(proc)
    assert code == 0, out
