"""The freshest-frame rule of trigger mode: a trigger takes the first frame captured after it, never an older
one, and each frame at most once; no frame in time is a CameraError (an error result for the PLC)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

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
