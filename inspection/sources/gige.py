"""GigE Vision / GenICam cameras through Aravis (PyGObject), as a frame source.

Needs Debian's ``gir1.2-aravis-0.8`` and the optional extra ``gige`` (PyGObject). A camera is opened by its
Aravis device id (``Vendor-Model-Serial``, as ``arv-tool-0.8`` lists them) or its IP address. Exposure (µs)
and gain (dB) are set at open. With ``trigger = "software"`` each read fires a software trigger and waits for
that frame (one frame per trigger); otherwise the camera free-runs and the freshest buffer is taken. Mono8
frames are replicated to RGB, Bayer frames debayered; a lost camera raises SourceError so the watchdog
reopens it with backoff like any other source.
"""

from __future__ import annotations

import contextlib
from typing import Any

import cv2
import numpy as np

from inspection.sources.frame import Frame, FrameIds, SourceError, now

_BUFFERS = 4
# GenICam PFNC pixel formats (32-bit codes) this source converts to RGB.
_MONO8, _RGB8, _BAYER_RG8, _BAYER_GR8, _BAYER_BG8, _BAYER_GB8 = (
    0x01080001, 0x02180014, 0x01080009, 0x01080008, 0x0108000B, 0x0108000A)
_BAYER = {_BAYER_RG8: cv2.COLOR_BayerRG2RGB, _BAYER_GR8: cv2.COLOR_BayerGR2RGB,
          _BAYER_BG8: cv2.COLOR_BayerBG2RGB, _BAYER_GB8: cv2.COLOR_BayerGB2RGB}


def _aravis() -> Any:
    try:
        import gi

        gi.require_version("Aravis", "0.8")
        from gi.repository import Aravis
    except (ImportError, ValueError) as exc:
        raise SourceError("GigE Vision needs Aravis: apt-get install gir1.2-aravis-0.8, and the gige extra "
                          f"(pip install 'edge-inspection[gige]'): {exc}") from None
    return Aravis


def to_rgb(data: bytes, width: int, height: int, pixel_format: int) -> np.ndarray:
    """A camera buffer as an RGB uint8 image (height x width x 3)."""
    if pixel_format == _RGB8:
        return np.frombuffer(data, np.uint8, width * height * 3).reshape(height, width, 3).copy()
    raw = np.frombuffer(data, np.uint8, width * height).reshape(height, width)
    if pixel_format == _MONO8:
        return np.repeat(raw[:, :, None], 3, axis=2)
    if pixel_format in _BAYER:
        return cv2.cvtColor(raw, _BAYER[pixel_format])
    raise SourceError(f"pixel format 0x{pixel_format:08x} is not supported (Mono8, RGB8, Bayer 8-bit)")


class GigECamera:
    """A GigE Vision camera by Aravis device id or address; live (the freshest frame wins)."""

    live = True

    def __init__(self, camera_id: str, exposure_us: float | None = None, gain_db: float | None = None,
                 trigger: str | None = None):
        self.camera_id, self.exposure_us, self.gain_db = camera_id, exposure_us, gain_db
        self.software_trigger = trigger == "software"
        self.name = f"gige {camera_id}"
        self.camera: Any = None
        self.stream: Any = None
        self.ids = FrameIds()

    def open(self) -> None:
        aravis = _aravis()
        try:
            aravis.update_device_list()
            self.camera = aravis.Camera.new(self.camera_id)
            if self.exposure_us is not None:
                self.camera.set_exposure_time(float(self.exposure_us))
            if self.gain_db is not None:
                self.camera.set_gain(float(self.gain_db))
            if self.software_trigger:
                self.camera.set_trigger("Software")
            else:
                self.camera.set_acquisition_mode(aravis.AcquisitionMode.CONTINUOUS)
            self.stream = self.camera.create_stream(None, None)
            payload = self.camera.get_payload()
            for _ in range(_BUFFERS):
                self.stream.push_buffer(aravis.Buffer.new_allocate(payload))
            self.camera.start_acquisition()
        except Exception as exc:  # GLib.GError: no such camera, busy, lost
            self.close()
            raise SourceError(f"{self.name}: cannot open ({exc})") from None

    def read(self, timeout: float) -> Frame | None:
        if self.camera is None:
            raise SourceError(f"{self.name}: not open")
        aravis = _aravis()
        try:
            if self.software_trigger:
                self.camera.software_trigger()
            buf = self.stream.timeout_pop_buffer(int(timeout * 1e6))
        except Exception as exc:
            raise SourceError(f"{self.name}: lost ({exc})") from None
        if buf is None:
            return None
        try:
            if buf.get_status() != aravis.BufferStatus.SUCCESS:
                raise SourceError(f"{self.name}: incomplete frame ({buf.get_status().value_nick})")
            image = to_rgb(buf.get_data(), buf.get_image_width(), buf.get_image_height(),
                           buf.get_image_pixel_format())
        finally:
            self.stream.push_buffer(buf)
        fid = self.ids.next()
        return Frame(fid, now(), f"{self.name}#{fid}", image=image)

    def close(self) -> None:
        if self.camera is not None:
            with contextlib.suppress(Exception):  # the camera is already gone
                self.camera.stop_acquisition()
        self.camera = self.stream = None

    def finished(self, frame: Frame, ok: bool) -> None:
        pass
