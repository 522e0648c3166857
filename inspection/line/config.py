"""The station's configuration: a TOML file validated at start; errors name the key at fault.

Secrets (the service token, the MQTT password) can be given as ``token_env`` / ``password_env`` (the name of
an environment variable) instead of in the file; they are held as SecretStr and never printed or logged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from inspection.errors import InspectionError
from inspection.model.shipped import DEFAULT_PART
from inspection.model.tiling import FrameMapping
from inspection.plant.config import PlantSection
from inspection.schema import StationContext
from inspection.toml_files import apply_overrides, read_toml


class ConfigError(InspectionError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StationSection(StationContext):
    """The station's ISA-95 context, as in every result; no other keys."""

    model_config = ConfigDict(extra="forbid")


class ModelSection(_Strict):
    path: Path | None = Field(default=None, description="ONNX model; may be left out only for the simulated "
                                                         "flange line (the shipped default model)")
    threads: int = Field(default=1, ge=1, le=64)


class SourceSection(_Strict):
    kind: Literal["simulated", "camera", "stream", "video", "folder", "watch", "gige"] = "simulated"
    # simulated
    part_type: Literal["knurled_plate", "flange"] = "flange"
    rate: float = Field(default=10.0, gt=0, le=1000, description="parts per second")
    defect_rate: float = Field(default=0.1, ge=0, le=1)
    seed: int = 0
    # camera / stream / video / folder / watch
    device: int | None = Field(default=None, ge=0)
    url: str | None = None
    path: Path | None = None
    loop: bool = False
    # gige: GigE Vision camera through Aravis, by device id (as arv-tool-0.8 lists it) or IP address
    camera_id: str | None = Field(default=None, min_length=1, max_length=256)
    exposure_us: float | None = Field(default=None, gt=0, le=10_000_000)
    gain_db: float | None = Field(default=None, ge=0, le=48)
    trigger: Literal["software"] | None = Field(default=None, description="software: one frame per trigger "
                                                "(gige, and simulated: a triggered camera)")
    stall_timeout_s: float = Field(default=5.0, gt=0)
    queue_size: int = Field(default=4, ge=1, le=1000)

    @model_validator(mode="after")
    def _needs(self):
        need = {"camera": "device", "stream": "url", "video": "path", "folder": "path", "watch": "path",
                "gige": "camera_id"}.get(self.kind)
        if need and getattr(self, need) is None:
            raise ValueError(f"source kind {self.kind!r} needs source.{need}")
        return self


class ImagesSection(_Strict):
    dir: Path = Path("runs/images")
    keep_pass_fraction: float = Field(default=0.02, ge=0, le=1, description="share of PASS parts whose images "
                                                                             "are kept (all FAILs are)")
    keep_near_threshold: float = Field(default=0.05, ge=0, le=1, description="every result whose score lies "
                                       "within this share of the threshold (|score - threshold| <= x * "
                                       "threshold) keeps its images; 0: off")
    max_age_days: float = Field(default=7.0, gt=0)
    max_gb: float = Field(default=5.0, gt=0)


class ServiceSection(_Strict):
    url: str | None = Field(default=None, description="results service base URL; none = no HTTP delivery")
    token: SecretStr | None = None
    token_env: str | None = "INSPECTION_SERVICE_TOKEN"
    batch: int = Field(default=50, ge=1, le=1000)

    def secret(self) -> str | None:
        if self.token is not None:
            return self.token.get_secret_value()
        return os.environ.get(self.token_env) if self.token_env else None


SPARKPLUG_ID = r"^[A-Za-z0-9_.\-]{1,64}$"  # no '/', '+', '#': Sparkplug ids are topic levels


class SparkplugSection(_Strict):
    """Sparkplug B on the same broker beside the JSON topics; ids default to the station's path."""

    enabled: bool = False
    group_id: str | None = Field(default=None, pattern=SPARKPLUG_ID, description="default: station.site")
    edge_node_id: str | None = Field(default=None, pattern=SPARKPLUG_ID, description="default: area-line-cell")
    device_id: str | None = Field(default=None, pattern=SPARKPLUG_ID, description="default: station.station")


class MqttSection(_Strict):
    host: str | None = Field(default=None, description="broker host; none = no MQTT")
    port: int = Field(default=1883, ge=1, le=65535)
    topic_prefix: str = Field(default="inspection", pattern=r"^[A-Za-z0-9_\-/]+$")
    username: str | None = None
    password: SecretStr | None = None
    password_env: str | None = "INSPECTION_MQTT_PASSWORD"
    sparkplug: SparkplugSection = SparkplugSection()

    def secret(self) -> str | None:
        if self.password is not None:
            return self.password.get_secret_value()
        return os.environ.get(self.password_env) if self.password_env else None


class AssignmentSection(_Strict):
    """The model assignment from the results service (``[service]`` url and token): polled, the assigned model
    downloaded, checked and swapped in between two frames; off by default."""

    enabled: bool = False
    poll_interval_s: float = Field(default=10.0, gt=0, le=3600, description="seconds between polls")
    cache_dir: Path = Field(default=Path("runs/models"), description="downloaded models (<sha256>.onnx) and the "
                            "last applied assignment, reused after a restart while the service is down")
    timeout_s: float = Field(default=30.0, gt=0, le=3600, description="per request (a download: per read)")
    max_model_mb: float = Field(default=512.0, gt=0, le=16384, description="larger downloads are refused")


class StatusSection(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=9100, ge=0, le=65535, description="0 = no status server")


class DriftSection(_Strict):
    window_s: float = Field(default=3600.0, gt=0, le=7 * 86400, description="rolling window of PASS scores "
                            "compared with the model's good scores (inspection.line.drift)")
    min_count: int = Field(default=30, ge=2, description="PASS parts the window needs before figures are given")
    publish_s: float = Field(default=60.0, gt=0, description="how often the figures go to MQTT .../status/drift")


class StationConfig(_Strict):
    station: StationSection
    model: ModelSection = ModelSection()
    source: SourceSection = SourceSection()
    outbox: Path = Path("runs/outbox.db")
    images: ImagesSection = ImagesSection()
    service: ServiceSection = ServiceSection()
    mqtt: MqttSection = MqttSection()
    status: StatusSection = StatusSection()
    assignment: AssignmentSection = AssignmentSection()
    drift: DriftSection = DriftSection()
    frame_mapping: FrameMapping = Field(default_factory=FrameMapping, description="how frames are shown to the "
                                        "model: resize (default), roi, or tiles (inspection.model.tiling)")
    plant: PlantSection = Field(default_factory=PlantSection, description="trigger mode: the PLC handshake, "
                                "recipes, Modbus TCP and OPC UA; off (free-running) by default")

    @model_validator(mode="after")
    def _sparkplug_needs_broker(self):
        if self.mqtt.sparkplug.enabled and not self.mqtt.host:
            raise ValueError("mqtt.sparkplug.enabled: Sparkplug B needs a broker (mqtt.host)")
        return self

    @model_validator(mode="after")
    def _assignment_needs_service(self):
        if self.assignment.enabled and not self.service.url:
            raise ValueError("assignment.enabled: the model assignment is polled from the results service "
                             "(service.url)")
        return self

    @model_validator(mode="after")
    def _model_needed(self):
        s = self.source
        if self.model.path is None and not (s.kind == "simulated" and s.part_type == DEFAULT_PART):
            what = f"the simulated {s.part_type} line" if s.kind == "simulated" else f"source kind {s.kind!r}"
            raise ValueError(f"model.path: {what} needs a model file; the default model (the shipped demo model "
                             f"of the simulated {DEFAULT_PART}) is only for the simulated {DEFAULT_PART} line")
        return self


def parse_config(data: dict, source: str) -> StationConfig:
    try:
        return StationConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            key = ".".join(str(p) for p in e["loc"]) or "(top level)"
            msg = e["msg"].replace("Value error, ", "")
            if e["type"] == "extra_forbidden":
                msg = "unknown key"
            problems.append(msg if not e["loc"] and ": " in msg else f"{key}: {msg}")  # a rule that names its key
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None


def load_config(path: str | Path, overrides: dict | None = None) -> StationConfig:
    """Read a TOML file; ``overrides`` (dotted keys, from flags and environment) win over the file."""
    path = Path(path)
    data = apply_overrides(read_toml(path, ConfigError), overrides)
    return parse_config(data, str(path))
