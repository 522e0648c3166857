"""Settings of the results service (what `inspection serve` passes in) and its fixed request limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edge_service.shifts import parse_shift_starts, parse_zone

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
    # operator page
    shift_starts: str = "06:00,14:00,22:00"  # shift counters reset at each of these local times
    shift_timezone: str = "UTC"
    fail_latch_seconds: float = 0.0  # a FAIL stays on screen this long; 0: until acknowledged
    alarm_consecutive_fails: int = 3  # the alarm banner after this many FAILs in a row
    kiosk_session_days: float = 365.0  # a kiosk login lasts this long unless logged out or revoked

    def __post_init__(self) -> None:
        """Refuse bad operator-page settings at start, naming them."""
        parse_shift_starts(self.shift_starts)
        parse_zone(self.shift_timezone)
        if not self.fail_latch_seconds >= 0:
            raise ValueError(f"fail latch seconds must be >= 0 (0: until acknowledged), not {self.fail_latch_seconds}")
        if self.alarm_consecutive_fails < 1:
            raise ValueError(f"alarm consecutive fails must be >= 1, not {self.alarm_consecutive_fails}")
        if not self.kiosk_session_days > 0:
            raise ValueError(f"kiosk session days must be > 0, not {self.kiosk_session_days}")

    @property
    def models_path(self) -> Path:
        return self.model_dir if self.model_dir is not None else self.image_dir.parent / "inspection-models"
