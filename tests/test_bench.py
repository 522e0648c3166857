"""`inspection bench`: statistics, budget, provenance, reports, and bad input refused before measuring."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from inspection.bench.engine import sample_images
from inspection.bench.int8 import agreement
from inspection.bench.provenance import provenance
from inspection.bench.stats import Budget, BudgetError, summarize
from inspection.bench.variants import rank_correlation
from inspection.cli import app
from inspection.imaging import list_images
from inspection.model.metadata import read_metadata
from inspection.model.shipped import default_model_path, demo_model_path

runner = CliRunner()


def test_summary_matches_numpy_on_known_samples():
    rng = np.random.default_rng(0)
    lat = rng.lognormal(-4.5, 0.3, 1001)  # seconds
    s = summarize(lat, duration_s=12.5)
    ms = lat * 1e3
    for q, key in ((50, "p50_ms"), (90, "p90_ms"), (95, "p95_ms"), (99, "p99_ms"), (99.9, "p99_9_ms")):
        assert s[key] == pytest.approx(np.percentile(ms, q))
    assert s["count"] == 1001 and s["mean_ms"] == pytest.approx(ms.mean()) and s["std_ms"] == pytest.approx(
        ms.std(ddof=1))
    assert (s["min_ms"], s["max_ms"]) == (pytest.approx(ms.min()), pytest.approx(ms.max()))
    assert s["throughput_per_s"] == pytest.approx(1001 / 12.5)
    # a hand-checked case: 1..10 ms, p90 by linear interpolation = 9.1
    assert summarize(np.arange(1, 11) / 1e3, 1.0)["p90_ms"] == pytest.approx(9.1)
    assert summarize([], 1.0)["count"] == 0


@pytest.mark.parametrize(("text", "limits"), [
    ("p90=20ms", ((90, 20.0),)), ("P99<=0.025s", ((99, 25.0),)), ("p99.9 = 500us", ((99.9, 0.5),)),
    ("p50=5ms, p90=9ms", ((50, 5.0), (90, 9.0))),
])
def test_budget_parses(text, limits):
    assert Budget.parse(text).limits == limits


@pytest.mark.parametrize("text", ["", "p90", "p90=20", "90=20ms", "p90=20 minutes", "p100=5ms", "p90=-1ms",
                                  "p90=20ms;p99=30ms"])
def test_budget_rejects_with_a_clear_message(text):
    with pytest.raises(BudgetError, match="budget"):
        Budget.parse(text)


def test_budget_check():
    lat = np.arange(1, 101) / 1e3  # 1..100 ms
    verdicts = Budget.parse("p50=60ms,p90=80ms").check(lat)
    assert [v["pass"] for v in verdicts] == [True, False]
    assert verdicts[1]["measured_ms"] == pytest.approx(90.1)


def test_provenance_tells_this_machine_and_this_model():
    model = default_model_path()
    p = provenance(model, "CPUExecutionProvider", 2, [1, 256, 256, 3])
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.split(":")[0].strip() in ("flags", "Features"):
            flags = set(line.split(":", 1)[1].split())
            break
    assert p["isa"]["AVX2"] == ("avx2" in flags) and p["isa"]["AVX-512 VNNI"] == ("avx512_vnni" in flags)
    assert p["isa"]["AVX-512F"] == ("avx512f" in flags)
    assert p["logical_cores"] == os.cpu_count() and p["python"] == platform.python_version()
    assert p["onnxruntime"] == ort.__version__ and p["model_file"] == model.name
    assert p["model_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert p["execution_provider"] == "CPUExecutionProvider" and p["intra_op_threads"] == 2
    assert p["input_shape"] == [1, 256, 256, 3]


def test_rank_correlation():
    assert rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


@pytest.mark.parametrize(("args", "message"), [
    (["--budget", "p90=fast"], "does not parse"),
    (["--threads", "64"], "out of range"),
    (["--providers", "CUDAExecutionProvider"], "not installed here"),
    (["--model", "nope.onnx"], "no such model file"),
    (["--scenario", "server"], "--scenario"),
    (["--variants", "fp16"], "variant"),
])
def test_bad_input_is_refused_before_measuring(args, message, tmp_path):
    res = runner.invoke(app, ["bench", *args, "--out", str(tmp_path / "r"), "--quiet"])
    assert res.exit_code == 2 and message in res.output, res.output
    assert not (tmp_path / "r").exists()


def test_not_onnx_model_is_refused(tmp_path):
    junk = tmp_path / "m.onnx"
    junk.write_text("no")
    res = runner.invoke(app, ["bench", "--model", str(junk), "--quiet"])
    assert res.exit_code == 2 and "m.onnx" in res.output


class _Checker(HTMLParser):
    VOID = frozenset({"meta", "br", "img", "hr", "input", "link", "rect"})

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.fetches = [], [], []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") or (value and "url(" in value):
                self.fetches.append((tag, name, value))
        if tag in ("script", "link", "img", "iframe") and any(n in ("src", "href") for n, _ in attrs):
            self.fetches.append((tag, attrs))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def test_bench_run_writes_valid_self_contained_reports_and_compare(tmp_path):
    out = tmp_path / "a"
    res = runner.invoke(app, ["bench", "--scenario", "all", "--depth", "both", "--duration", "0.3",
                              "--min-count", "5", "--warmup", "2", "--budget", "p90=10000ms", "--out", str(out),
                              "--quiet"])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "bench.json").read_text())
    assert report["verdict"] == "PASS" and len(report["runs"]) == 6
    for run in report["runs"]:
        s = run["stats"]
        assert s["count"] >= 5 and s["duration_s"] >= 0.3 and run["valid"] and run["errors"] == 0, run["label"]
        order = [s[k] for k in ("min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p99_9_ms", "max_ms")]
        assert order == sorted(order) and order[0] > 0, (run["label"], order)
        assert s["min_ms"] <= s["mean_ms"] <= s["max_ms"] and s["std_ms"] >= 0
        assert s["throughput_per_s"] == pytest.approx(s["count"] / s["duration_s"], rel=1e-6)
        # every query took at least its measured minimum, so the queries fit inside the run
        assert s["count"] * s["min_ms"] / 1e3 <= s["duration_s"]
        assert run["session_create_ms"] > 0 and run["first_inference_ms"] > 0 and 0 < run["cpu_percent"] <= 100 * (
            os.cpu_count() or 1) + 5
        assert run["peak_rss_mb"] > 30 and sum(run["histogram"]["counts"]) == s["count"]
        assert run["provenance"]["model_sha256"] == hashlib.sha256(default_model_path().read_bytes()).hexdigest()
    scenarios = {r["spec"]["scenario"]: r["input_shape"][0] for r in report["runs"]}
    assert scenarios == {"single-stream": 1, "multi-stream": 4, "offline": 8}
    e2e = next(r for r in report["runs"] if r["spec"]["depth"] == "e2e" and r["spec"]["scenario"] == "single-stream")
    assert set(e2e["stages"]) == {"decode", "preprocess", "inference", "postprocess", "publish"}
    # one e2e query is the five stages one after the other: their means add up to (at most) the query's mean
    stage_sum = sum(v["mean_ms"] for v in e2e["stages"].values())
    assert 0.5 * e2e["stats"]["mean_ms"] < stage_sum <= e2e["stats"]["mean_ms"] * 1.01
    page = (out / "bench.html").read_text()
    checker = _Checker()
    checker.feed(page)
    assert not checker.errors and checker.stack == [], (checker.errors, checker.stack)
    assert not checker.fetches, checker.fetches  # nothing to download: it opens offline
    assert "<svg" in page and "Provenance" in page
    # an impossible budget fails with exit code 1, and compare shows both runs
    res = runner.invoke(app, ["bench", "--duration", "0.2", "--min-count", "3", "--warmup", "1", "--budget",
                              "p90=0.001ms", "--out", str(tmp_path / "b"), "--quiet"])
    assert res.exit_code == 1 and "FAIL" in res.output
    res = runner.invoke(app, ["bench", "compare", str(out / "bench.json"), str(tmp_path / "b" / "bench.json")])
    assert res.exit_code == 0 and "single-stream model fp32 256px 1t CPU" in res.output
    res = runner.invoke(app, ["bench", "compare", str(out / "bench.html")])
    assert res.exit_code == 2 and "cannot read a bench report" in res.output


def test_int8_variant_rebuilt_from_good_images_with_agreement_speed_and_accuracy(tmp_path, samples, small_model):
    flange = samples / "flange"
    res = runner.invoke(app, ["bench", "--model", str(small_model), "--variants", "fp32,int8", "--duration", "0.2",
                              "--min-count", "3", "--warmup", "1", "--out", str(tmp_path), "--quiet",
                              "--good", str(flange / "train" / "good"), "--defects", str(flange / "test")])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "bench.json").read_text())
    assert [r["spec"]["variant"] for r in report["runs"]] == ["fp32", "int8"]
    a = report["int8_agreement"]
    assert a["samples"] == 16 and -1 <= a["rank_correlation"] <= 1 and 0 <= a["verdict_agreement"] <= 1
    assert report["runs"][1]["provenance"]["model_sha256"] != report["runs"][0]["provenance"]["model_sha256"]
    sp = report["int8_speed"][0]
    assert sp["p50_ratio"] == pytest.approx(sp["int8_p50_ms"] / sp["fp32_p50_ms"])
    acc = report["int8_accuracy"]
    # the fp32 model's own hold-out fraction of --good (its held-out / all good images; it was trained on --good)
    trained = read_metadata(small_model).training_set
    assert trained.held_out_folder is None
    fraction = trained.held_out / (trained.images + trained.held_out)
    held_out = round(len(list_images(flange / "train" / "good")) * fraction)
    assert acc["good"] == held_out and acc["defects"] > 0
    assert acc["fp32_image_auroc"] > 0.9 and acc["int8_image_auroc"] > 0.9
    assert "int8 vs fp32" in res.output and f"image AUROC on {held_out} held-out good" in res.output


def test_int8_variant_of_a_separately_calibrated_model_takes_its_calib_good(tmp_path, samples,
                                                                            separately_calibrated_model):
    model, good, calib = separately_calibrated_model
    args = ["bench", "--model", str(model), "--variants", "fp32,int8", "--duration", "0.2", "--min-count", "3",
            "--warmup", "1", "--quiet", "--good", str(good), "--defects", str(samples / "flange" / "test")]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "without")])
    assert res.exit_code == 2, res.output
    assert "int8 variant: --model: calibrated on a separate folder" in res.output
    assert f"({calib})" in res.output and "give that folder as --calib-good" in res.output
    res = runner.invoke(app, [*args, "--calib-good", str(calib), "--out", str(tmp_path / "with")])
    assert res.exit_code == 0, res.output
    acc = json.loads((tmp_path / "with" / "bench.json").read_text())["int8_accuracy"]
    assert acc["good"] == len(list_images(calib)) == read_metadata(model).training_set.held_out


def test_int8_variant_errors(tmp_path, small_model):
    res = runner.invoke(app, ["bench", "--variants", "fp32,int8", "--duration", "0.2", "--quiet",
                              "--out", str(tmp_path)])
    assert res.exit_code == 2 and "needs --good DIR" in res.output
    res = runner.invoke(app, ["bench", "--variants", "int8", "--int8-model", str(small_model), "--quiet",
                              "--out", str(tmp_path)])
    assert res.exit_code == 2 and "a fp32 model" in res.output


def test_agreement_of_a_model_with_itself_and_with_a_different_model():
    encoded = sample_images(None)
    same = agreement(default_model_path(), default_model_path(), encoded)
    assert same["samples"] == 16 and same["rank_correlation"] == pytest.approx(1.0)
    assert same["verdict_agreement"] == 1.0 and same["mean_abs_score_change"] == 0.0
    # the knurled-plate model judges flange frames differently: agreement must show it, not stay at 1
    other = agreement(default_model_path(), demo_model_path("knurled_plate"), encoded)
    assert other["verdict_agreement"] < 1.0 or other["rank_correlation"] < 0.99, other
