"""The files that ship in models/: the backbone and the demo models built on it."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from inspection.evaluation.synthetic import PART_TYPES
from inspection.model.metadata import read_metadata
from inspection.model.shipped import backbone_path, demo_model_path


def test_backbone_outputs_stride_8_and_16_features():
    sess = ort.InferenceSession(str(backbone_path()), providers=["CPUExecutionProvider"])
    f8, f16 = sess.run(["feat8", "feat16"], {"input": np.zeros((2, 3, 256, 320), np.float32)})
    assert f8.shape == (2, 40, 32, 40) and f16.shape == (2, 80, 16, 20)
    ops = {n.op_type for n in onnx.load(str(backbone_path())).graph.node}
    assert ops == {"Conv", "Clip", "Add"}  # pads folded into the convs, BatchNorm folded


@pytest.mark.parametrize("part", PART_TYPES)
def test_demo_models_are_built_on_the_shipped_backbone(part):
    meta = read_metadata(demo_model_path(part))
    assert meta.head.backbone_sha256 == hashlib.sha256(backbone_path().read_bytes()).hexdigest()
    assert meta.name == f"demo_{part}" and tuple(meta.input_size) == (256, 256)
    assert meta.threshold > meta.good_scores.p50


def test_backbone_channels_are_read_from_its_outputs():

    from inspection.errors import ModelError
    from inspection.model.graph import backbone_channels

    backbone = onnx.load(str(backbone_path()))
    assert backbone_channels(backbone) == (40, 80)
    backbone.graph.output[1].type.tensor_type.shape.dim[1].dim_value = 96  # another backbone's tap
    assert backbone_channels(backbone) == (40, 96)
    backbone.graph.output.pop()
    with pytest.raises(ModelError, match="the backbone has 1 outputs"):
        backbone_channels(backbone)
