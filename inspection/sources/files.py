"""File sources: an image folder (every image once, in name order) and a watch folder (files dropped by a
legacy machine are inspected once, then moved to done/ or failed/)."""

from __future__ import annotations

import time
from pathlib import Path

from inspection.imaging import IMAGE_SUFFIXES, list_images
from inspection.sources.frame import Frame, FrameIds, SourceError, SourceFinished, now


class FolderSource:
    """Every image in a folder once, in name order; never drops (the capture stage waits)."""

    live = False

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.name = f"folder {self.folder}"
        self.pending: list[Path] = []
        self.ids = FrameIds()

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"{self.folder}: no such folder")
        self.pending = list_images(self.folder)

    def read(self, timeout: float) -> Frame | None:
        if not self.pending:
            raise SourceFinished(self.name)
        path = self.pending.pop(0)
        return Frame(self.ids.next(), now(), path.name, data=path.read_bytes(), path=path)

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
        self.ids = FrameIds()

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"{self.folder}: no such folder")
        self.done_dir.mkdir(exist_ok=True)
        self.failed_dir.mkdir(exist_ok=True)

    def _ready(self) -> Path | None:
        mono = time.monotonic()
        for p in sorted(self.folder.iterdir()):
            if not p.is_file() or p.suffix.lower() not in IMAGE_SUFFIXES or p in self.taken:
                continue
            size = p.stat().st_size
            seen = self.sizes.get(p)
            if seen is None or seen[0] != size:
                self.sizes[p] = (size, mono)
            elif mono - seen[1] >= self.settle_s:
                return p
        return None

    def read(self, timeout: float) -> Frame | None:
        deadline = time.monotonic() + timeout
        while True:
            path = self._ready()
            if path is not None:
                self.taken.add(path)
                self.sizes.pop(path, None)
                return Frame(self.ids.next(), now(), path.name, data=path.read_bytes(), path=path)
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
