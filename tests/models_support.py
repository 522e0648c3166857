"""Model files for the models-on-the-service tests: the shipped demo models ("ours"), a variant of one with
another version or other bytes, an ONNX model that is not ours, one of ours with the wrong input shape, and
a truncated file."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
from onnx import TensorProto, helper

from inspection.model.metadata import PREFIX, from_props, write_metadata

REPO = Path(__file__).resolve().parents[1]
FLANGE = REPO / "models" / "demo_flange.onnx"  # demo_flange version 1
PLATE = REPO / "models" / "demo_knurled_plate.onnx"


def ours() -> bytes:
    return FLANGE.read_bytes()


def variant(version: str = "2", threshold: float | None = None, source: Path = FLANGE) -> bytes:
    """The demo model with another version and/or threshold in its metadata (other bytes)."""
    model = onnx.load(str(source))
    meta = from_props({p.key: p.value for p in model.metadata_props}, str(source))
    meta = meta.model_copy(update={"model_version": version, **({"threshold": threshold} if threshold else {})})
    write_metadata(model, meta)
    return model.SerializeToString()


def _tiny(size: int) -> onnx.ModelProto:
    image = helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", size, size, 3])
    amap = helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, ["N", size, size, 3])
    score = helper.make_tensor_value_info("score", TensorProto.FLOAT, [])
    nodes = [helper.make_node("Cast", ["image"], ["anomaly_map"], to=TensorProto.FLOAT),
             helper.make_node("ReduceMax", ["anomaly_map"], ["score"], keepdims=0)]
    graph = helper.make_graph(nodes, "tiny", [image], [amap, score])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def foreign() -> bytes:
    """A valid ONNX model without this project's metadata."""
    return _tiny(256).SerializeToString()


def wrong_input_shape() -> bytes:
    """Our metadata (input_size 256 x 256) on a graph that takes 128 x 128 images."""
    model = _tiny(128)
    source = onnx.load(str(FLANGE))
    for p in source.metadata_props:
        if p.key.startswith(PREFIX):
            model.metadata_props.add(key=p.key, value=p.value)
    return model.SerializeToString()


def truncated() -> bytes:
    data = ours()
    return data[: len(data) // 2]


def card_of(data: bytes) -> dict:
    model = onnx.load_from_string(data)
    return {p.key[len(PREFIX):]: json.loads(p.value) for p in model.metadata_props if p.key.startswith(PREFIX)}
