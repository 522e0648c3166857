"""The frame source a station's config names (``[source]``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from inspection.sources.camera import OpenCVSource
from inspection.sources.files import FolderSource, WatchFolderSource
from inspection.sources.frame import FrameSource
from inspection.sources.simulated import SimulatedLine

if TYPE_CHECKING:
    from inspection.line.config import SourceSection

T = TypeVar("T")


def _required(value: T | None, key: str) -> T:
    if value is None:  # the config's validator already refuses this; a clear error if built by hand
        raise ValueError(f"source.{key} is required for this source kind")
    return value


def make_source(s: SourceSection) -> FrameSource:
    if s.kind == "simulated":
        return SimulatedLine(s.part_type, s.rate, s.defect_rate, s.seed, software_trigger=s.trigger == "software",
                             exposure_us=s.exposure_us)
    if s.kind == "camera":
        return OpenCVSource(_required(s.device, "device"), live=True)
    if s.kind == "stream":
        return OpenCVSource(_required(s.url, "url"), live=True)
    if s.kind == "video":
        return OpenCVSource(str(_required(s.path, "path")), live=False, loop=s.loop)
    if s.kind == "folder":
        return FolderSource(_required(s.path, "path"))
    if s.kind == "gige":
        from inspection.sources.gige import GigECamera  # needs Aravis (PyGObject) only when used

        return GigECamera(_required(s.camera_id, "camera_id"), s.exposure_us, s.gain_db, s.trigger)
    return WatchFolderSource(_required(s.path, "path"))
