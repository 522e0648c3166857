"""Frame sources: where the parts' images come from.

One small protocol (:class:`FrameSource`) with: an OpenCV device index (USB/V4L2), an RTSP/HTTP stream URL, a
video file (optionally looping), an image folder, a watch folder (files dropped by a legacy machine are
inspected once, then moved to done/ or failed/), and a simulated line (the synthetic generator producing
parts at a set rate and defect rate).

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

import cv2
import numpy as np

from inspection.evaluation.synthetic import DEFECT_KINDS, make_part, rng_for
from inspection.imaging import IMAGE_SUFFIXES, list_images


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
    truth: str | None = None  # simulated line: the defect drawn, or "good"
    captured_mono: float = field(default_factory=time.monotonic)


class FrameSource(Protocol):
    name: str
    live: bool

    def open(self) -> None: ...

    def read(self, timeout: float) -> Frame | None:
        """The next frame, None if none came within ``timeout``; SourceError / SourceFinished."""

    def close(self) -> None: ...

    def finished(self, frame: Frame, ok: bool) -> None:
        """Called once the frame's result is committed (the watch folder moves the file)."""


def _now() -> datetime:
    return datetime.now(UTC)


class _Counter:
    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def next(self) -> int:
        return next(self._ids)


class OpenCVSource:
    """A camera by device index, an RTSP/HTTP stream URL, or a video file (``loop`` to repeat)."""

    def __init__(self, target: int | str, live: bool = True, loop: bool = False, timeout_ms: int = 5000):
        self.target, self.live, self.loop, self.timeout_ms = target, live, loop, timeout_ms
        self.name = f"camera {target}" if isinstance(target, int) else str(target)
        self.cap: cv2.VideoCapture | None = None
        self.ids = _Counter()

    def open(self) -> None:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self.timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.timeout_ms]
        if isinstance(self.target, int):
            cap = cv2.VideoCapture(self.target)
        else:
            if not self.live and not Path(self.target).is_file():
                raise SourceError(f"{self.target}: no such video file")
            cap = cv2.VideoCapture(self.target, cv2.CAP_ANY, params)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.name}: cannot open")
        self.cap = cap

    def read(self, timeout: float) -> Frame | None:
        if self.cap is None:
            raise SourceError(f"{self.name}: not open")
        ok, bgr = self.cap.read()
        if not ok:
            if not self.live:
                if self.loop:
                    self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    ok, bgr = self.cap.read()
                if not ok:
                    raise SourceFinished(self.name)
            else:
                raise SourceError(f"{self.name}: no frame (lost or stalled)")
        fid = self.ids.next()
        return Frame(fid, _now(), f"{self.name}#{fid}", image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None

    def finished(self, frame: Frame, ok: bool) -> None:
        pass


class FolderSource:
    """Every image in a folder once, in name order; never drops (the capture stage waits)."""

    live = False

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.name = f"folder {self.folder}"
        self.pending: list[Path] = []
        self.ids = _Counter()

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"{self.folder}: no such folder")
        self.pending = list_images(self.folder)

    def read(self, timeout: float) -> Frame | None:
        if not self.pending:
            raise SourceFinished(self.name)
        path = self.pending.pop(0)
        return Frame(self.ids.next(), _now(), path.name, data=path.read_bytes(), path=path)

    def close(self) -> None:
        pass

    def finished(self, frame: Frame, ok: bool) -> None:
        pass


class WatchFolderSource:
    """Images dropped into a folder by another machine: each is inspected once, then moved to done/ (or
    failed/ when it could not be inspected). A file is taken only once its size has stopped changing."""

    live = False

    def __init__(self, folder: str | Path, settle_s: float = 0.3, poll_s: float = 0.1):
        self.folder = Path(folder)
        self.done_dir, self.failed_dir = self.folder / "done", self.folder / "failed"
        self.name = f"watch {self.folder}"
        self.settle_s, self.poll_s = settle_s, poll_s
        self.sizes: dict[Path, tuple[int, float]] = {}
        self.taken: set[Path] = set()
        self.ids = _Counter()

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"{self.folder}: no such folder")
        self.done_dir.mkdir(exist_ok=True)
        self.failed_dir.mkdir(exist_ok=True)

    def _ready(self) -> Path | None:
        now = time.monotonic()
        for p in sorted(self.folder.iterdir()):
            if not p.is_file() or p.suffix.lower() not in IMAGE_SUFFIXES or p in self.taken:
                continue
            size = p.stat().st_size
            seen = self.sizes.get(p)
            if seen is None or seen[0] != size:
                self.sizes[p] = (size, now)
            elif now - seen[1] >= self.settle_s:
                return p
        return None

    def read(self, timeout: float) -> Frame | None:
        deadline = time.monotonic() + timeout
        while True:
            path = self._ready()
            if path is not None:
                self.taken.add(path)
                self.sizes.pop(path, None)
                return Frame(self.ids.next(), _now(), path.name, data=path.read_bytes(), path=path)
            if time.monotonic() >= deadline:
                return None
            time.sleep(self.poll_s)

    def close(self) -> None:
        pass

    def finished(self, frame: Frame, ok: bool) -> None:
        if frame.path is None or not frame.path.exists():
            return
        target = (self.done_dir if ok else self.failed_dir) / frame.path.name
        if target.exists():
            target = target.with_name(f"{target.stem}-{frame.frame_id}{target.suffix}")
        frame.path.replace(target)
        self.taken.discard(frame.path)


class SimulatedLine:
    """The synthetic line: parts arrive at ``rate`` per second, a ``defect_rate`` share of them defective.

    The generator is too slow to draw every part live on a small box, so a pool of distinct parts is drawn
    at start (good parts and each defect kind) and parts are taken from it at random, each with its own
    frame id, part id and capture time. Live: behaves like a camera.
    """

    live = True

    def __init__(self, part_type: str = "flange", rate: float = 10.0, defect_rate: float = 0.1, seed: int = 0,
                 pool_size: int = 40, size: int = 256):
        self.part_type, self.rate, self.defect_rate, self.seed = part_type, rate, defect_rate, seed
        self.pool_size, self.size = pool_size, size
        self.name = f"simulated {part_type} line at {rate:g}/s"
        self.good: list[np.ndarray] = []
        self.bad: list[tuple[str, np.ndarray]] = []
        self.rng = np.random.default_rng(seed)
        self.next_at = 0.0
        self.ids = _Counter()

    def open(self) -> None:
        if not self.good:
            n_bad = max(len(DEFECT_KINDS), self.pool_size // 4)
            for i in range(self.pool_size - n_bad):
                self.good.append(make_part(self.part_type, rng_for(self.seed, "sim", "good", i), None, self.size).image)
            for i in range(n_bad):
                kind = DEFECT_KINDS[i % len(DEFECT_KINDS)]
                self.bad.append((kind, make_part(self.part_type, rng_for(self.seed, "sim", kind, i), kind,
                                                 self.size).image))
        self.next_at = time.monotonic()

    def read(self, timeout: float) -> Frame | None:
        wait = self.next_at - time.monotonic()
        if wait > timeout:
            time.sleep(timeout)
            return None
        if wait > 0:
            time.sleep(wait)
        self.next_at = max(self.next_at + 1.0 / self.rate, time.monotonic() - 1.0)
        fid = self.ids.next()
        if self.rng.random() < self.defect_rate:
            truth, image = self.bad[int(self.rng.integers(len(self.bad)))]
        else:
            truth, image = "good", self.good[int(self.rng.integers(len(self.good)))]
        return Frame(fid, _now(), f"sim#{fid}", image=image, part_id=f"SIM-{self.seed}-{fid:07d}", truth=truth)

    def close(self) -> None:
        pass

    def finished(self, frame: Frame, ok: bool) -> None:
        pass
