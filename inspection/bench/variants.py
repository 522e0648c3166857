"""Model variants to sweep over: other input sizes (the same head rebuilt). INT8 models are built by
:mod:`inspection.model.quantize` (see :mod:`inspection.bench.int8`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx

from inspection.model.anomaly_head import HeadParams, resize_bilinear
from inspection.model.graph import head_from_model, inspection_graph
from inspection.model.metadata import read_metadata, write_metadata
from inspection.model.shipped import backbone_path


def at_size(model_path: str | Path, size: tuple[int, int], out: Path) -> Path:
    """The same model at another input size (for speed sweeps; accuracy is only known at the trained size)."""
    head = head_from_model(model_path)
    meta = read_metadata(model_path)
    graph = inspection_graph(onnx.load(str(backbone_path())), resized_head(head, size))
    write_metadata(graph, meta.model_copy(update={"input_size": size, "name": f"{meta.name}@{size[0]}x{size[1]}"}))
    onnx.save(graph, str(out))
    return out


def resized_head(head: HeadParams, size: tuple[int, int]) -> HeadParams:
    """The head at another input size: the position maps (if any) resized bilinearly to the new patch grid."""
    out = replace(head, input_size=size)
    if head.position_mean is None or head.position_std is None:
        return out
    grid = out.patch_shape
    mean, std = (resize_bilinear(m[None, None].astype(np.float64), grid)[0, 0].astype(np.float32)
                 for m in (head.position_mean, head.position_std))
    return replace(out, position_mean=mean, position_std=std, top_k=min(head.top_k, grid[0] * grid[1]))


def rank_correlation(a, b) -> float:
    """Spearman's rank correlation (ties get their mean rank)."""
    from inspection.evaluation.metrics import ranks

    ra, rb = ranks(np.asarray(a, np.float64)), ranks(np.asarray(b, np.float64))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])
