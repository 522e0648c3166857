"""The GigE Vision source against Aravis' own simulated GigE camera (arv-fake-gv-camera-0.8) on loopback."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from gige_support import CAMERA_ID

from inspection.line.config import ConfigError, parse_config
from inspection.sources.factory import make_source
from inspection.sources.frame import SourceError
from inspection.sources.gige import GigECamera, to_rgb
from inspection.sources.watchdog import SourceWatchdog


def _open(camera: GigECamera, deadline_s: float = 10.0) -> None:
    end = time.monotonic() + deadline_s
    while True:
        try:
            camera.open()
            return
        except SourceError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def test_software_trigger_grabs_rgb_frames_with_exposure_and_gain(fake_camera):
    camera = GigECamera(CAMERA_ID, exposure_us=5000, gain_db=2.0, trigger="software")
    _open(camera)
    try:
        assert camera.camera.get_exposure_time() == pytest.approx(5000)
        assert camera.camera.get_gain() == pytest.approx(2.0)
        frames = [camera.read(timeout=2.0) for _ in range(4)]
    finally:
        camera.close()
    assert all(f is not None for f in frames)
    images = [f.image for f in frames if f is not None and f.image is not None]
    assert len(images) == 4
    assert all(im.shape == (512, 512, 3) and im.dtype == np.uint8 for im in images)
    assert all((im[..., 0] == im[..., 1]).all() for im in images)  # Mono8 replicated to RGB
    assert [f.frame_id for f in frames if f] == [1, 2, 3, 4]
    assert any(not np.array_equal(images[0], im) for im in images[1:])  # the fake camera's pattern moves


def test_station_config_builds_a_gige_source():
    station = {"site": "s", "area": "a", "line": "l", "cell": "c", "station": "st"}
    cfg = parse_config({"station": station, "model": {"path": "m.onnx"},
                        "source": {"kind": "gige", "camera_id": CAMERA_ID, "exposure_us": 800, "gain_db": 1,
                                   "trigger": "software"}}, "t")
    source = make_source(cfg.source)
    assert isinstance(source, GigECamera) and source.live and source.software_trigger
    assert (source.camera_id, source.exposure_us, source.gain_db) == (CAMERA_ID, 800, 1)
    with pytest.raises(ConfigError, match=r"source kind 'gige' needs source\.camera_id"):
        parse_config({"station": station, "model": {"path": "m.onnx"}, "source": {"kind": "gige"}}, "t")


def test_unknown_camera_is_a_source_error(fake_camera):
    with pytest.raises(SourceError, match="gige No-Such-Camera: cannot open"):
        GigECamera("No-Such-Camera").open()


def test_camera_that_vanishes_mid_grab_is_reopened_by_the_watchdog(fake_camera):
    camera = GigECamera(CAMERA_ID)  # free-running
    stop = threading.Event()
    dog = SourceWatchdog(camera, stall_timeout_s=1.0, stop=stop, poll_s=0.2)

    def frames_within(seconds: float) -> int:
        got, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            if dog.next_frame() is not None:
                got += 1
        return got

    try:
        assert frames_within(3.0) > 0 and dog.state == "running"
        fake_camera.kill()
        end = time.monotonic() + 10
        while dog.state == "running" and time.monotonic() < end:
            dog.next_frame()
        assert dog.state in ("stalled", "error", "connecting"), dog.state
        fake_camera.start()
        end = time.monotonic() + 30
        while dog.next_frame() is None and time.monotonic() < end:
            pass
        assert dog.state == "running" and dog.reopens >= 1
    finally:
        stop.set()
        dog.close()


def test_pixel_formats():
    mono = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rgb = to_rgb(mono.tobytes(), 4, 3, 0x01080001)
    assert rgb.shape == (3, 4, 3) and (rgb[..., 2] == mono).all()
    colour = np.arange(36, dtype=np.uint8).reshape(3, 4, 3)
    assert (to_rgb(colour.tobytes(), 4, 3, 0x02180014) == colour).all()
    assert to_rgb(np.zeros((4, 4), np.uint8).tobytes(), 4, 4, 0x01080009).shape == (4, 4, 3)  # BayerRG8
    with pytest.raises(SourceError, match="pixel format 0x01100003 is not supported"):
        to_rgb(b"\0" * 32, 4, 4, 0x01100003)  # Mono12
