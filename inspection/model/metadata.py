"""The metadata every inspection model carries inside its ONNX file (``metadata_props``).

Each field is stored under the key ``inspection.<field>`` with a JSON value, so any ONNX tool can read it. A
model without the required keys is not one of ours and is refused with a message naming the missing keys.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import onnx
from pydantic import BaseModel, Field, ValidationError

from inspection.errors import ModelError

PREFIX = "inspection."
FORMAT_VERSION = 1
TASK = "anomaly_detection"


class Preprocessing(BaseModel):
    input: str = "uint8 RGB, NHWC, resized to input_size (height, width) without keeping the aspect ratio"
    resize: str = "cv2.INTER_AREA when shrinking, cv2.INTER_LINEAR when enlarging"
    normalisation: str = "(x - 127) / 128, done inside the graph"


class ScoreStats(BaseModel):
    """Scores of a set of good images under this model."""

    count: int
    mean: float
    std: float
    min: float
    p50: float
    p99: float
    max: float
    quantiles: list[float] | None = Field(None, description="the scores at probabilities 0, 0.05, ..., 1 (21 "
                                          "values, linear interpolation): the reference for the line's drift "
                                          "figure; absent in models trained before it (then mean and std are used)")


class TrainingSet(BaseModel):
    folder: str
    images: int = Field(description="images in the memory bank")
    held_out: int = Field(description="good images held out for calibration")
    held_out_folder: str | None = Field(None, description="the separate folder the held-out images came from "
                                        "(`train --calib-good`, as given there); None: they were a hold-out "
                                        "fraction of the bank's folder (and in models written before this field)")
    digest: str = Field(description="SHA-256 over the sorted (name, SHA-256 of content) of every image used")


class Head(BaseModel):
    backbone: str
    backbone_sha256: str
    layers: list[str]
    feature_dim: int
    projection_dim: int | None
    bank_size: int
    pooling: str = "3x3 average, stride 1, edges averaged over valid pixels"
    blur_sigma: float = Field(description="Gaussian blur of the patch map, in patches (stride 8)")
    normalisation: str = Field("none", description="per-position normalisation of the patch map: none, or "
                               "how its mean and std maps were measured")
    whitened: bool = Field(False, description="patch features whitened with the training patches' covariance")
    border: int = Field(0, description="patches at each edge left out of the map and the score")
    top_k: int = Field(1, description="image score: mean of the top-k patch values (1 = the map's maximum)")
    k_nearest: int = Field(1, description="patch distance: mean distance to the k nearest bank entries")
    preset: str | None = Field(None, description="the training preset (fast, balanced, accurate), if any")
    precision: str = Field("fp32", description="backbone arithmetic: fp32, or int8 (statically quantised; the "
                           "head stays fp32 and its bank was rebuilt from the int8 backbone's features)")
    quantization: dict | None = Field(None, description="int8 only: how the backbone was quantised")


class ModelMetadata(BaseModel):
    format_version: int = FORMAT_VERSION
    task: str = TASK
    name: str
    model_version: str
    input_size: tuple[int, int] = Field(description="height, width")
    preprocessing: Preprocessing = Preprocessing()
    threshold: float
    good_scores: ScoreStats
    training_set: TrainingSet
    head: Head
    calibration: dict = Field(default_factory=dict, description="summary of the calibration that set threshold")
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    tool_version: str


REQUIRED_KEYS = [PREFIX + name for name, f in ModelMetadata.model_fields.items() if f.is_required()] + [
    PREFIX + "format_version", PREFIX + "task"]


def to_props(meta: ModelMetadata) -> dict[str, str]:
    return {PREFIX + k: json.dumps(v) for k, v in meta.model_dump(mode="json").items()}


def from_props(props: dict[str, str], source: str) -> ModelMetadata:
    """Parse metadata_props; ModelError names the file and every key that is missing or wrong."""
    ours = {k[len(PREFIX):]: v for k, v in props.items() if k.startswith(PREFIX)}
    missing = [k for k in REQUIRED_KEYS if k[len(PREFIX):] not in ours]
    if missing:
        raise ModelError(
            f"{source}: not an inspection model: its ONNX metadata_props lack {', '.join(sorted(missing))}. "
            f"A model needs the keys {', '.join(sorted(REQUIRED_KEYS))} (JSON values), as written by "
            "`inspection train`")
    try:
        values = {k: json.loads(v) for k, v in ours.items()}
    except json.JSONDecodeError as exc:
        raise ModelError(f"{source}: metadata value is not JSON ({exc})") from None
    if values.get("task") != TASK:
        raise ModelError(f"{source}: metadata task is {values.get('task')!r}; this runtime runs {TASK!r}")
    if values.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{source}: metadata format_version {values.get('format_version')!r} is not "
                         f"supported (this runtime reads {FORMAT_VERSION})")
    try:
        return ModelMetadata.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{PREFIX}{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ModelError(f"{source}: invalid metadata: {problems}") from None


def write_metadata(model: onnx.ModelProto, meta: ModelMetadata) -> None:
    """Replace this project's metadata_props on an in-memory model (other keys are kept)."""
    keep = [p for p in model.metadata_props if not p.key.startswith(PREFIX)]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in to_props(meta).items():
        model.metadata_props.add(key=key, value=value)


def read_metadata(path: str | Path) -> ModelMetadata:
    model = load_onnx(path)
    return from_props({p.key: p.value for p in model.metadata_props}, str(path))


def load_onnx(path: str | Path) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... for files that are not ONNX
        raise ModelError(f"{path}: not an ONNX model ({type(exc).__name__}: {exc})") from None
