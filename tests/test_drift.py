"""Score drift: the rolling window against the model's good scores, and the line runner reporting it in
/status, /metrics and MQTT when the simulated camera's brightness changes."""

from __future__ import annotations

import json
import threading
import time

import httpx
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from line_support import line_status, wait_for, write_config
from service_support import STATION, free_port, need_service

from inspection.line.config import load_config
from inspection.line.drift import DriftMonitor, ks_distance
from inspection.line.runner import LineRunner
from inspection.model.calibration import score_stats
from inspection.model.metadata import ScoreStats
from inspection.model.shipped import default_model_path


def _good(n: int = 30, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(1.0, 0.1, n)


def _fed(stats: ScoreStats, scores: np.ndarray, threshold: float = 1.3) -> DriftMonitor:
    d = DriftMonitor(stats, threshold, min_count=30)
    for s in scores:
        d.add("PASS" if s <= threshold else "FAIL", float(s))
    return d


def test_same_distribution_stays_low_and_a_shift_is_flagged():
    stats = score_stats(_good())
    assert stats.quantiles is not None and len(stats.quantiles) == 21
    same = _fed(stats, _good(300, seed=1)).status()
    assert same.reference == "quantiles" and same.count + same.failed == 300
    assert same.ks is not None and same.ks_critical is not None and same.ks < same.ks_critical
    assert not same.drifting and abs(same.median_z or 0) < 2.58 and abs(same.mean_shift or 0) < 0.5
    shifted = _fed(stats, _good(300, seed=2) + 0.1).status()  # one good std up
    assert shifted.drifting and shifted.median_z is not None and shifted.median_z > 5
    assert shifted.ks is not None and shifted.ks > same.ks and shifted.mean_shift is not None
    assert shifted.mean_shift > 0.5 and shifted.failed > same.failed


def test_ks_distance_is_the_largest_cdf_gap():
    uniform = lambda x: np.clip(x, 0, 1)  # noqa: E731
    assert ks_distance(np.array([0.5]), uniform) == pytest.approx(0.5)
    assert ks_distance(np.linspace(0.0005, 0.9995, 1000), uniform) < 0.002
    assert ks_distance(np.full(10, 0.9), uniform) == pytest.approx(0.9)


def test_older_models_without_quantiles_use_mean_and_std():
    stats = score_stats(_good()).model_copy(update={"quantiles": None})
    st = _fed(stats, _good(100, seed=3)).status()
    assert st.reference == "normal" and st.ks is not None and not st.drifting


def test_too_few_parts_give_no_figures_and_old_scores_leave_the_window():
    now = [0.0]
    d = DriftMonitor(score_stats(_good()), 1.3, window_s=10, min_count=30, clock=lambda: now[0])
    for s in _good(29, seed=4):
        d.add("PASS", float(s))
    st = d.status()
    assert st.count == 29 and st.ks is None and st.median_z is None and not st.drifting
    for s in _good(31, seed=5) + 0.3:
        d.add("PASS", float(s))
    assert d.status().drifting
    now[0] = 11.0  # everything is older than the window
    assert d.status().count == 0
    with pytest.raises(ValueError, match="min_count"):
        DriftMonitor(score_stats(_good()), 1.3, min_count=1)


def _run_line(tmp_path, model, gain: float, parts: int = 150, mqtt_host: str | None = None) -> tuple[dict, str]:
    port = free_port()
    tmp_path.mkdir(parents=True, exist_ok=True)
    extra = "\n[drift]\nmin_count = 30\npublish_s = 0.2\n"
    cfg_path = write_config(tmp_path / "station.toml", 'kind = "simulated"\nrate = 100\nqueue_size = 1000',
                            mqtt_host=mqtt_host, status_port=port, extra=extra)
    cfg_path.write_text(cfg_path.read_text().replace(str(default_model_path()), str(model)))
    runner = LineRunner(load_config(cfg_path))
    runner.source.gain = gain  # type: ignore[attr-defined]  # the simulated line's brightness
    runner.start()
    try:
        wait_for(lambda: (s := line_status(port)) and s["results"]["PASS"] + s["results"]["FAIL"] >= parts, 120,
                 f"{parts} inspected parts")
        status = line_status(port)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    finally:
        runner.stop()
    assert status is not None
    return status, metrics


def _gauge(metrics: str, name: str) -> float:
    line = next(x for x in metrics.splitlines() if x.startswith(name + " "))
    return float(line.split()[1])


def test_the_line_reports_drift_when_the_camera_gets_brighter(tmp_path, small_model):
    steady, steady_metrics = _run_line(tmp_path / "steady", small_model, gain=1.0)
    d = steady["drift"]
    assert d["reference"] == "quantiles" and d["count"] >= 30, d
    assert not d["drifting"] and abs(d["median_z"]) < 2.58 and d["ks"] < d["ks_critical"], d
    assert _gauge(steady_metrics, "line_score_drifting") == 0
    assert _gauge(steady_metrics, "line_score_drift_median_z") == pytest.approx(d["median_z"], abs=2)
    brighter, metrics = _run_line(tmp_path / "brighter", small_model, gain=1.2)
    b = brighter["drift"]
    assert b["drifting"] and b["median_z"] > 2.58 and b["median_z"] > d["median_z"] + 2, (d, b)
    assert _gauge(metrics, "line_score_drifting") == 1 and _gauge(metrics, "line_score_drift_median_z") > 2.58


def test_drift_figures_are_retained_on_mqtt(tmp_path, small_model):
    need_service("mosquitto", "127.0.0.1", 1883)
    seen: list[dict] = []
    got = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"drift-test-{time.monotonic_ns()}")

    def on_message(_c, _u, msg):
        seen.append(json.loads(msg.payload))
        if seen[-1]["count"] + seen[-1]["failed"] >= 30:
            got.set()

    client.on_message = on_message
    client.connect("127.0.0.1", 1883)
    client.subscribe(f"test/{STATION}/status/drift", qos=1)
    client.loop_start()
    try:
        _run_line(tmp_path, small_model, gain=1.0, parts=60, mqtt_host="127.0.0.1")
        assert got.wait(10), seen[-3:]
    finally:
        client.loop_stop()
        client.disconnect()
    last = seen[-1]
    assert {"ks", "ks_critical", "median_z", "mean_shift", "drifting", "window_s"} <= set(last)


def test_a_new_model_judging_starts_a_new_drift_window(tmp_path):
    from types import SimpleNamespace

    from inspection.line.assignment_models import FREE_RUNNING, Judge
    from inspection.model.runtime import InspectionModel
    from inspection.model.shipped import demo_model_path

    runner = LineRunner(load_config(write_config(tmp_path / "s.toml", 'kind = "simulated"')))
    old = runner.model
    for score in (0.60, 0.62, 0.64):
        runner._on_record(SimpleNamespace(model=old.info, verdict="PASS", score=score))
    assert runner.drift.status().count == 3
    runner._on_record(SimpleNamespace(error="BUSY"))  # a trigger error record has no score: not counted
    assert runner.drift.status().count == 3
    new = InspectionModel.load(demo_model_path("knurled_plate"))
    runner.judges.swap({FREE_RUNNING: Judge(new)})
    runner._on_record(SimpleNamespace(model=old.info, verdict="PASS", score=0.6))  # judged before the swap
    st = runner.drift.status()
    assert st.count == 0 and st.reference_count == new.meta.good_scores.count
    runner._on_record(SimpleNamespace(model=new.info, verdict="FAIL", score=9.0))
    assert runner.drift.status().failed == 1
