"""INT8 models: the backbone quantised, the bank, whitening, position statistics and threshold rebuilt from
the int8 backbone's own features (`inspection quantize`)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from inspection.cli import app
from inspection.evaluation.metrics import auroc
from inspection.imaging import list_images, load_image
from inspection.model.anomaly_head import patch_features, reference_outputs
from inspection.model.graph import head_from_model
from inspection.model.metadata import PREFIX, read_metadata
from inspection.model.quantize import config_for, quantize_model, tensors_of
from inspection.model.runtime import InspectionModel
from inspection.model.training import load_training_sets

runner = CliRunner()


@pytest.fixture(scope="module")
def int8_model(small_model, samples, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "flange_small-int8.onnx"
    report = quantize_model(small_model, samples / "flange" / "train" / "good", out, calibration_images=16,
                            threads=1, progress=False)
    assert report.same_bank_images and report.calibration_images == 16
    return out


def _bank_images(model_path, samples) -> np.ndarray:
    config = config_for(read_metadata(model_path), progress=False)
    return load_training_sets(samples / "flange" / "train" / "good", config).bank.images


def _nearest(rows: np.ndarray, x: np.ndarray) -> np.ndarray:
    """For each row, the distance to its nearest row of x."""
    d2 = (rows ** 2).sum(1)[:, None] + (x ** 2).sum(1)[None] - 2 * rows @ x.T
    return np.sqrt(np.maximum(d2.min(axis=1), 0))


def test_the_bank_is_made_of_the_int8_backbones_features(small_model, int8_model, samples):
    head = head_from_model(int8_model)
    assert head.projection is None and len(head.bank) == 256
    images = _bank_images(int8_model, samples)
    spread = {}
    for name, model in (("int8", int8_model), ("fp32", small_model)):
        p8, p16 = tensors_of(model, images)
        x = head.transform(patch_features(p8, p16, head.layer_scales)).reshape(-1, head.bank.shape[1])
        spread[name] = _nearest(head.bank.astype(np.float64), x.astype(np.float64))
    scale = np.sqrt(np.mean(head.bank_sq))
    assert spread["int8"].max() < 1e-3 * scale, spread["int8"].max()  # every entry is an int8 patch
    assert np.median(spread["fp32"]) > 20 * max(spread["int8"].max(), 1e-6), np.median(spread["fp32"])


def test_numpy_reference_agrees_with_the_int8_graph(int8_model, samples):
    images = np.stack([load_image(p) for p in list_images(samples / "flange" / "test" / "scratch")[:4]])
    feat8, feat16 = tensors_of(int8_model, images, ("feat8", "feat16"))
    maps, scores = reference_outputs(feat8, feat16, head_from_model(int8_model))
    graph_maps, graph_scores = InspectionModel.load(int8_model, threads=1).run(images)
    np.testing.assert_allclose(graph_scores, scores, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(graph_maps, maps[:, 0], rtol=1e-4, atol=1e-3)


def test_int8_metadata_threshold_and_accuracy(small_model, int8_model, samples):
    fp, q = read_metadata(small_model), read_metadata(int8_model)
    assert q.head.precision == "int8" and fp.head.precision == "fp32" and q.name == "flange_small-int8"
    assert q.head.quantization and q.head.quantization["format"] == "QDQ"
    assert q.training_set.digest == fp.training_set.digest and q.threshold != fp.threshold
    assert q.good_scores.quantiles is not None and q.good_scores.count == fp.good_scores.count
    good = [load_image(p) for p in list_images(samples / "flange" / "test" / "good")]
    bad = [load_image(p) for d in ("crack", "missing", "scratch")
           for p in list_images(samples / "flange" / "test" / d)]
    labels = np.array([0] * len(good) + [1] * len(bad))
    aurocs = {}
    for name, path in (("fp32", small_model), ("int8", int8_model)):
        model = InspectionModel.load(path, threads=1)
        aurocs[name] = auroc(labels, np.array([model.inspect(im).score for im in good + bad]))
    assert aurocs["int8"] > 0.9 and aurocs["fp32"] > 0.9, aurocs  # an fp32 bank behind int8 gave 0.73


def test_cli_quantize_and_its_errors(small_model, int8_model, samples, tmp_path):
    good = samples / "flange" / "train" / "good"
    out = tmp_path / "m8.onnx"
    res = runner.invoke(app, ["quantize", "--model", str(small_model), "--good", str(good), "--out", str(out),
                              "--calibration-images", "8", "--threads", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "bank rebuilt from" in res.output and out.is_file() and out.with_suffix(".calibration.json").is_file()
    res = runner.invoke(app, ["quantize", "--model", str(int8_model), "--good", str(good), "--out",
                              str(tmp_path / "x.onnx")])
    assert res.exit_code == 2 and "already a int8 model" in res.output
    res = runner.invoke(app, ["quantize", "--model", str(small_model), "--good", str(tmp_path / "none"), "--out",
                              str(tmp_path / "x.onnx")])
    assert res.exit_code == 2 and "folder does not exist" in res.output
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    res = runner.invoke(app, ["quantize", "--model", str(tmp_path / "junk.onnx"), "--good", str(good), "--out",
                              str(tmp_path / "x.onnx")])
    assert res.exit_code == 2 and "not an ONNX model" in res.output
    res = runner.invoke(app, ["quantize", "--model", str(small_model), "--good", str(good), "--out",
                              str(tmp_path / "x.onnx"), "--calibration-images", "0"])
    assert res.exit_code == 2 and "calibration images 0" in res.output
    assert not (tmp_path / "x.onnx").exists()


def test_a_separately_calibrated_model_needs_its_calibration_folder(separately_calibrated_model, tmp_path):
    model, good, calib = separately_calibrated_model
    trained = read_metadata(model).training_set
    assert trained.held_out_folder == str(calib) and trained.images == 20
    assert trained.held_out == len(list_images(calib))
    # a hold-out fraction of --good (the model's 50 %, or one given) is not its split: refused, never guessed
    for extra in ([], ["--holdout", "0.2"]):
        res = runner.invoke(app, ["quantize", "--model", str(model), "--good", str(good), "--out",
                                  str(tmp_path / "x.onnx"), "--calibration-images", "4", "--threads", "1", "--quiet",
                                  *extra])
        assert res.exit_code == 2, res.output
        assert "give that folder as --calib-good" in res.output and f"({calib})" in res.output, res.output
    assert not (tmp_path / "x.onnx").exists()
    out = tmp_path / "m8.onnx"
    res = runner.invoke(app, ["quantize", "--model", str(model), "--good", str(good), "--calib-good", str(calib),
                              "--out", str(out), "--calibration-images", "4", "--threads", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "not a like-for-like comparison" not in res.output
    q = read_metadata(out).training_set
    assert (q.images, q.held_out, q.digest, q.held_out_folder) == (
        trained.images, trained.held_out, trained.digest, trained.held_out_folder)


def test_a_hold_out_model_keeps_its_fraction_split(small_model, int8_model):
    fp, q = read_metadata(small_model).training_set, read_metadata(int8_model).training_set
    assert fp.held_out_folder is None and q.held_out_folder is None
    assert (q.images, q.held_out) == (fp.images, fp.held_out) and fp.held_out > 0


def test_models_written_before_held_out_folder_still_load_as_hold_out_models(small_model, tmp_path):
    graph = onnx.load(str(small_model))
    for prop in graph.metadata_props:
        if prop.key == PREFIX + "training_set":
            old = json.loads(prop.value)
            del old["held_out_folder"]
            prop.value = json.dumps(old)
    legacy = tmp_path / "legacy.onnx"
    onnx.save(graph, str(legacy))
    meta = read_metadata(legacy)
    assert meta.training_set.held_out_folder is None
    ts = meta.training_set
    assert config_for(meta).holdout_fraction == pytest.approx(ts.held_out / (ts.images + ts.held_out))
