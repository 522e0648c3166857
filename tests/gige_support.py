"""Aravis' simulated GigE Vision camera (arv-fake-gv-camera-0.8) on loopback, for the GigE tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

FAKE = "arv-fake-gv-camera-0.8"
CAMERA_ID = "Aravis-Fake-GV01"


def aravis_missing() -> str | None:
    if shutil.which(FAKE) is None:
        return f"{FAKE} is not installed (Debian package aravis-tools)"
    try:
        import gi

        gi.require_version("Aravis", "0.8")
        from gi.repository import Aravis  # noqa: F401
    except (ImportError, ValueError) as exc:
        return f"Aravis is not importable (gir1.2-aravis-0.8 and PyGObject, the gige extra): {exc}"
    return None


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the GigE tests: {reason}")
    pytest.skip(reason)


class FakeCamera:
    """Aravis' simulated GigE Vision camera, answering on 127.0.0.1 (GVCP port 3956)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([FAKE, "-i", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # it binds its sockets at start; the source then retries discovery on its own
        if self.proc.poll() is not None:
            raise RuntimeError(f"{FAKE} exited at start (is port 3956 taken?)")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def fake_camera():
    reason = aravis_missing()
    if reason:
        skip_or_fail(reason)
    cam = FakeCamera()
    cam.start()
    yield cam
    cam.kill()
