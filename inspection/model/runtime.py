"""Running an inspection model: one ONNX file in, a typed verdict with anomaly map and regions out."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import onnx
import onnxruntime as ort

from inspection.errors import ModelError
from inspection.imaging import load_image_converted, to_rgb8
from inspection.model.graph import STRIDE
from inspection.model.metadata import ModelMetadata, from_props
from inspection.model.tiling import FrameMapping, ViewPlan, border_band, plan_views, resize_to, stitch_max, view_batch
from inspection.results.inspection import Inspection
from inspection.results.regions import find_regions
from inspection.schema import FrameArea, FrameMappingInfo, ModelInfo, Region, StageTimings


def session_options(threads: int | None) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return opts


def resize_for_model(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize RGB uint8 to (height, width), as the metadata's preprocessing says."""
    return resize_to(image, size)


class InspectionModel:
    """A trained inspection model. ``InspectionModel.load(path)``, then ``inspect(image)``."""

    def __init__(self, session: ort.InferenceSession, meta: ModelMetadata, sha256: str, path: str):
        self.session, self.meta, self.path = session, meta, path
        self.info = ModelInfo(name=meta.name, version=meta.model_version, sha256=sha256)
        self.threshold = meta.threshold

    @classmethod
    def load(cls, path: str | Path, threads: int | None = None,
             providers: list[str] | None = None) -> InspectionModel:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelError(f"{path}: cannot read model file ({exc.strerror})") from None
        try:
            proto = onnx.load_from_string(data)
        except Exception as exc:  # protobuf raises DecodeError and others for files that are not ONNX
            raise ModelError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
        meta = from_props({p.key: p.value for p in proto.metadata_props}, str(path))
        try:
            session = ort.InferenceSession(data, session_options(threads),
                                           providers=providers or ["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{path}: onnxruntime cannot load the model ({str(exc).splitlines()[0][:300]})") from None
        names = {i.name for i in session.get_inputs()}, {o.name for o in session.get_outputs()}
        if names != ({"image"}, {"anomaly_map", "score"}):
            raise ModelError(f"{path}: graph has inputs {sorted(names[0])} and outputs {sorted(names[1])}; "
                             "an inspection model has input 'image' and outputs 'anomaly_map', 'score'")
        return cls(session, meta, hashlib.sha256(data).hexdigest(), str(path))

    @property
    def input_size(self) -> tuple[int, int]:
        return self.meta.input_size

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw graph call: uint8 (N, H, W, 3) at the input size -> (maps (N, H, W), scores (N,))."""
        maps, scores = self.session.run(["anomaly_map", "score"], {"image": batch})
        return maps[:, 0], scores

    def run_batched(self, batch: np.ndarray, max_batch: int | None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`run` in calls of at most ``max_batch`` images (None: one call)."""
        if max_batch is None or len(batch) <= max_batch:
            return self.run(batch)
        parts = [self.run(batch[i:i + max_batch]) for i in range(0, len(batch), max_batch)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def inspect(self, image: np.ndarray | str | Path, name: str = "image",
                mapping: FrameMapping | None = None) -> Inspection:
        """Inspect one image (RGB uint8 HxWx3 array or a file; 8-bit grey, 16-bit and RGBA are converted and
        the conversion is named in ``input_conversion``); the map comes back at the image's size.
        ``mapping`` (default: resize) says how the frame is shown to the model (:mod:`inspection.model.tiling`:
        resize, an roi, or tiles run as one batch and stitched); a mapping that does not fit the frame raises
        :class:`~inspection.model.tiling.FrameMappingError`."""
        t0 = time.perf_counter()
        if isinstance(image, str | Path):
            name, converted = str(image), load_image_converted(image)
        else:
            converted = to_rgb8(np.asarray(image), name)
        image = converted.image
        plan = None if mapping is None or mapping.mode == "resize" else plan_views(mapping, image.shape[:2],
                                                                                     self.input_size)
        batch = resize_for_model(image, self.input_size)[None] if plan is None else view_batch(
            image, plan, self.input_size)
        t1 = time.perf_counter()
        maps, scores = self.run_batched(batch, mapping.max_batch if plan is not None and mapping else None)
        t2 = time.perf_counter()
        if plan is None:
            inspection = self.postprocess(image.shape[:2], maps[0], float(scores[0]))
        else:
            inspection = self.postprocess_views(plan, maps, scores)
        inspection.input_conversion = converted.conversion
        t3 = time.perf_counter()
        inspection.timings = StageTimings(preprocess_ms=(t1 - t0) * 1e3, inference_ms=(t2 - t1) * 1e3,
                                          postprocess_ms=(t3 - t2) * 1e3)
        return inspection

    def postprocess(self, image_hw: tuple[int, int], model_map: np.ndarray, score: float) -> Inspection:
        """Verdict, regions and the map at the image's size from one graph output of the whole image resized
        (timings left at zero)."""
        h, w = image_hw
        mh, mw = model_map.shape
        regions = find_regions(model_map, self.threshold, scale=(w / mw, h / mh))
        full = model_map if (h, w) == (mh, mw) else cv2.resize(model_map, (w, h), interpolation=cv2.INTER_LINEAR)
        mapping = FrameMappingInfo(mode="resize", area=FrameArea(x=0, y=0, width=w, height=h))
        return self._judged(score, full, regions, mapping)

    def postprocess_views(self, plan: ViewPlan, maps: np.ndarray, scores: np.ndarray) -> Inspection:
        """Verdict, regions and the stitched frame-sized map from the graph outputs of a plan's views (N maps
        (N, h, w), scores (N,)): the score is the views' maximum, regions are found on the stitched map (where
        views overlap, a view's excluded border never overrides another's interior)."""
        full = stitch_max(maps, plan.views, plan.frame_hw, area=plan.area,
                          band=border_band(self.meta.head.border, STRIDE))
        regions = find_regions(full, self.threshold)
        return self._judged(float(np.max(scores)), full, regions, plan.describe())

    def _judged(self, score: float, full: np.ndarray, regions: list[Region], mapping: FrameMappingInfo) -> Inspection:
        verdict: Literal["PASS", "FAIL"] = "FAIL" if score > self.threshold else "PASS"
        return Inspection(verdict=verdict, score=score, threshold=self.threshold, anomaly_map=full,
                          regions=regions, timings=StageTimings(preprocess_ms=0, inference_ms=0,
                                                                postprocess_ms=0), model=self.info,
                          frame_mapping=mapping)
