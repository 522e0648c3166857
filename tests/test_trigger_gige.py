"""Trigger mode with a software-triggered GigE Vision camera (Aravis' simulated camera on loopback): each
PLC trigger fires one software trigger, so the camera grabs one frame per part instead of free-running."""

from __future__ import annotations

import httpx
from gige_support import CAMERA_ID
from test_trigger_http import _url, _wait_ready
from trigger_support import TriggeredRunner, outbox_records, trigger_config

from inspection.model.shipped import default_model_path


def test_each_trigger_fires_one_software_trigger_on_the_gige_camera(tmp_path, fake_camera):
    cfg = trigger_config(tmp_path, source={"kind": "gige", "camera_id": CAMERA_ID, "trigger": "software"},
                         model={"path": str(default_model_path())})
    with TriggeredRunner(cfg) as runner:
        _wait_ready(cfg)
        with httpx.Client(timeout=20) as client:
            answers = [client.post(f"{_url(cfg)}/trigger", json={"part_id": f"G-{i}"}).json() for i in range(10)]
        source = runner.snapshot().source
    assert [a["sequence"] for a in answers] == list(range(1, 11))
    assert all(a["error"] == "NONE" for a in answers), answers
    assert source.frames == 11 and source.dropped == 1, "one frame per trigger, after one to show it works"
    records = outbox_records(cfg.outbox)
    assert [r["trigger_sequence"] for r in records] == list(range(1, 11))
    assert all(r["source"].startswith(f"gige {CAMERA_ID}#") for r in records)
