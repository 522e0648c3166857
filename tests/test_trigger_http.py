"""POST /trigger on the station's status port, and error results: a trigger while one is inspected is
answered BUSY and committed; bad bodies are refused naming what was wrong; nothing accepted is lost."""

from __future__ import annotations

import threading

import httpx
from trigger_support import GatedModel, TriggeredRunner, outbox_records, trigger_config

from inspection.line.outbox import Outbox
from inspection.plant.records import StationState


def _url(cfg) -> str:
    return f"http://127.0.0.1:{cfg.status.port}"


def _wait_ready(cfg) -> None:
    with httpx.Client(timeout=5) as client:
        for _ in range(600):
            if client.get(f"{_url(cfg)}/status").json()["trigger"]["state"] == "Ready":
                return
            threading.Event().wait(0.05)
    raise AssertionError("station never Ready")


def test_http_triggers_answered_with_their_results_in_order(tmp_path):
    cfg = trigger_config(tmp_path)
    with TriggeredRunner(cfg):
        _wait_ready(cfg)
        with httpx.Client(timeout=20) as client:
            answers = [client.post(f"{_url(cfg)}/trigger", json={"part_id": f"H-{i}"}) for i in range(20)]
    assert [a.status_code for a in answers] == [200] * 20
    body = [a.json() for a in answers]
    assert [b["sequence"] for b in body] == list(range(1, 21))
    assert [b["part_id"] for b in body] == [f"H-{i}" for i in range(20)]
    assert all(b["verdict"] in ("OK", "NG") and b["acknowledged"] and b["recipe_name"] == "flange" for b in body)
    records = outbox_records(cfg.outbox)
    assert [(r["trigger_sequence"], r["part_id"]) for r in records] == [(i + 1, f"H-{i}") for i in range(20)]
    assert [r["verdict"] == "PASS" for r in records] == [b["verdict"] == "OK" for b in body]
    assert [r["score"] for r in records] == [b["score"] for b in body]


def test_bad_http_triggers_refused_naming_the_problem_and_buffer_full(tmp_path):
    cfg = trigger_config(tmp_path, plant={"buffer_depth": 2})
    with TriggeredRunner(cfg):
        _wait_ready(cfg)
        with httpx.Client(timeout=20) as client:
            post = lambda **kw: client.post(f"{_url(cfg)}/trigger", **kw)  # noqa: E731
            not_json = post(content=b"{part")
            unknown = post(json={"part": "x"})
            too_long = post(json={"part_id": "x" * 40})
            kept = [post(json={"part_id": f"K-{i}", "acknowledge": False}) for i in range(2)]
            full = post(json={"part_id": "K-2"})
            still_full = post(json={})
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["message"]
    assert unknown.status_code == 400 and "part" in unknown.json()["message"]
    assert too_long.status_code == 400 and too_long.json()["error"] == "BAD_PART_ID"
    assert [k.status_code for k in kept] == [200, 200] and not any(k.json()["acknowledged"] for k in kept)
    assert full.status_code == 409 and full.json()["error"] == "BUFFER_FULL"
    assert still_full.status_code == 409 and still_full.json()["sequence"] == 5
    records = outbox_records(cfg.outbox)
    assert [r["part_id"] for r in records] == ["K-0", "K-1"], "the accepted triggers kept; refusals add nothing"


def test_trigger_while_busy_is_an_error_result_committed_to_the_outbox(tmp_path):
    cfg = trigger_config(tmp_path, service={"url": "http://127.0.0.1:9"})
    model = GatedModel()
    runner_ctx = TriggeredRunner(cfg)
    runner_ctx.runner = type(runner_ctx.runner)(cfg, flush_timeout=0.5, model=model)  # type: ignore[arg-type]
    with runner_ctx as runner:
        _wait_ready(cfg)
        core = runner.trigger_mode.plant.core
        first = core.trigger("P-1")
        assert model.started.wait(10)
        busy = core.trigger("P-2")
        model.gate.set()
        while (snap := core.snapshot()).state != StationState.READY:  # P-1 done: P-3 is not another BUSY
            assert core.wait_for_change(snap.version, 20), "P-1 never finished"
        with httpx.Client(timeout=20) as client:
            third = client.post(f"{_url(cfg)}/trigger", json={"part_id": "P-3", "acknowledge": False})
    assert (first.error.name, busy.error.name) == ("NONE", "BUSY")
    assert third.status_code == 200 and third.json()["sequence"] == 3
    records = outbox_records(cfg.outbox)
    assert [(r["trigger_sequence"], r.get("kind"), r["part_id"]) for r in sorted(
        records, key=lambda r: r["trigger_sequence"])] == [(1, None, "P-1"), (2, "trigger_error", "P-2"),
                                                           (3, None, "P-3")]
    assert next(r for r in records if r.get("kind"))["error"] == "BUSY"
    ob = Outbox(cfg.outbox, ("http",))
    try:
        rejected = ob.rejected("http")
    finally:
        ob.close()
    assert [e.inspection_id for e in rejected] == [next(r for r in records if r.get("kind"))["inspection_id"]]


def test_a_station_in_error_refuses_triggers_and_says_so(tmp_path):
    cfg = trigger_config(tmp_path)
    with TriggeredRunner(cfg) as runner, httpx.Client(timeout=20) as client:
        ok = client.post(f"{_url(cfg)}/trigger", json={"part_id": "before"})
        runner.fail("stage publish: outbox cannot be written (test)")
        refused = client.post(f"{_url(cfg)}/trigger", json={"part_id": "after"})
        status = client.get(f"{_url(cfg)}/status").json()
    assert ok.status_code == 200 and ok.json()["error"] == "NONE"
    assert refused.status_code == 503 and refused.json()["error"] == "NOT_READY"
    assert "outbox cannot be written" in refused.json()["message"]
    assert status["state"] == "error" and status["trigger"]["state"] == "Error"
    assert [r["part_id"] for r in outbox_records(cfg.outbox)] == ["before"], "what was committed is kept"
