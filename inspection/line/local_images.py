"""Originals, overlays and heatmaps kept on the edge box, with retention by age and total bytes, oldest first (the
rule shared with the results service: :func:`inspection.retention.expired`)."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from inspection.errors import ImageError
from inspection.imaging import save_image
from inspection.line import metrics as m
from inspection.retention import Kept, expired

log = logging.getLogger("inspection.line.images")


def heatmap_path(original: str | Path) -> Path:
    """Where the heatmap of the result whose original is at ``original`` is kept (``<id>-heatmap.png``)."""
    p = Path(original)
    return p.with_name(p.name.replace("-original.", "-heatmap.").rsplit(".", 1)[0] + ".png")


def keeps_images(verdict: str, score: float, threshold: float, near_threshold: float, pass_draw: float,
                 keep_pass_fraction: float) -> bool:
    """Whether a result keeps its images: every FAIL; every result within ``near_threshold`` (relative) of the
    threshold, because those are the ones QA must see; otherwise a PASS when ``pass_draw`` (uniform in [0, 1))
    falls under ``keep_pass_fraction``."""
    if verdict == "FAIL":
        return True
    if near_threshold > 0 and abs(score - threshold) <= near_threshold * abs(threshold):
        return True
    return keep_pass_fraction > 0 and pass_draw < keep_pass_fraction


@dataclass(frozen=True)
class ImagePaths:
    """Where one result's images are kept (the heatmap at :func:`heatmap_path` of the original)."""

    original: Path
    overlay: Path
    heatmap: Path


class LocalImages:
    def __init__(self, root: Path, max_age_days: float, max_bytes: int):
        self.root, self.max_age_s, self.max_bytes = Path(root), max_age_days * 86400, max_bytes
        self.last_sweep = 0.0

    def paths(self, inspection_id: str) -> ImagePaths:
        """Where the images of ``inspection_id`` go (today's folder), before they are written."""
        day = self.root / datetime.now(UTC).strftime("%Y%m%d")
        original = day / f"{inspection_id}-original.png"
        return ImagePaths(original, day / f"{inspection_id}-overlay.jpg", heatmap_path(original))

    def save(self, inspection_id: str, image: np.ndarray, overlay: np.ndarray,
             heatmap: np.ndarray | None = None) -> tuple[str | None, str | None]:
        """All images, or none: a failed write (disk full, read-only) is counted and inspection goes on. The
        heatmap (the colour-mapped anomaly map) lies beside the original, at :func:`heatmap_path` of it."""
        paths = self.paths(inspection_id)
        if self.write(inspection_id, paths, image, overlay, heatmap):
            return str(paths.original), str(paths.overlay)
        return None, None

    def write(self, inspection_id: str, paths: ImagePaths, image: np.ndarray, overlay: np.ndarray,
              heatmap: np.ndarray | None = None) -> bool:
        """Write the images to ``paths`` (from :meth:`paths`): all (True) or none (False, counted, logged)."""
        files = [(paths.original, image), (paths.overlay, overlay)]
        if heatmap is not None:
            files.append((paths.heatmap, heatmap))
        try:
            paths.original.parent.mkdir(parents=True, exist_ok=True)
            for path, picture in files:
                save_image(path, picture)
            return True
        except (OSError, ImageError) as exc:
            m.IMAGE_ERRORS.inc()
            log.error("could not keep images of %s: %s", inspection_id, exc)
            for path, _picture in files:
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)
            return False

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
