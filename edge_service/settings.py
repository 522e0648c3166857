"""Settings of the results service (what `inspection serve` passes in) and its fixed request limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MAX_BATCH = 1000  # results in one ingest request
MAX_REQUEST_BYTES = 16 * 1024 * 1024  # by Content-Length, for every request
MAX_MODEL_BYTES = 64 * 1024 * 1024  # a model upload, unless the settings say otherwise


@dataclass
class TrainingSettings:
    """Training jobs (edge_service.training_jobs): where they live, how many run, what an upload may hold."""

    jobs_dir: Path | None = None  # None: "inspection-training" beside the image folder
    max_running: int = 1  # jobs at once; starting another is refused with 409
    max_upload_bytes: int = 512 * 1024**2  # the whole multipart body, counted while it streams
    max_unpacked_bytes: int = 2 * 1024**3  # all zips of one job, unpacked
    max_members: int = 10_000  # members of one zip
    max_pixels: int = 40_000_000  # of one image
    threads: int | None = None  # onnxruntime threads of the worker (None: all cores; it runs at nice 10)


@dataclass
class ServiceSettings:
    database_url: str = "sqlite:///inspection-results.db"
    image_dir: Path = Path("inspection-images")
    insecure_local: bool = False
    stale_seconds: float = 10.0
    image_max_age_days: float | None = 30.0
    image_max_bytes: int | None = 10 * 1024**3
    retention_interval_s: float = 300.0
    image_max_pixels: int = 40_000_000  # an upload declaring more pixels is refused (413) before decoding
    max_future_skew_s: float = 3600.0  # how far a result's times may lie ahead of the service's clock
    model_dir: Path | None = None  # uploaded model files; None: inspection-models beside the image folder
    model_max_bytes: int = MAX_MODEL_BYTES  # the body limit of a model upload (POST /api/v1/models)
    training: TrainingSettings = field(default_factory=TrainingSettings)

    @property
    def models_path(self) -> Path:
        return self.model_dir if self.model_dir is not None else self.image_dir.parent / "inspection-models"
