"""Bad image files give an ImageError that names the file and the problem."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from inspection.errors import ImageError
from inspection.imaging import as_rgb8, load_image


def _write(path, arr, ext=".png"):
    ok, buf = cv2.imencode(ext, arr)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def test_reads_rgb_in_rgb_order(tmp_path):
    bgr = np.zeros((40, 50, 3), np.uint8)
    bgr[..., 2] = 200  # red in OpenCV's BGR order
    img = load_image(_write(tmp_path / "red.png", bgr))
    assert img.shape == (40, 50, 3)
    assert img[0, 0].tolist() == [200, 0, 0]


@pytest.mark.parametrize(("name", "make", "message"), [
    ("empty.png", lambda p: p.write_bytes(b""), "empty"),
    ("text.png", lambda p: p.write_text("hello, not an image"), "not a readable image"),
    ("gray.png", lambda p: _write(p, np.zeros((64, 64), np.uint8)), "grayscale"),
    ("deep.png", lambda p: _write(p, np.zeros((64, 64, 3), np.uint16)), "16-bit"),
    ("alpha.png", lambda p: _write(p, np.zeros((64, 64, 4), np.uint8)), "4-channel"),
    ("tiny.png", lambda p: _write(p, np.zeros((8, 8, 3), np.uint8)), "at least 32x32"),
])
def test_bad_images_are_named(tmp_path, name, make, message):
    path = tmp_path / name
    make(path)
    with pytest.raises(ImageError) as err:
        load_image(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_truncated_jpeg_and_png(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    for ext in (".jpg", ".png"):
        full = _write(tmp_path / f"full{ext}", img, ext)
        cut = tmp_path / f"cut{ext}"
        cut.write_bytes(full.read_bytes()[: len(full.read_bytes()) // 2])
        with pytest.raises(ImageError, match=r"cut\.(jpg|png): (truncated|not a readable)"):
            load_image(cut)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)


def test_arrays_are_checked_too():
    with pytest.raises(ImageError, match="frame: grayscale"):
        as_rgb8(np.zeros((64, 64), np.uint8), "frame")
    with pytest.raises(ImageError, match="frame: 32-bit"):
        as_rgb8(np.zeros((64, 64, 3), np.float32), "frame")
