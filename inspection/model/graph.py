"""Building the ONNX graphs: the shipped backbone with preprocessing in front and the anomaly head behind.

Two graphs are built from the same front end, so training features and inspection come from identical ops:
- the *feature graph* (training): ``image`` -> ``pooled8``, ``pooled16`` (steps 1-2 of the head);
- the *inspection graph* (the model file): ``image`` -> ``anomaly_map`` (N, 1, H, W) and ``score`` (N).

``image`` is uint8 RGB, NHWC, at the model's fixed input size. See :mod:`inspection.model.anomaly_head` for the
algorithm in numpy; tests check the two agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from inspection.errors import ModelError
from inspection.model.anomaly_head import HeadParams
from inspection.model.metadata import read_metadata

OPSET = 17
BACKBONE_INPUT = "input"
STRIDE = 8


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray | np.generic) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], output: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attrs))
        return output


def check_input_size(input_size: tuple[int, int]) -> None:
    h, w = input_size
    if h % 16 or w % 16 or h < 32 or w < 32:
        raise ValueError(f"input size {h}x{w}: height and width must be multiples of 16, at least 32")


def _front(b: _Builder, backbone: onnx.ModelProto, input_size: tuple[int, int]) -> tuple[str, str]:
    """Preprocessing + backbone + pooling; returns the names of pooled8 and pooled16 (upsampled)."""
    check_input_size(input_size)
    b.op("Cast", ["image"], "pre/float", to=TensorProto.FLOAT)
    b.op("Sub", ["pre/float", b.const("pre/offset", np.float32(127.0))], "pre/centred")
    b.op("Mul", ["pre/centred", b.const("pre/gain", np.float32(1 / 128))], "pre/scaled")
    b.op("Transpose", ["pre/scaled"], BACKBONE_INPUT, perm=[0, 3, 1, 2])
    b.nodes.extend(backbone.graph.node)
    b.inits.extend(backbone.graph.initializer)
    feat8, feat16 = (o.name for o in backbone.graph.output)
    pool = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [1, 1], "count_include_pad": 0}
    p8 = b.op("AveragePool", [feat8], "head/pooled8", **pool)
    b.op("AveragePool", [feat16], "head/pooled16_s16", **pool)
    p16 = b.op("Resize", ["head/pooled16_s16", "", b.const("head/up2", np.array([1, 1, 2, 2], np.float32))],
               "head/pooled16", mode="linear", coordinate_transformation_mode="half_pixel")
    return p8, p16


def backbone_channels(backbone: onnx.ModelProto) -> tuple[int, int]:
    """Channels of the backbone's two feature taps (stride 8, stride 16), read from its declared outputs."""
    channels = []
    for o in backbone.graph.output:
        dims = o.type.tensor_type.shape.dim
        if len(dims) != 4 or not dims[1].dim_value:
            raise ModelError(f"backbone output {o.name!r}: expected a fixed channel count in N x C x H x W")
        channels.append(dims[1].dim_value)
    if len(channels) != 2:
        raise ModelError(f"the backbone has {len(channels)} outputs; the head needs two (stride 8 and 16)")
    return channels[0], channels[1]


def _image_input(input_size: tuple[int, int]) -> onnx.ValueInfoProto:
    h, w = input_size
    return helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", h, w, 3])


def _model(b: _Builder, outputs: list[onnx.ValueInfoProto], input_size: tuple[int, int], name: str
           ) -> onnx.ModelProto:
    graph = helper.make_graph(b.nodes, name, [_image_input(input_size)], outputs, b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="inspection")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def feature_graph(backbone: onnx.ModelProto, input_size: tuple[int, int]) -> onnx.ModelProto:
    b = _Builder()
    p8, p16 = _front(b, backbone, input_size)
    h, w = input_size[0] // STRIDE, input_size[1] // STRIDE
    c8, c16 = backbone_channels(backbone)
    outs = [helper.make_tensor_value_info(p8, TensorProto.FLOAT, ["N", c8, h, w]),
            helper.make_tensor_value_info(p16, TensorProto.FLOAT, ["N", c16, h, w])]
    # rename the outputs to their public names
    b.op("Identity", [p8], "pooled8")
    b.op("Identity", [p16], "pooled16")
    outs[0].name, outs[1].name = "pooled8", "pooled16"
    return _model(b, outs, input_size, "inspection_features")


def _normalise(b: _Builder, patch_map: str, head: HeadParams) -> str:
    """Per-position normalisation (d - mean) * (1 / std) with two constant (1, 1, h, w) maps."""
    if head.position_mean is None or head.position_std is None:
        return patch_map
    b.op("Sub", [patch_map, b.const("head/position_mean", head.position_mean[None, None].astype(np.float32))],
         "head/centred")
    inv = (1.0 / head.position_std.astype(np.float64))[None, None].astype(np.float32)
    return b.op("Mul", ["head/centred", b.const("head/position_inv_std", inv)], "head/normalised")


def _score(b: _Builder, patch_map: str, head: HeadParams) -> None:
    """The map's maximum, or the mean of the top-k patches capped at the maximum (so a part that fails
    always has a region above the threshold)."""
    if head.top_k <= 1:
        b.op("ReduceMax", ["anomaly_map"], "score", axes=[1, 2, 3], keepdims=0)
        return
    b.op("ReduceMax", ["anomaly_map"], "head/peak", axes=[1, 2, 3], keepdims=0)
    h, w = head.patch_shape
    b.op("Reshape", [patch_map, b.const("head/flat_shape", np.array([-1, h * w], np.int64))], "head/flat")
    b.nodes.append(helper.make_node("TopK", ["head/flat", b.const("head/k", np.array([head.top_k], np.int64))],
                                    ["head/top_values", "head/top_indices"], name="head/top", axis=1))
    b.op("ReduceMean", ["head/top_values"], "head/top_mean", axes=[1], keepdims=0)
    b.op("Min", ["head/top_mean", "head/peak"], "score")


def _distance(b: _Builder, x: str, head: HeadParams) -> None:
    """head/dist (P,): from head/cross (P, K), the distance to the nearest entry, or the mean distance to the
    k nearest (TopK of the negated cross terms)."""
    k = min(head.k_nearest, len(head.bank))
    if k <= 1:
        b.op("ReduceMin", ["head/cross"], "head/min_cross", axes=[1], keepdims=0)
        b.op("ReduceSumSquare", [x], "head/x_sq", axes=[1], keepdims=0)
        b.op("Add", ["head/min_cross", "head/x_sq"], "head/d2")
        b.op("Relu", ["head/d2"], "head/d2_pos")  # rounding can make a tiny distance negative
        b.op("Sqrt", ["head/d2_pos"], "head/dist")
        return
    b.op("Neg", ["head/cross"], "head/neg_cross")
    b.nodes.append(helper.make_node("TopK", ["head/neg_cross", b.const("head/k_nearest", np.array([k], np.int64))],
                                    ["head/near_neg", "head/near_idx"], name="head/nearest", axis=1))
    b.op("Neg", ["head/near_neg"], "head/near_cross")
    b.op("ReduceSumSquare", [x], "head/x_sq", axes=[1], keepdims=1)
    b.op("Add", ["head/near_cross", "head/x_sq"], "head/d2")
    b.op("Relu", ["head/d2"], "head/d2_pos")
    b.op("Sqrt", ["head/d2_pos"], "head/near_dist")
    b.op("ReduceMean", ["head/near_dist"], "head/dist", axes=[1], keepdims=0)


def inspection_graph(backbone: onnx.ModelProto, head: HeadParams) -> onnx.ModelProto:
    b = _Builder()
    p8, p16 = _front(b, backbone, head.input_size)
    h, w = head.input_size[0] // STRIDE, head.input_size[1] // STRIDE
    s8, s16 = (np.float32(s) for s in head.layer_scales)
    b.op("Mul", [p8, b.const("head/scale8", s8)], "head/scaled8")
    b.op("Mul", [p16, b.const("head/scale16", s16)], "head/scaled16")
    b.op("Concat", ["head/scaled8", "head/scaled16"], "head/joined", axis=1)
    b.op("Transpose", ["head/joined"], "head/nhwc", perm=[0, 2, 3, 1])
    dim = sum(backbone_channels(backbone))
    x = b.op("Reshape", ["head/nhwc", b.const("head/rows", np.array([-1, dim], np.int64))], "head/patches")
    if head.whiten is not None and head.whiten_mean is not None:
        b.op("Sub", [x, b.const("head/whiten_mean", head.whiten_mean.astype(np.float32))], "head/centred_x")
        x = b.op("MatMul", ["head/centred_x", b.const("head/whiten", head.whiten.astype(np.float32))],
                 "head/whitened")
    xp = x
    if head.projection is not None:
        xp = b.op("MatMul", [x, b.const("head/projection", head.projection.astype(np.float32))], "head/projected")
    # |x - m|^2 = |x|^2 + (|m|^2 - 2 x.m): one Gemm with the bias folded in, then the minimum over m
    b.op("Gemm", [xp, b.const("head/bank_t", (-2 * head.bank.astype(np.float64).T).astype(np.float32)),
                  b.const("head/bank_sq", head.bank_sq.astype(np.float32))], "head/cross")
    _distance(b, x, head)
    b.op("Reshape", ["head/dist", b.const("head/map_shape", np.array([-1, 1, h, w], np.int64))], "head/patch_map")
    smooth = _normalise(b, "head/patch_map", head)
    if head.blur_sigma > 0:
        kernel = head.blur_kernel
        r = kernel.shape[0] // 2
        pads = b.const("head/blur_pads", np.array([0, 0, r, r, 0, 0, r, r], np.int64))
        b.op("Pad", [smooth, pads], "head/padded", mode="edge")
        smooth = b.op("Conv", ["head/padded", b.const("head/blur", kernel[None, None].astype(np.float32))],
                      "head/smooth")
    if head.border > 0:
        smooth = b.op("Mul", [smooth, b.const("head/border_keep", head.border_keep[None, None])], "head/inside")
    b.op("Resize", [smooth, "", b.const("head/up8", np.array([1, 1, STRIDE, STRIDE], np.float32))],
         "anomaly_map", mode="linear", coordinate_transformation_mode="half_pixel")
    _score(b, smooth, head)
    H, W = head.input_size
    outs = [helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, ["N", 1, H, W]),
            helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])]
    return _model(b, outs, head.input_size, "inspection_patchcore")


def head_from_model(model_path: str | Path) -> HeadParams:
    """The trained head's parameters read back from an inspection model file (the inverse of
    :func:`inspection_graph`)."""
    graph = onnx.load(str(model_path))
    inits = {i.name: numpy_helper.to_array(i) for i in graph.graph.initializer}
    meta = read_metadata(model_path)
    inv_std = inits.get("head/position_inv_std")
    mean = inits.get("head/position_mean")
    return HeadParams((float(inits["head/scale8"]), float(inits["head/scale16"])), inits.get("head/projection"),
                      (-0.5 * inits["head/bank_t"].T).astype(np.float32), inits["head/bank_sq"],
                      meta.head.blur_sigma, meta.input_size,
                      position_mean=None if mean is None else mean[0, 0],
                      position_std=None if inv_std is None else (1.0 / inv_std[0, 0]).astype(np.float32),
                      border=meta.head.border, top_k=meta.head.top_k, k_nearest=meta.head.k_nearest,
                      whiten_mean=inits.get("head/whiten_mean"), whiten=inits.get("head/whiten"))
