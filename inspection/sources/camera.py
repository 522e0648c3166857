"""OpenCV sources: a camera by device index (USB/V4L2), an RTSP/HTTP stream URL, or a video file."""

from __future__ import annotations

from pathlib import Path

import cv2

from inspection.sources.frame import Frame, FrameIds, SourceError, SourceFinished, now


class OpenCVSource:
    """A camera by device index, an RTSP/HTTP stream URL, or a video file (``loop`` to repeat)."""

    def __init__(self, target: int | str, live: bool = True, loop: bool = False, timeout_ms: int = 5000):
        self.target, self.live, self.loop, self.timeout_ms = target, live, loop, timeout_ms
        self.name = f"camera {target}" if isinstance(target, int) else str(target)
        self.cap: cv2.VideoCapture | None = None
        self.ids = FrameIds()

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
        return Frame(fid, now(), f"{self.name}#{fid}", image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None

    def finished(self, frame: Frame, ok: bool) -> None:
        pass
