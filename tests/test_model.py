"""The inference API: typed results, map at the image's own size, regions, refusing foreign models."""

from __future__ import annotations

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from inspection.errors import ModelError
from inspection.imaging import list_images, load_image
from inspection.model.metadata import REQUIRED_KEYS
from inspection.model.runtime import InspectionModel
from inspection.model.shipped import demo_model_path
from inspection.schema import InspectionResult


def test_inspect_defect_gives_fail_with_region_at_the_defect(samples, small_model):
    model = InspectionModel.load(small_model)
    path = list_images(samples / "flange" / "test" / "crack")[0]
    mask = cv2.imread(str(samples / "flange" / "ground_truth" / "crack" / f"{path.stem}_mask.png"), 0) > 0
    result = model.inspect(path)
    assert result.verdict == "FAIL"
    assert result.score > result.threshold
    assert result.regions, "a FAIL always has at least one region"
    top = result.regions[0]
    assert top.peak_score == pytest.approx(result.score, rel=1e-5)
    ys, xs = np.nonzero(mask)
    # the strongest region overlaps the true defect
    assert top.x <= xs.max() and xs.min() <= top.x + top.width and top.y <= ys.max() and ys.min() <= top.y + top.height
    assert result.timings.inference_ms > 0


def test_map_comes_back_at_the_image_resolution(samples, small_model):
    model = InspectionModel.load(small_model)
    image = load_image(list_images(samples / "flange" / "test" / "spot")[0])
    big = cv2.resize(image, (400, 300))
    result = model.inspect(big)
    assert result.anomaly_map.shape == (300, 400)
    for r in result.regions:  # boxes are in the big image's coordinates
        assert 0 <= r.x < 400 and 0 <= r.y < 300 and r.x + r.width <= 401 and r.y + r.height <= 301


def test_good_part_passes_and_record_is_schema_versioned(samples):
    model = InspectionModel.load(demo_model_path("flange"))
    image = load_image(list_images(samples / "flange" / "test" / "good")[0])
    result = model.inspect(image)
    assert result.verdict == "PASS" and not result.regions
    record = result.to_result(part_id="P-1", source="cam0")
    again = InspectionResult.model_validate_json(record.model_dump_json())
    assert again.schema_version == "1.0" and again.part_id == "P-1"
    assert again.model.sha256 == model.info.sha256 and len(again.model.sha256) == 64
    assert (again.image_width, again.image_height) == (256, 256)


def test_foreign_onnx_model_is_refused_naming_the_keys(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    path = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(ModelError) as err:
        InspectionModel.load(path)
    message = str(err.value)
    assert str(path) in message and "not an inspection model" in message
    for key in REQUIRED_KEYS:
        assert key in message


def test_not_onnx_and_missing_files_are_refused(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_text("this is not a model")
    with pytest.raises(ModelError, match=r"junk\.onnx: not an ONNX model"):
        InspectionModel.load(junk)
    with pytest.raises(ModelError, match="cannot read model file"):
        InspectionModel.load(tmp_path / "missing.onnx")


def test_corrupt_metadata_is_refused(small_model, tmp_path):
    graph = onnx.load(str(small_model))
    for prop in graph.metadata_props:
        if prop.key == "inspection.threshold":
            prop.value = '"high"'
    path = tmp_path / "bad_meta.onnx"
    onnx.save(graph, str(path))
    with pytest.raises(ModelError, match=r"inspection\.threshold"):
        InspectionModel.load(path)
