"""Recipes from the service (issue 11 item 4): in trigger mode the service's assignment replaces the model of
the recipes whose model has the assigned name, between two triggers, while triggers keep coming; every result
names its recipe and model version. Against the real results service and the station's HTTP trigger."""

from __future__ import annotations

import itertools
import threading

import httpx
from assignment_support import ModelService, model_version
from line_support import wait_for
from trigger_support import TriggeredRunner, trigger_config

from inspection.model.shipped import default_model_path, demo_model_path


def _triggers(url: str, stop: threading.Event, answers: list) -> None:
    with httpx.Client(timeout=30) as client:
        for i in itertools.count():
            if stop.is_set():
                return
            res = client.post(f"{url}/trigger", json={"part_id": f"R-{i}"})
            answers.append((res.status_code, res.json()))


def test_the_assignment_switches_a_recipes_model_between_two_triggers(tmp_path):
    service = ModelService(tmp_path / "service")
    service.start()
    try:
        flange2 = model_version(default_model_path(), tmp_path / "flange2.onnx", "2")
        plate2 = model_version(demo_model_path("knurled_plate"), tmp_path / "plate2.onnx", "2")
        f2, p2 = service.upload(flange2), service.upload(plate2)
        cfg = trigger_config(
            tmp_path, plant={"recipes": {"1": {"name": "flange"},
                                         "2": {"name": "plate", "model": str(demo_model_path("knurled_plate"))}}},
            service={"url": service.url, "token": service.edge},
            assignment={"enabled": True, "poll_interval_s": 0.2, "cache_dir": str(tmp_path / "models")})
        answers: list = []
        stop = threading.Event()
        with TriggeredRunner(cfg) as runner:
            runner.flush_timeout = 60
            core, judges = runner.trigger_mode.plant.core, runner.judges
            feeder = threading.Thread(target=_triggers, args=(f"http://127.0.0.1:{cfg.status.port}", stop, answers))
            feeder.start()
            try:
                wait_for(lambda: len(answers) >= 10, 60, "triggers before the assignment")
                service.assign("demo_flange", "2")  # the name of recipe 1's model: recipe 1 takes it
                wait_for(lambda: judges.for_recipe(1).live.info.sha256 == f2["sha256"], 60, "recipe 1 swapped")
                assert judges.for_recipe(2).live is judges.base[2]  # the plate recipe keeps its model
                at = len(answers)
                wait_for(lambda: len(answers) >= at + 10, 60, "triggers after the swap")
                core.select_recipe(2)  # as the PLC would (Modbus / OPC UA)
                at = len(answers)
                wait_for(lambda: len(answers) >= at + 10, 60, "triggers of recipe 2")
                service.assign("demo_knurled_plate", "2")  # the plate's name: recipe 2; recipe 1 back to its own
                wait_for(lambda: judges.for_recipe(2).live.info.sha256 == p2["sha256"], 60, "recipe 2 swapped")
                assert judges.for_recipe(1).live is judges.base[1]
                at = len(answers)
                wait_for(lambda: len(answers) >= at + 10, 60, "triggers after the second swap")
            finally:
                stop.set()
                feeder.join(timeout=60)
        status = runner.status()
        assert [code for code, _ in answers] == [200] * len(answers)
        body = [b for _, b in answers]
        assert [b["sequence"] for b in body] == list(range(1, len(body) + 1))  # every trigger answered, in order
        assert all(b["verdict"] in ("OK", "NG") and b["error"] == "NONE" for b in body), body
        seen = [(b["recipe_name"], b["model_version"]) for b in body]
        assert [k for k, _ in itertools.groupby(seen)] == [
            ("flange", "demo_flange 1"), ("flange", "demo_flange 2"), ("plate", "demo_knurled_plate 1"),
            ("plate", "demo_knurled_plate 2")]
        stored = {r["trigger_sequence"]: r for r in service.results()}
        assert sorted(stored) == [b["sequence"] for b in body]  # every result delivered, once
        for b in body:  # the record names the same recipe and model as the answer to the PLC
            r = stored[b["sequence"]]
            assert (r["recipe"], f"{r['model']['name']} {r['model']['version']}") == (b["recipe_name"],
                                                                                      b["model_version"])
        assert status["assignment"]["running"]["2"]["version"] == "2" and status["trigger"]["recipe"] == 2
    finally:
        service.stop()


def test_shadow_verdicts_of_triggered_inspections_are_recorded(tmp_path):
    from trigger_support import outbox_records

    from inspection.line.assignment_models import Judge, with_threshold
    from inspection.model.runtime import InspectionModel

    cfg = trigger_config(tmp_path)
    candidate = InspectionModel.load(model_version(default_model_path(), tmp_path / "v2.onnx", "2", threshold=0.4))
    with TriggeredRunner(cfg) as runner:
        core, judges = runner.trigger_mode.plant.core, runner.judges
        first = core.trigger("S-0")
        wait_for(lambda: core.snapshot().presented, 30, "the first result")
        core.acknowledge(first.sequence)
        live = judges.for_recipe(1).live
        judges.swap({1: Judge(with_threshold(live, 0.45), "assignment", shadow=candidate)})  # as the poller does
        for i in range(1, 6):
            t = core.trigger(f"S-{i}")
            wait_for(lambda t=t: core.snapshot().presented and core.snapshot().presented.sequence == t.sequence,
                     30, f"result {i}")
            core.acknowledge(t.sequence)
    records = {r["part_id"]: r for r in outbox_records(cfg.outbox)}
    assert records["S-0"]["shadow"] is None and records["S-0"]["threshold"] == live.meta.threshold
    for i in range(1, 6):
        r = records[f"S-{i}"]
        assert r["threshold"] == 0.45 and r["recipe"] == "flange" and r["trigger_sequence"] == i + 1
        assert r["shadow"]["model"]["version"] == "2" and r["shadow"]["threshold"] == 0.4
        assert r["shadow"]["verdict"] == ("FAIL" if r["shadow"]["score"] > 0.4 else "PASS")
