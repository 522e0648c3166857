"""The line runner follows the results service's model assignment (issue 10 item 5), against the real service
in its own process: the swap while the simulated line runs at 20 parts/s (no frame dropped, every result
naming the model that judged it, rollback back), a SHA-256 mismatch refused, the service down at start
(the cached assignment runs), threshold override and shadow mode."""

from __future__ import annotations

import itertools
import logging

import pytest
from assignment_support import ModelService, assignment_config, model_version
from line_support import wait_for
from trigger_support import outbox_records

from inspection.line.config import load_config
from inspection.line.outbox import Outbox
from inspection.line.runner import LineRunner
from inspection.model.metadata import read_metadata
from inspection.model.shipped import default_model_path

V1 = default_model_path()  # demo_flange 1: what the station's config runs


@pytest.fixture
def service(tmp_path):
    svc = ModelService(tmp_path / "service")
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


def _committed(runner: LineRunner) -> int:
    return runner.counters.passed + runner.counters.rejected_parts


def _running_sha(runner: LineRunner) -> str:
    return runner.running_model().info.sha256


def _runs(values: list) -> list:
    """Consecutive duplicates collapsed: [1, 1, 2, 2, 1] -> [1, 2, 1]."""
    return [v for v, _ in itertools.groupby(values)]


def test_swap_and_rollback_while_the_line_runs_at_20_parts_per_second(tmp_path, service):
    v2 = model_version(V1, tmp_path / "v2.onnx", "2", threshold=read_metadata(V1).threshold * 0.9)
    m1, m2 = service.upload(V1), service.upload(v2)
    service.assign("demo_flange", "1")  # the model the station already runs: nothing to download
    cfg = load_config(assignment_config(tmp_path, service.url, service.edge,
                                        'kind = "simulated"\nrate = 20\nqueue_size = 32\ndefect_rate = 0.3'))
    runner = LineRunner(cfg, flush_timeout=60)
    runner.start()
    try:
        wait_for(lambda: runner.assignment and runner.assignment.applied, 30, "the first assignment")
        for target, assign in ((m2, lambda: service.assign("demo_flange", "2")), (m1, service.rollback)):
            at = _committed(runner)
            wait_for(lambda at=at: _committed(runner) >= at + 20, 60, "20 results before the swap")
            assign()
            wait_for(lambda t=target: _running_sha(runner) == t["sha256"], 60, f"the swap to {target['version']}")
        at = _committed(runner)
        wait_for(lambda: _committed(runner) >= at + 20, 60, "20 results after the rollback")
    finally:
        runner.stop()
    st = runner.status()
    src = st["source"]
    assert (src["dropped"], src["failed"], src["corrupt"]) == (0, 0, 0), src
    assert src["frames"] == _committed(runner) >= 60
    box = Outbox(cfg.outbox)
    assert box.stats()["http"].depth == 0  # all delivered
    box.close()
    results = sorted(service.results(), key=lambda r: r["part_id"])
    numbers = [int(r["part_id"].rsplit("-", 1)[1]) for r in results]
    assert numbers == list(range(1, src["frames"] + 1))  # every frame produced has exactly one result
    models = {"1": (m1["sha256"], read_metadata(V1).threshold), "2": (m2["sha256"], read_metadata(v2).threshold)}
    for r in results:  # never mixed: the digest and the threshold are those of the version named
        assert (r["model"]["sha256"], r["threshold"]) == models[r["model"]["version"]], r
    assert _runs([r["model"]["version"] for r in results]) == ["1", "2", "1"]
    assert st["assignment"]["swaps"] == 2 and st["assignment"]["in_sync"] and st["assignment"]["last_error"] is None


def test_a_model_whose_sha256_does_not_match_is_refused_and_the_running_one_stays(tmp_path, service, caplog):
    v2 = model_version(V1, tmp_path / "v2.onnx", "2")
    m2 = service.upload(v2)
    stored = next((tmp_path / "service").rglob(f"{m2['sha256']}.onnx"))
    data = bytearray(stored.read_bytes())
    data[-10] ^= 0xFF  # the service's copy damaged on its disk (or in transit)
    stored.write_bytes(bytes(data))
    cfg = load_config(assignment_config(tmp_path, service.url, service.edge, 'kind = "simulated"\nrate = 20',
                                        extra=""))
    runner = LineRunner(cfg, flush_timeout=30)
    caplog.set_level(logging.INFO)
    runner.start()
    try:
        wait_for(lambda: _committed(runner) >= 5, 30, "results")
        service.assign("demo_flange", "2")
        st = wait_for(lambda: (s := runner.status())["assignment"]["last_error"] and s, 30, "the refusal")
        at = _committed(runner)
        wait_for(lambda: _committed(runner) >= at + 10, 30, "results after the refusal")
    finally:
        runner.stop()
    error = st["assignment"]["last_error"]
    assert "demo_flange 2" in error and "SHA-256" in error and m2["sha256"] in error and "refused" in error
    assert st["assignment"]["assigned"]["model"]["version"] == "2" and not st["assignment"]["in_sync"]
    assert st["model"]["version"] == "1" and st["state"] == "running"
    assert {r["model"]["version"] for r in service.results()} == {"1"}  # nothing judged by the damaged file
    assert list((tmp_path / "models").glob("*.onnx")) == []  # the download was deleted, no temp file left
    assert "SHA-256" in caplog.text and service.edge not in caplog.text


def test_service_down_at_start_runs_the_cached_assignment_then_catches_up(tmp_path, service, caplog):
    v2 = model_version(V1, tmp_path / "v2.onnx", "2", threshold=0.5)
    m2 = service.upload(v2)
    service.assign("demo_flange", "2")
    cfg = load_config(assignment_config(tmp_path, service.url, service.edge, 'kind = "simulated"\nrate = 20'))
    runner = LineRunner(cfg, flush_timeout=30)
    runner.start()
    try:
        wait_for(lambda: _running_sha(runner) == m2["sha256"], 60, "the assigned model")
    finally:
        runner.stop()
    service.stop()

    caplog.set_level(logging.INFO)
    restarted = LineRunner(cfg, flush_timeout=1)
    assert _running_sha(restarted) == m2["sha256"]  # from the cache, before the first frame
    restarted.start()
    try:
        wait_for(lambda: _committed(restarted) >= 10, 30, "results while the service is down")
        st = wait_for(lambda: (s := restarted.status())["assignment"]["last_error"] and s, 30, "a poll error")
        assert st["state"] == "running" and st["model"]["version"] == "2"
        assert "127.0.0.1" in st["assignment"]["last_error"] and st["assignment"]["applied"]["model"]["version"] == "2"
        waiting = outbox_records(cfg.outbox)  # the service is down: nothing delivered, nothing pruned yet
        service.start()  # back on the same port: the poller catches up by itself
        wait_for(lambda: restarted.status()["assignment"]["last_success_at"], 60, "a poll after the outage")
        assert restarted.status()["assignment"]["last_error"] is None
    finally:
        restarted.stop()
    # every result of the restarted runner judged by the cached model
    assert len(waiting) >= 10 and {r["model"]["version"] for r in waiting} == {"2"}
    assert service.edge not in caplog.text and service.edge not in str(st)


def test_threshold_override_without_reload_and_shadow_mode(tmp_path, service):
    v2 = model_version(V1, tmp_path / "v2.onnx", "2", threshold=0.3)
    service.upload(V1)
    m2 = service.upload(v2)
    cfg = load_config(assignment_config(tmp_path, service.url, service.edge, 'kind = "simulated"\nrate = 20'))
    runner = LineRunner(cfg, flush_timeout=60)
    session = runner.running_model().session
    runner.start()
    try:
        service.assign("demo_flange", "1", threshold=0.45, shadow=("demo_flange", "2"))
        wait_for(lambda: runner.running_model().threshold == 0.45, 30, "the threshold override")
        at = _committed(runner)
        wait_for(lambda: _committed(runner) >= at + 20, 60, "results in shadow mode")
    finally:
        runner.stop()
    assert runner.running_model().session is session  # the threshold applied to the loaded model, no reload
    st = runner.status()["assignment"]
    assert st["running"]["0"]["threshold_source"] == "assignment" and st["running"]["0"]["shadow"]["version"] == "2"
    assert st["shadow_ms"] > 0 and st["frame_interval_ms"] > 0 and isinstance(st["shadow_over_budget"], bool)
    shadowed = [r for r in service.results() if r.get("shadow")]
    assert len(shadowed) >= 20
    for r in shadowed:  # judged by v1 at the override; v2 beside it with its own threshold, not acted on
        assert r["model"]["version"] == "1" and r["threshold"] == 0.45
        assert r["verdict"] == ("FAIL" if r["score"] > 0.45 else "PASS")
        s = r["shadow"]
        assert s["model"] == {"name": "demo_flange", "version": "2", "sha256": m2["sha256"]} and s["threshold"] == 0.3
        assert s["verdict"] == ("FAIL" if s["score"] > 0.3 else "PASS")
        assert abs(s["score"] - r["score"]) < 1e-4  # the same graph, the same frame


def test_a_threshold_applied_on_the_thresholds_page_reaches_the_running_station(tmp_path, service):
    cfg = load_config(assignment_config(tmp_path, service.url, service.edge, 'kind = "simulated"\nrate = 20'))
    runner = LineRunner(cfg, flush_timeout=60)
    runner.start()
    try:
        wait_for(lambda: _committed(runner) >= 10, 30, "results with the model's own threshold")
        service.apply_threshold(0.5)  # no model assigned on the service: the threshold of the running model
        wait_for(lambda: runner.running_model().threshold == 0.5, 30, "the applied threshold")
        at = _committed(runner)
        wait_for(lambda: _committed(runner) >= at + 10, 30, "results after it")
    finally:
        runner.stop()
    own = read_metadata(V1).threshold
    thresholds = [r["threshold"] for r in sorted(service.results(), key=lambda r: r["part_id"])]
    assert _runs(thresholds) == [own, 0.5]  # from one frame to the next, never back
    assert runner.status()["assignment"]["running"]["0"]["threshold_source"] == "assignment"
