"""Originals and overlays kept on the edge box, with retention by age and total bytes, oldest first (the
rule shared with the results service: :func:`inspection.retention.expired`)."""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from inspection.errors import ImageError
from inspection.imaging import save_image
from inspection.line import metrics as m
from inspection.retention import Kept, expired

log = logging.getLogger("inspection.line.images")


class LocalImages:
    def __init__(self, root: Path, max_age_days: float, max_bytes: int):
        self.root, self.max_age_s, self.max_bytes = Path(root), max_age_days * 86400, max_bytes
        self.last_sweep = 0.0

    def save(self, inspection_id: str, image: np.ndarray, overlay: np.ndarray) -> tuple[str | None, str | None]:
        """Both images, or neither: a failed write (disk full, read-only) is counted and inspection goes on."""
        day = self.root / datetime.now(UTC).strftime("%Y%m%d")
        paths = (day / f"{inspection_id}-original.png", day / f"{inspection_id}-overlay.jpg")
        try:
            day.mkdir(parents=True, exist_ok=True)
            save_image(paths[0], image)
            save_image(paths[1], overlay)
            return str(paths[0]), str(paths[1])
        except (OSError, ImageError) as exc:
            m.IMAGE_ERRORS.inc()
            log.error("could not keep images of %s: %s", inspection_id, exc)
            for p in paths:
                with contextlib.suppress(OSError):
                    p.unlink(missing_ok=True)
            return None, None

    def _kept(self) -> list[Kept[Path]]:
        kept = []
        for p in self.root.rglob("*"):
            with contextlib.suppress(OSError):  # removed meanwhile
                if p.is_file():
                    st = p.stat()
                    kept.append(Kept(p, st.st_mtime, st.st_size))
        return kept

    def sweep(self, every_s: float = 60.0) -> int:
        """Delete what the retention rule says, at most every ``every_s``; the number of files removed."""
        if time.monotonic() - self.last_sweep < every_s or not self.root.is_dir():
            return 0
        self.last_sweep = time.monotonic()
        doomed, _left = expired(self._kept(), time.time(), self.max_age_s, self.max_bytes)
        removed = 0
        for kept, _reason in doomed:
            with contextlib.suppress(OSError):
                kept.key.unlink()
                removed += 1
        return removed
