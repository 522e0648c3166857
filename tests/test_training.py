"""Training from good images only, through the CLI as a user runs it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from inspection.cli import app
from inspection.model.metadata import REQUIRED_KEYS, read_metadata
from inspection.model.runtime import InspectionModel
from inspection.model.training import TrainConfig, train

runner = CliRunner()


def _copy_good(samples, dest, n):
    dest.mkdir(parents=True, exist_ok=True)
    for p in sorted((samples / "knurled_plate" / "train" / "good").glob("*.png"))[:n]:
        shutil.copy(p, dest / p.name)
    return dest


def test_train_writes_one_graph_with_metadata_and_report(samples, tmp_path):
    good = _copy_good(samples, tmp_path / "good", 30)
    out = tmp_path / "plate.onnx"
    res = runner.invoke(app, ["train", "--good", str(good), "--out", str(out), "--bank-size", "128",
                              "--projection-dim", "32", "--defects", str(samples / "knurled_plate" / "test"),
                              "--quiet", "--version", "7"])
    assert res.exit_code == 0, res.output
    graph = onnx.load(str(out))
    assert [i.name for i in graph.graph.input] == ["image"]
    assert [o.name for o in graph.graph.output] == ["anomaly_map", "score"]
    keys = {p.key for p in graph.metadata_props}
    assert set(REQUIRED_KEYS) <= keys
    meta = read_metadata(out)
    assert meta.model_version == "7" and meta.head.bank_size == 128 and meta.head.projection_dim == 32
    assert meta.head.preset == "balanced" and meta.head.whitened  # the default preset, options override it
    assert meta.head.k_nearest == 3 and meta.head.border == 1 and meta.input_size == (256, 256)
    assert meta.training_set.images + meta.training_set.held_out == 30
    # position statistics from a subset of the bank images (48 by default; here all 26 bank images)
    assert meta.head.normalisation.endswith(f"measured on {meta.training_set.images} of the "
                                            f"{meta.training_set.images} bank images")
    assert len(meta.training_set.digest) == 64
    report = json.loads((tmp_path / "plate.calibration.json").read_text())
    assert report["threshold"] == meta.threshold
    assert report["defect_count"] == 16  # test/good is not counted as defects
    assert report["f1_threshold"]["escape_rate"] is not None


def test_training_is_deterministic(samples, tmp_path):
    good = _copy_good(samples, tmp_path / "good", 20)
    scores = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.onnx"
        assert runner.invoke(app, ["train", "--good", str(good), "--out", str(out), "--bank-size", "64",
                                   "--quiet"]).exit_code == 0
        img = np.asarray(np.random.default_rng(0).integers(0, 255, (1, 256, 256, 3)), np.uint8)
        scores.append(InspectionModel.load(out).run(img)[1][0])
    assert scores[0] == scores[1]


def test_bad_images_are_skipped_and_reported(samples, tmp_path):
    good = _copy_good(samples, tmp_path / "good", 20)
    (good / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (good / "zz_empty.jpg").write_bytes(b"")
    out = tmp_path / "m.onnx"
    res = runner.invoke(app, ["train", "--good", str(good), "--out", str(out), "--bank-size", "64", "--quiet"])
    assert res.exit_code == 1, res.output  # finished, but some files failed
    assert out.is_file()
    assert "zz_broken.png" in res.output and "zz_empty.jpg: file is empty" in res.output
    assert read_metadata(out).training_set.images + read_metadata(out).training_set.held_out == 20


def test_empty_missing_and_too_small_folders(tmp_path, samples):
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["train", "--good", str(tmp_path / "empty"), "--out", str(tmp_path / "m.onnx")])
    assert res.exit_code == 2 and "no images in the good images folder" in res.output
    res = runner.invoke(app, ["train", "--good", str(tmp_path / "nope"), "--out", str(tmp_path / "m.onnx")])
    assert res.exit_code == 2 and "does not exist" in res.output
    few = _copy_good(samples, tmp_path / "few", 5)
    res = runner.invoke(app, ["train", "--good", str(few), "--out", str(tmp_path / "m.onnx"), "--quiet"])
    assert res.exit_code == 2 and "at least 8 are needed" in res.output
    assert not (tmp_path / "m.onnx").exists()


def test_bad_options_are_named(samples, tmp_path):
    good = samples / "knurled_plate" / "train" / "good"
    res = runner.invoke(app, ["train", "--good", str(good), "--out", str(tmp_path / "m.onnx"), "--input-size", "250"])
    assert res.exit_code == 2 and "multiples of 16" in res.output
    res = runner.invoke(app, ["train", "--good", str(good), "--out", str(tmp_path / "m.onnx"), "--policy", "f1"])
    assert res.exit_code == 2 and "needs labelled defect images" in res.output
    res = runner.invoke(app, ["train", "--good", str(good), "--out", str(tmp_path / "m.onnx"), "--preset", "quick"])
    assert res.exit_code == 2 and "--preset: unknown preset 'quick'" in res.output


def test_calibrate_rewrites_threshold_without_retraining(small_model, samples, tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(small_model.read_bytes())
    before = read_metadata(model)
    res = runner.invoke(app, ["calibrate", "--model", str(model), "--good", str(samples / "flange" / "test" / "good"),
                              "--defects", str(samples / "flange" / "test"), "--policy", "f1", "--quiet"])
    assert res.exit_code == 0, res.output
    after = read_metadata(model)
    assert after.calibration["policy"] == "f1" and after.calibration["defect_count"] == 16
    assert after.threshold != before.threshold
    assert after.training_set == before.training_set and after.head == before.head
    assert InspectionModel.load(model).threshold == after.threshold


def test_presets_set_the_head_and_are_recorded(samples, tmp_path):
    """Each preset gives the head it names, and the model says which preset made it."""
    from inspection.model.graph import head_from_model
    from inspection.model.presets import DEFAULT_PRESET, PRESETS, preset_settings

    assert DEFAULT_PRESET == "balanced"
    assert all(getattr(TrainConfig(name="x"), k) == v for k, v in PRESETS[DEFAULT_PRESET].items())
    out = tmp_path / "fast.onnx"
    train(samples / "flange" / "train" / "good", out, TrainConfig(name="fast", progress=False,
                                                                   **preset_settings("fast")))
    meta, head = read_metadata(out), head_from_model(out)
    assert meta.head.preset == "fast" and meta.head.bank_size == 1 and meta.head.whitened
    assert head.whiten is not None and head.position_mean is not None and head.position_std is not None
    assert head.position_std.min() > 0
    with pytest.raises(ValueError, match="unknown preset 'quick'"):
        preset_settings("quick")


def test_position_statistics_exclude_self_matches():
    """A bank image measured against a bank holding its own patches would score ~0; excluding them gives
    the distance to the nearest entry of another image."""
    from inspection.model.anomaly_head import HeadParams
    from inspection.model.normalisation import leave_one_out_distances

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 4)).astype(np.float32)
    bank = x.reshape(-1, 4)  # every patch is in the bank
    head = HeadParams((1.0, 1.0), None, bank, np.sum(bank.astype(np.float64) ** 2, 1), 0.0, (64, 64))
    entry_image = np.repeat(np.arange(3), 5)
    d = leave_one_out_distances(x, head, entry_image)
    for i in range(3):
        others = bank[entry_image != i]
        expected = np.sqrt(((x[i][:, None, :] - others[None]) ** 2).sum(-1)).min(axis=1)
        np.testing.assert_allclose(d[i], expected, atol=1e-4)
    assert d.min() > 0.1


def test_position_statistics_from_a_subset_of_the_bank_images():
    """`stats_images` picks that many distinct bank images, the same ones for the same seed; all when it is None
    or at least the bank's image count; fewer than 2 is refused."""
    from inspection.model.training import stats_subset

    take = stats_subset(170, 48, seed=0)
    assert len(take) == 48 and len(set(take.tolist())) == 48 and np.all(np.diff(take) > 0) and take.max() < 170
    assert np.array_equal(take, stats_subset(170, 48, seed=0)) and not np.array_equal(take, stats_subset(170, 48, 1))
    assert np.array_equal(stats_subset(30, 48, 0), np.arange(30)) and np.array_equal(stats_subset(30, None, 0),
                                                                                     np.arange(30))
    with pytest.raises(ValueError, match="stats images 1 must be at least 2"):
        TrainConfig(name="x", stats_images=1).check()
    with pytest.raises(ValueError, match="k nearest 0 must be at least 1"):
        TrainConfig(name="x", k_nearest=0).check()


def test_preset_input_size_and_command_line_overrides():
    """`accurate` trains at 352x352 unless --input-size says otherwise; the other presets keep 256."""
    from inspection.cli.model import _preset_with_overrides

    assert _preset_with_overrides("accurate", {})["input_size"] == (352, 352)
    assert _preset_with_overrides("accurate", {"input_size": (256, 320)})["input_size"] == (256, 320)
    balanced = _preset_with_overrides("balanced", {"input_size": None, "k_nearest": 5})
    assert "input_size" not in balanced and balanced["k_nearest"] == 5 and balanced["border"] == 1
    assert TrainConfig(name="x", **balanced).input_size == (256, 256)
