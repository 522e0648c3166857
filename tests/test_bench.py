"""`inspection bench`: statistics, budget, provenance, reports, and bad input refused before measuring."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pytest
from typer.testing import CliRunner

from inspection.bench.provenance import provenance
from inspection.bench.stats import Budget, BudgetError, summarize
from inspection.bench.variants import rank_correlation
from inspection.cli import app
from inspection.model.shipped import demo_model_path

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


def test_provenance_fields():
    p = provenance(demo_model_path("flange"), "CPUExecutionProvider", 2, [1, 256, 256, 3])
    for key in ("cpu_model", "logical_cores", "isa", "os", "python", "onnxruntime", "execution_provider",
                "intra_op_threads", "model_sha256", "input_shape"):
        assert key in p, key
    assert set(p["isa"]) >= {"AVX2", "AVX-512F", "AVX-512 VNNI"} and len(p["model_sha256"]) == 64
    assert p["execution_provider"] == "CPUExecutionProvider" and p["intra_op_threads"] == 2


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
    run = report["runs"][0]
    for key in ("count", "duration_s", "mean_ms", "std_ms", "min_ms", "max_ms", "p50_ms", "p90_ms", "p95_ms",
                "p99_ms", "p99_9_ms", "throughput_per_s"):
        assert key in run["stats"], key
    for key in ("session_create_ms", "first_inference_ms", "cpu_percent", "peak_rss_mb", "errors",
                "valid", "provenance"):
        assert key in run, key
    e2e = next(r for r in report["runs"] if r["spec"]["depth"] == "e2e")
    assert set(e2e["stages"]) == {"decode", "preprocess", "inference", "postprocess", "publish"}
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


def test_int8_variant_and_agreement(tmp_path):
    res = runner.invoke(app, ["bench", "--variants", "fp32,int8", "--duration", "0.2", "--min-count", "3",
                              "--warmup", "1", "--out", str(tmp_path), "--quiet"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "bench.json").read_text())
    assert [r["spec"]["variant"] for r in report["runs"]] == ["fp32", "int8"]
    a = report["int8_agreement"]
    assert a["samples"] == 16 and -1 <= a["rank_correlation"] <= 1 and 0 <= a["verdict_agreement"] <= 1
    assert report["runs"][1]["provenance"]["model_sha256"] != report["runs"][0]["provenance"]["model_sha256"]
