"""The freshest-frame rule of trigger mode: a trigger takes the first frame captured after it, never an older
one, and each frame at most once; no frame in time is a CameraError (an error result for the PLC). A
software-triggered camera grabs one frame per trigger."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from trigger_support import TriggeredRunner, outbox_records, trigger_config

from inspection.line.triggered import FreshestFrame
from inspection.plant.records import CameraError
from inspection.sources.frame import Frame


def _frame(i: int, at: datetime) -> Frame:
    return Frame(i, at, f"f{i}")


def test_a_frame_older_than_the_trigger_is_not_taken():
    frames = FreshestFrame()
    t = datetime.now(UTC)
    assert frames.put(_frame(1, t - timedelta(milliseconds=5))) is None
    later = _frame(2, t + timedelta(milliseconds=1))
    got: list[Frame] = []
    taker = threading.Thread(target=lambda: got.append(frames.take_after(t, timeout=5)))
    taker.start()
    old = frames.put(later)
    taker.join(5)
    assert old is not None and old.frame_id == 1, "the older frame is handed back to be counted dropped"
    assert [f.frame_id for f in got] == [2]


def test_each_frame_is_taken_once_and_a_missing_frame_is_a_camera_error():
    frames = FreshestFrame()
    t = datetime.now(UTC)
    frames.put(_frame(1, t))
    assert frames.take_after(t, timeout=1).frame_id == 1
    with pytest.raises(CameraError, match=r"no frame captured within 0\.05 s"):
        frames.take_after(t, timeout=0.05)


def test_stopped_capture_wakes_a_waiting_trigger():
    frames = FreshestFrame()
    errors: list[Exception] = []

    def take() -> None:
        try:
            frames.take_after(datetime.now(UTC), timeout=30)
        except CameraError as exc:
            errors.append(exc)

    taker = threading.Thread(target=take)
    taker.start()
    left = frames.close()
    taker.join(5)
    assert not taker.is_alive() and left is None
    assert [str(e) for e in errors] == ["capture has stopped"]


def test_a_software_triggered_simulated_camera_grabs_one_frame_per_trigger(tmp_path):
    cfg = trigger_config(tmp_path, source={"kind": "simulated", "trigger": "software", "rate": 1})
    with TriggeredRunner(cfg) as runner, httpx.Client(timeout=20) as client:
        t0 = time.monotonic()
        answers = [client.post(f"http://127.0.0.1:{cfg.status.port}/trigger", json={"part_id": f"S-{i}"}).json()
                   for i in range(10)]
        elapsed = time.monotonic() - t0
        source = runner.snapshot().source
    assert [a["sequence"] for a in answers] == list(range(1, 11))
    assert all(a["error"] == "NONE" for a in answers), answers
    assert source.frames == 11 and source.dropped == 1, "one frame per trigger, after one to show it works"
    assert elapsed < 9, "free-running at rate = 1/s would have taken about 10 s: the frames came at the trigger"
    records = outbox_records(cfg.outbox)
    assert [r["trigger_sequence"] for r in records] == list(range(1, 11))
