"""`inspection inspect`, `eval`, `info` and `dataset generate` as a user runs them."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from inspection import __version__
from inspection.cli import app
from inspection.imaging import load_image
from inspection.model.metadata import read_metadata
from inspection.model.shipped import default_model_path
from inspection.schema import InspectionResult

runner = CliRunner()


def test_inspect_writes_json_and_overlay_and_reports_bad_files(samples, small_model, tmp_path):
    crack = samples / "flange" / "test" / "crack" / "000.png"
    good_dir = samples / "flange" / "test" / "good"
    bad = tmp_path / "truncated.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 100)
    out = tmp_path / "out"
    res = runner.invoke(app, ["inspect", str(crack), str(bad), str(good_dir), "--model", str(small_model),
                              "--out", str(out)])
    assert res.exit_code == 1, res.output  # one file failed, the others were inspected
    assert "truncated.jpg: truncated JPEG" in res.output
    # crack/000 and good/000 share a stem: both kept, under distinct names
    assert (out / "crack_000.json").is_file() and (out / "good_000.json").is_file()
    record = InspectionResult.model_validate_json((out / "crack_000.json").read_text())
    assert record.verdict == "FAIL" and record.regions and record.source == str(crack)
    assert load_image(out / "crack_000_overlay.png").shape == (256, 256, 3)
    assert len(list(out.glob("*.json"))) == 1 + 12


def test_inspect_all_good_exits_zero_with_the_default_model(samples, tmp_path):
    image = samples / "flange" / "test" / "good" / "001.png"
    res = runner.invoke(app, ["inspect", str(image), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("PASS ") and lines[0].endswith(str(image)), lines
    assert lines[-1].startswith("1 PASS, 0 FAIL, 0 error(s)"), lines
    record = InspectionResult.model_validate_json((tmp_path / "o" / "001.json").read_text())
    assert record.verdict == "PASS"
    assert record.model.name == read_metadata(default_model_path()).name == "demo_flange"


def test_version():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"inspection {__version__}"


def test_eval_reports_per_kind(samples, small_model, tmp_path):
    res = runner.invoke(app, ["eval", "--model", str(small_model), "--data", str(samples / "flange"), "--out",
                              str(tmp_path / "ev"), "--quiet"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert {k["kind"] for k in report["per_kind"]} == {"scratch", "spot", "crack", "missing"}
    assert report["good_images"] == 12 and report["defect_images"] == 16
    overall = report["overall"]
    assert overall["image_auroc"] > 0.9 and overall["pixel_auroc"] > 0.9 and overall["aupro"] > 0.7
    md = (tmp_path / "ev" / "eval.md").read_text()
    assert "| all | 28 |" in md


def test_eval_missing_mask_is_reported_not_fatal(samples, small_model, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(samples / "flange", data)
    (data / "ground_truth" / "spot" / "000_mask.png").unlink()
    res = runner.invoke(app, ["eval", "--model", str(small_model), "--data", str(data), "--out", str(tmp_path / "e"),
                              "--quiet"])
    assert res.exit_code == 1
    assert "000_mask.png: ground-truth mask missing" in res.output
    assert (tmp_path / "e" / "eval.json").is_file()


def test_eval_bad_layout(small_model, tmp_path):
    res = runner.invoke(app, ["eval", "--model", str(small_model), "--data", str(tmp_path)])
    assert res.exit_code == 2 and "no test/ folder" in res.output


def test_info_and_foreign_file(small_model, tmp_path):
    res = runner.invoke(app, ["info", str(small_model)])
    assert res.exit_code == 0 and '"task": "anomaly_detection"' in res.output
    junk = tmp_path / "x.onnx"
    junk.write_bytes(b"garbage")
    res = runner.invoke(app, ["info", str(junk)])
    assert res.exit_code == 2 and "x.onnx" in res.output


def test_dataset_generate(tmp_path):
    res = runner.invoke(app, ["dataset", "generate", "--out", str(tmp_path), "--part", "flange", "--train-good", "2",
                              "--test-good", "1", "--test-per-defect", "1"])
    assert res.exit_code == 0, res.output
    base = tmp_path / "flange"
    assert len(list((base / "train" / "good").glob("*.png"))) == 2
    for kind in ("scratch", "spot", "crack", "missing"):
        assert (base / "test" / kind / "000.png").is_file()
        assert (base / "ground_truth" / kind / "000_mask.png").is_file()
    res = runner.invoke(app, ["dataset", "generate", "--out", str(tmp_path), "--part", "gear"])
    assert res.exit_code == 2 and "unknown part type" in res.output
