"""One runner per station on an edge box: an exclusive ``fcntl`` lock on a file named after the station,
held for as long as the runner runs (the kernel releases it when the process ends, even after kill -9).

The lock files live in ``$INSPECTION_LOCK_DIR``, by default ``/run/lock/inspection`` when that is writable
(root, as under systemd) and ``<tempdir>/inspection-locks`` otherwise; every runner of the box must agree on
the folder, so set the variable the same way for all of them if they run as different users.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path
from types import TracebackType

from inspection.errors import InspectionError


class StationBusy(InspectionError):
    """Another runner holds this station's lock."""


def lock_dir() -> Path:
    """Where the station lock files are (created if missing)."""
    chosen = os.environ.get("INSPECTION_LOCK_DIR")
    if chosen:
        folder = Path(chosen)
    else:
        system = Path("/run/lock")
        writable = system.is_dir() and os.access(system, os.W_OK)
        folder = system / "inspection" if writable else Path(tempfile.gettempdir()) / "inspection-locks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def lock_path(station_path: str, folder: Path | None = None) -> Path:
    return (folder or lock_dir()) / (station_path.replace("/", "__") + ".lock")


class StationLock:
    """``with StationLock("plant1/area1/line1/cell1/st1"):`` — raises :class:`StationBusy` when taken."""

    def __init__(self, station_path: str, folder: Path | None = None):
        self.station_path = station_path
        self.path = lock_path(station_path, folder)
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StationBusy(f"station {self.station_path} is already run by another `inspection run` on this "
                              f"box (pid {holder}; lock file {self.path}); stop that one first, or give this "
                              "one another station") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the lock
            self._fd = None

    def __enter__(self) -> StationLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
