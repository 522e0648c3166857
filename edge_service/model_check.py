"""Checking an uploaded model file is one of ours: ONNX that parses and passes the ONNX checker, with this
project's ``inspection.*`` metadata, the graph's input and outputs as the runtime expects them, and a graph
onnxruntime can load. ``onnx``, ``onnxruntime`` and the metadata reader are imported inside the function, so
the service's import stays free of the model runtime (tests/test_layout.py)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # a model's name and version are path segments
UINT8 = 2  # onnx.TensorProto.UINT8


class ModelRejected(ValueError):
    """The upload is not an inspection model (or is corrupt); the message names the problem."""


@dataclass(frozen=True)
class CheckedModel:
    name: str
    version: str
    preset: str | None
    card: dict[str, Any]  # every inspection.* metadata value, parsed


def _dims(value_info) -> list[int | str]:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in value_info.type.tensor_type.shape.dim]


def _check_graph(proto, input_size: tuple[int, int]) -> None:
    inputs = {i.name: i for i in proto.graph.input}
    initialisers = {t.name for t in proto.graph.initializer}
    feeds = [n for n in inputs if n not in initialisers]
    outputs = sorted(o.name for o in proto.graph.output)
    if feeds != ["image"] or outputs != ["anomaly_map", "score"]:
        raise ModelRejected(f"graph has inputs {feeds} and outputs {outputs}; an inspection model has the input "
                            "'image' and the outputs 'anomaly_map' and 'score'")
    image = inputs["image"]
    dims = _dims(image)
    h, w = input_size
    if len(dims) != 4 or dims[1:] != [h, w, 3]:
        raise ModelRejected(f"input 'image' has shape {dims}; the metadata's input_size {list(input_size)} needs "
                            f"(N, {h}, {w}, 3)")
    if image.type.tensor_type.elem_type != UINT8:
        raise ModelRejected(f"input 'image' has element type {image.type.tensor_type.elem_type}; an inspection "
                            "model takes uint8 RGB")


def _parse(data: bytes):
    import onnx

    if not data:
        raise ModelRejected("the upload is empty: send the .onnx file's bytes as the request body")
    try:
        proto = onnx.load_from_string(data)
    except Exception as exc:  # protobuf raises DecodeError and others for bytes that are not ONNX
        raise ModelRejected(f"not an ONNX model: the file does not parse as ONNX ({type(exc).__name__}); "
                            "it may be truncated or another kind of file") from None
    if not proto.graph.node:
        raise ModelRejected("not an ONNX model: no graph in the file (truncated, or another kind of file)")
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:  # onnx.checker.ValidationError and friends
        raise ModelRejected(f"corrupt ONNX model: {str(exc).splitlines()[0][:300]}") from None
    return proto


def check_model(data: bytes) -> CheckedModel:
    """The model's name, version, preset and card, or ModelRejected naming what is wrong."""
    import onnxruntime as ort

    from inspection.errors import ModelError
    from inspection.model.metadata import PREFIX, from_props

    proto = _parse(data)
    props = {p.key: p.value for p in proto.metadata_props}
    try:
        meta = from_props(props, "uploaded file")
    except ModelError as exc:
        raise ModelRejected(f"not one of ours: {exc}") from None
    for what, value in (("name", meta.name), ("model_version", meta.model_version)):
        if not NAME.match(value):
            raise ModelRejected(f"metadata {PREFIX}{what} {value[:80]!r}: use 1-64 letters, digits, '.', '_' "
                                "or '-', starting with a letter or digit")
    _check_graph(proto, meta.input_size)
    try:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # a check, not a run: leave the cores to the service
        ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelRejected(f"onnxruntime cannot load the model: {str(exc).splitlines()[0][:300]}") from None
    card = {k[len(PREFIX):]: json.loads(v) for k, v in props.items() if k.startswith(PREFIX)}
    return CheckedModel(meta.name, meta.model_version, meta.head.preset, card)
