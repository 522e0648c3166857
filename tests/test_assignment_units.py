"""The pieces of the model assignment that need no service: the [assignment] section's validation, the
judges' swap, threshold views, and the refusals of the client (a download URL off the service)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from service_support import STATION

from inspection.line.assignment_client import AssignedModel, AssignmentClient, AssignmentError
from inspection.line.assignment_models import FREE_RUNNING, Judge, Judges, valid_threshold, with_threshold
from inspection.line.config import ConfigError, parse_config
from inspection.model.runtime import InspectionModel
from inspection.model.shipped import default_model_path, demo_model_path

STATION_KEYS = dict(zip(("site", "area", "line", "cell", "station"), STATION.split("/"), strict=True))


def test_assignment_section_errors_name_the_key():
    base = {"station": STATION_KEYS, "service": {"url": "http://127.0.0.1:9"}}
    assert not parse_config(base, "t").assignment.enabled  # off by default
    cfg = parse_config(base | {"assignment": {"enabled": True}}, "t").assignment
    assert (cfg.poll_interval_s, str(cfg.cache_dir)) == (10.0, "runs/models")
    for bad, message in [({"poll_interval_s": 0}, "assignment.poll_interval_s: Input should be greater than 0"),
                         ({"poll_interval_s": "soon"}, "assignment.poll_interval_s: Input should be a valid number"),
                         ({"every": 3}, "assignment.every: unknown key"),
                         ({"max_model_mb": -1}, "assignment.max_model_mb: Input should be greater than 0")]:
        with pytest.raises(ConfigError) as err:
            parse_config(base | {"assignment": bad}, "station.toml")
        assert message in str(err.value), str(err.value)
    with pytest.raises(ConfigError, match=r"assignment\.enabled: .* results service \(service\.url\)"):
        parse_config({"station": STATION_KEYS, "assignment": {"enabled": True}}, "t")


def test_a_threshold_view_shares_the_session_and_leaves_the_model_alone():
    model = InspectionModel.load(default_model_path())
    view = with_threshold(model, 0.01)
    assert view.session is model.session and view.info == model.info  # no reload
    assert view.threshold == 0.01 and model.threshold == model.meta.threshold
    image = np.full((256, 256, 3), 128, np.uint8)
    strict, own = view.inspect(image), model.inspect(image)
    assert strict.score == own.score and strict.threshold == 0.01 and strict.verdict == "FAIL"
    assert with_threshold(view, None).threshold == model.meta.threshold  # None: the model's own again


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, "0.5", True])
def test_a_threshold_that_is_not_a_finite_positive_number_is_refused(bad):
    with pytest.raises(ValueError, match="is not a finite positive number"):
        valid_threshold(bad)


def test_judges_swap_between_frames_and_keep_the_other_recipes():
    flange, plate = InspectionModel.load(default_model_path()), InspectionModel.load(demo_model_path("knurled_plate"))
    judges = Judges({1: flange, 2: plate})
    held = judges.for_recipe(1)  # a frame in flight holds its judge
    old = judges.swap({1: Judge(with_threshold(flange, 0.2), "assignment", shadow=plate)})
    assert held.live is flange and old[1] is held  # the frame in flight keeps its model and threshold
    now = judges.for_recipe(1)
    assert now.live.threshold == 0.2 and now.shadow is plate and judges.for_recipe(2).live is plate
    assert judges.swaps == 1 and judges.base[1] is flange
    with pytest.raises(KeyError, match=r"no such recipe: \[7\]"):
        judges.swap({7: Judge(flange)})
    with pytest.raises(TypeError):
        judges.current[1] = Judge(flange)  # type: ignore[index]  # read-only: swapped only as a whole
    result, shadow = now.inspect(np.full((256, 256, 3), 128, np.uint8), "part", judges.cost)
    assert shadow is not None and shadow.model == plate.info and shadow.threshold == plate.threshold
    assert result.model == flange.info and result.threshold == 0.2
    assert Judges({FREE_RUNNING: flange}).for_recipe().live is flange


def test_the_token_is_never_sent_off_the_service(tmp_path):
    client = AssignmentClient("http://127.0.0.1:9/base", "insp_secret", STATION, tmp_path)
    ref = AssignedModel(name="demo_flange", version="2", sha256="a" * 64, download_url="http://evil.example/x")
    with pytest.raises(AssignmentError, match="is not on the results service") as err:
        client.download(ref, tmp_path / "x.onnx")
    assert "insp_secret" not in str(err.value)
    ok = AssignedModel(name="demo flange", version="2/x", sha256="a" * 64)
    assert client._file_url(ok) == "http://127.0.0.1:9/base/api/v1/models/demo%20flange/2%2Fx/file"
    assert client._file_url(ok.model_copy(update={"download_url": "/api/v1/models/a/2/file"})) == (
        "http://127.0.0.1:9/api/v1/models/a/2/file")
    assert not list(tmp_path.iterdir())  # nothing written
    client.close()


def test_the_shadow_cost_is_measured_against_the_sources_pace():
    from inspection.line.assignment_models import ShadowCost

    cost = ShadowCost()
    cost.observe(20.0, 20.0, at=100.0, count=10)
    assert cost.interval_ms is None and not cost.over_budget()  # one frame: no pace yet
    cost.observe(20.0, 20.0, at=101.0, count=30)  # 20 frames in one second (some dropped): 50 ms a frame
    assert cost.interval_ms == pytest.approx(50.0) and not cost.over_budget()  # 40 ms of work fits
    slow = ShadowCost()
    for i in range(3):
        slow.observe(30.0, 30.0, at=100.0 + i * 0.05, count=i + 1)  # 60 ms of work, a frame every 50 ms
    assert slow.over_budget() and slow.interval_ms == pytest.approx(50.0)


def test_no_service_and_no_cache_at_start_runs_the_configured_model_and_says_why(tmp_path, caplog):
    import logging

    from line_support import wait_for
    from service_support import free_port

    from inspection.line.runner import LineRunner

    secret = "insp_edge-secret-token"
    cfg = parse_config({"station": STATION_KEYS, "outbox": str(tmp_path / "outbox.db"),
                        "source": {"kind": "simulated", "rate": 20}, "images": {"dir": str(tmp_path / "img")},
                        "status": {"port": 0},
                        "service": {"url": f"http://127.0.0.1:{free_port()}", "token": secret},
                        "assignment": {"enabled": True, "poll_interval_s": 0.1, "cache_dir": str(tmp_path / "m")}},
                       "t")
    caplog.set_level(logging.DEBUG)
    runner = LineRunner(cfg, flush_timeout=0.5)
    runner.start()
    try:
        wait_for(lambda: runner.counters.passed + runner.counters.rejected_parts >= 5, 30, "results")
        st = wait_for(lambda: (s := runner.status())["assignment"]["errors"] >= 2 and s, 30, "poll retries")
    finally:
        runner.stop()
    a = st["assignment"]
    assert st["state"] == "running" and st["model"]["version"] == "1" and a["applied"] is None
    assert "GET http://127.0.0.1:" in a["last_error"] and "/assignment" in a["last_error"]
    assert a["last_success_at"] is None
    assert secret not in caplog.text and secret not in str(st)
    assert caplog.text.count("assignment: GET") == 1  # the same error logged once, then counted


def test_stations_sharing_a_cache_keep_their_own_last_assignment(tmp_path):
    from inspection.line.assignment_client import Assignment

    other = STATION.rsplit("/", 1)[0] + "/st2"
    mine, theirs = (AssignmentClient("http://127.0.0.1:9", None, s, tmp_path) for s in (STATION, other))
    ref = AssignedModel(name="demo_flange", version="2", sha256="b" * 64)
    theirs.save_applied(Assignment(station=other, model=ref))
    assert mine.load_applied() is None and theirs.load_applied().model == ref
    theirs.applied_file.rename(mine.applied_file)  # a file of another station under this one's name
    with pytest.raises(AssignmentError, match=f"the assignment of station {other}, not {STATION}"):
        mine.load_applied()
    mine.close(), theirs.close()
