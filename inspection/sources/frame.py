"""What every frame source shares: the frame, the source protocol and its two errors.

Each source declares its queue policy: files and folders never drop frames (``live = False``: the capture
stage waits); cameras and the simulated line are live (``live = True``: the freshest frame wins and every
dropped frame is counted).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import numpy as np

from inspection.errors import ImageError
from inspection.imaging import Converted, decode_image_converted, to_rgb8


class SourceError(Exception):
    """The source failed (could not open, lost); the watchdog reopens it with backoff."""


class SourceFinished(Exception):
    """A finite source has no more frames."""


@dataclass
class Frame:
    frame_id: int
    captured_at: datetime
    name: str
    image: np.ndarray | None = None  # RGB uint8, when the source decodes
    data: bytes | None = None  # encoded image, when the inference stage decodes (files)
    part_id: str | None = None
    path: Path | None = None  # the file it came from (watch folder: moved afterwards)
    captured_mono: float = field(default_factory=time.monotonic)


class FrameSource(Protocol):
    name: str
    live: bool

    def open(self) -> None: ...

    def read(self, timeout: float) -> Frame | None:
        """The next frame, None if none came within ``timeout``; SourceError / SourceFinished."""

    def close(self) -> None: ...

    def finished(self, frame: Frame, ok: bool) -> None:
        """Called once the frame's result is committed (ok) or the frame failed (the watch folder moves it)."""


def frame_rgb(frame: Frame) -> Converted:
    """The frame as an RGB uint8 image with the conversion made (mono, 16-bit, alpha), decoded from its bytes
    or converted from its array; ImageError when it cannot be."""
    if frame.data is not None:
        return decode_image_converted(frame.data, frame.name)
    if frame.image is not None:
        return to_rgb8(frame.image, frame.name)
    raise ImageError(f"{frame.name}: the source gave neither an image nor encoded data")


def now() -> datetime:
    return datetime.now(UTC)


class FrameIds:
    """Frame ids of one source: 1, 2, 3, ..."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def next(self) -> int:
        return next(self._ids)
