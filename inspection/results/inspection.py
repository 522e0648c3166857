"""What :meth:`InspectionModel.inspect` returns for one image: the verdict with its anomaly map."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from inspection.schema import FrameMappingInfo, InspectionResult, ModelInfo, Region, StageTimings, Verdict


@dataclass
class Inspection:
    """What :meth:`InspectionModel.inspect` returns: the verdict with the anomaly map for this image."""

    verdict: Verdict
    score: float
    threshold: float
    anomaly_map: np.ndarray = field(repr=False)  # float32, the image's own height x width
    regions: list[Region]
    timings: StageTimings
    model: ModelInfo
    input_conversion: str | None = None  # e.g. "grayscale replicated to RGB" for a mono camera
    frame_mapping: FrameMappingInfo | None = None  # how the frame was shown to the model (resize, roi, tiles)

    def to_result(self, **context) -> InspectionResult:
        """The schema-versioned record; ``context`` sets station, part_id, source, captured_at, timings, ..."""
        h, w = self.anomaly_map.shape
        fields = {"model": self.model, "verdict": self.verdict, "score": self.score, "threshold": self.threshold,
                  "image_width": w, "image_height": h, "regions": self.regions, "timings": self.timings,
                  "input_conversion": self.input_conversion, "frame_mapping": self.frame_mapping}
        return InspectionResult(**(fields | context))
