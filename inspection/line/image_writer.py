"""Writing a triggered station's images after Result Ready: off the trigger's path, with the forwarder waiting.

A FAIL (and every result the retention rule keeps) has three images: the original, the overlay and the
heatmap; rendering and encoding them costs about 5 ms of CPU on a small box, which the PLC would otherwise
wait for. In trigger mode the publish stage commits the record first, naming the files it will write
(:meth:`LocalImages.paths`), lets the handshake announce Result Ready, and hands the pictures to the
:class:`ImageWriter`: its own thread, at a lower CPU priority (a higher nice value) than the inspection, so the
next trigger's model and the protocol servers are served first.

The images stay best effort, as before: a failed write is counted (``IMAGE_ERRORS``) and the result still
counts. :class:`PendingImages` is what keeps the store-and-forward order: an id is pending from just before its
record is committed until its files are written (or given up), and the HTTP forwarder waits for a pending id
before it uploads its images, so it never finds a file missing that is merely not written yet. After a crash
between the commit and the write, the record is delivered without its images (as after a full disk).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass

import numpy as np

from inspection.line.local_images import ImagePaths, LocalImages
from inspection.results.inspection import Inspection
from inspection.results.overlay import heat_colours, render_overlay

log = logging.getLogger("inspection.line.image_writer")
NICE_INCREMENT = 10  # how much lower the writer's CPU priority is than the thread that starts it


class PendingImages:
    """The ids whose records are committed and whose images are still being written; thread-safe."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._ids: set[str] = set()

    def add(self, inspection_id: str) -> None:
        with self._cond:
            self._ids.add(inspection_id)

    def done(self, inspection_id: str) -> None:
        with self._cond:
            self._ids.discard(inspection_id)
            self._cond.notify_all()

    def pending(self, inspection_id: str) -> bool:
        with self._cond:
            return inspection_id in self._ids

    def wait(self, inspection_id: str, timeout: float) -> bool:
        """Block until ``inspection_id``'s images are written or given up (True), or ``timeout`` s (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: inspection_id not in self._ids, timeout)


@dataclass
class ImageJob:
    """The pictures of one committed result, to be rendered and written to ``paths``."""

    inspection_id: str
    paths: ImagePaths
    image: np.ndarray
    result: Inspection
    overlay_reference: float  # the model's good-score median: the overlay's colour scale


class ImageWriter:
    """Renders and writes :class:`ImageJob` s in its own thread, in the order submitted. ``submit`` marks the
    id pending at once; ``close`` writes what is queued, then stops the thread."""

    def __init__(self, images: LocalImages, pending: PendingImages, nice_increment: int = NICE_INCREMENT):
        self.images, self.pending, self.nice_increment = images, pending, nice_increment
        self._jobs: queue.Queue[ImageJob | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.written = 0
        self.failed = 0

    def submit(self, job: ImageJob) -> None:
        self.pending.add(job.inspection_id)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="image-writer", daemon=True)
                self._thread.start()
        self._jobs.put(job)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything submitted, then end the thread (a writer never started has nothing to do)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        self._jobs.put(None)
        thread.join(timeout)
        if thread.is_alive():
            log.error("the image writer did not finish within %g s", timeout)

    def _lower_priority(self) -> None:
        """This thread only (Linux: a thread is a task with its own nice value); best effort elsewhere."""
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + self.nice_increment))
        except (AttributeError, OSError) as exc:
            log.debug("image writer keeps the normal priority: %s", exc)

    def _run(self) -> None:
        self._lower_priority()
        while (job := self._jobs.get()) is not None:
            try:
                self._write(job)
            except Exception:  # images are best effort: the result is committed and counts without them
                self.failed += 1
                log.exception("could not render the images of %s", job.inspection_id)
            finally:
                self.pending.done(job.inspection_id)

    def _write(self, job: ImageJob) -> None:
        if write_images(self.images, job):
            self.written += 1
        else:
            self.failed += 1


def write_images(images: LocalImages, job: ImageJob) -> bool:
    """Render a result's overlay and colour-mapped heatmap and write them with the original to the job's
    paths: all (True) or none (False, counted and logged by :meth:`LocalImages.write`)."""
    r = job.result
    heat, _alpha = heat_colours(r.anomaly_map, job.overlay_reference, r.threshold)
    overlay = render_overlay(job.image, r, job.overlay_reference)
    return images.write(job.inspection_id, job.paths, job.image, overlay, heat)
