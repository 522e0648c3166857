"""Trigger mode's counters in the runner's Prometheus /metrics: triggers, OK, NG, errors, missed (error
results), refused, buffer-full refusals, ack errors and the processing time min/mean/max, the same figures
as /status shows."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from trigger_support import GatedModel, TriggeredRunner, trigger_config

from inspection.line.runner import LineRunner
from inspection.plant.records import ErrorCode, HandshakeError


def _scrape(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            stat = sample.labels.get("stat")
            values[sample.name + (f"{{{stat}}}" if stat else "")] = sample.value
    return values


def test_trigger_counters_are_in_metrics_and_agree_with_status(tmp_path):
    cfg = trigger_config(tmp_path, plant={"buffer_depth": 2})
    model = GatedModel()
    ctx = TriggeredRunner(cfg)
    ctx.runner = LineRunner(cfg, flush_timeout=0.5, model=model)  # type: ignore[arg-type]
    with ctx as runner:
        assert runner.trigger_mode is not None
        core = runner.trigger_mode.plant.core
        first = core.trigger("M-1")
        assert model.started.wait(10)
        busy = core.trigger("M-2")  # while M-1 is inspected: an error result (missed)
        model.gate.set()
        while (snap := core.snapshot()).last is None or snap.last.sequence != 1:
            assert core.wait_for_change(snap.version, 20), "M-1 never finished"
        full = core.trigger("M-3")  # two results unacknowledged, depth 2: refused
        with pytest.raises(HandshakeError):
            core.acknowledge(999)  # unknown sequence number
        with pytest.raises(HandshakeError):
            core.acknowledge(2)  # not the presented one
        core.acknowledge(1)
        core.acknowledge(2)
        metrics = _scrape(cfg.status.port)
        status = httpx.get(f"http://127.0.0.1:{cfg.status.port}/status", timeout=10).json()["trigger"]["counters"]
    assert (first.error, busy.error, full.error) == (ErrorCode.NONE, ErrorCode.BUSY, ErrorCode.BUFFER_FULL)
    assert metrics["line_triggers_total"] == 3
    assert metrics["line_trigger_ok_total"] + metrics["line_trigger_ng_total"] == 1
    assert metrics["line_trigger_missed_total"] == 1
    assert metrics["line_trigger_refused_total"] == 1
    assert metrics["line_trigger_buffer_full_refusals_total"] == 1
    assert metrics["line_trigger_errors_total"] == 2
    assert metrics["line_trigger_ack_errors_total"] == 2
    low, mean, high = (metrics[f"line_trigger_processing_seconds{{{s}}}"] for s in ("min", "mean", "max"))
    assert 0 < low <= mean <= high < 30
    for key, name in (("triggers", "line_triggers_total"), ("ok", "line_trigger_ok_total"),
                      ("ng", "line_trigger_ng_total"), ("missed", "line_trigger_missed_total"),
                      ("buffer_full", "line_trigger_buffer_full_refusals_total"),
                      ("ack_errors", "line_trigger_ack_errors_total")):
        assert status[key] == metrics[name], key
    assert status["processing_ms_max"] == pytest.approx(high * 1e3, abs=1e-3)
