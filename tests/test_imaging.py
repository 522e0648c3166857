"""Bad image files give an ImageError that names the file and the problem."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from inspection.errors import ImageError
from inspection.imaging import as_rgb8, load_image, load_image_converted, to_rgb8


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
    ("tiny.png", lambda p: _write(p, np.zeros((8, 8, 3), np.uint8)), "at least 32x32"),
    ("tiny_grey.png", lambda p: _write(p, np.zeros((20, 64), np.uint8)), "at least 32x32"),
    ("float.tiff", lambda p: _write(p, np.zeros((64, 64), np.float32), ".tiff"), "no known scale"),
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
    with pytest.raises(ImageError, match="frame: image is 64x8 pixels"):
        as_rgb8(np.zeros((8, 64), np.uint8), "frame")
    with pytest.raises(ImageError, match="frame: 32-bit"):
        as_rgb8(np.zeros((64, 64, 3), np.float32), "frame")


def test_mono_8bit_is_replicated_and_said(tmp_path):
    grey = np.arange(64 * 48, dtype=np.uint32).reshape(48, 64).astype(np.uint8)
    converted = load_image_converted(_write(tmp_path / "mono.png", grey))
    assert converted.image.shape == (48, 64, 3) and converted.image.dtype == np.uint8
    for c in range(3):
        assert np.array_equal(converted.image[..., c], grey)
    assert converted.conversion == "grayscale replicated to RGB"
    assert np.array_equal(to_rgb8(grey[..., None], "hxwx1").image[..., 1], grey)


def test_16bit_is_scaled_by_257(tmp_path):
    deep = np.zeros((40, 40), np.uint16)
    deep[0, :4] = [0, 257, 32896, 65535]
    converted = load_image_converted(_write(tmp_path / "deep.png", deep))
    assert converted.image[0, :4, 0].tolist() == [0, 1, 128, 255]
    assert converted.conversion == "16-bit scaled to 8-bit (v / 257); grayscale replicated to RGB"
    colour = np.zeros((40, 40, 3), np.uint16)
    colour[..., 2] = 65535  # red in BGR order
    img = load_image_converted(_write(tmp_path / "deep_rgb.png", colour))
    assert img.image[0, 0].tolist() == [255, 0, 0] and img.conversion == "16-bit scaled to 8-bit (v / 257)"


def test_alpha_is_dropped_and_colour_needs_no_conversion(tmp_path):
    bgra = np.zeros((40, 40, 4), np.uint8)
    bgra[..., 0], bgra[..., 3] = 90, 10  # blue, nearly transparent
    img = load_image_converted(_write(tmp_path / "alpha.png", bgra))
    assert img.image[0, 0].tolist() == [0, 0, 90] and img.conversion == "alpha channel dropped"
    rgb = np.zeros((40, 40, 3), np.uint8)
    assert to_rgb8(rgb, "plain").conversion is None


def test_inspection_result_names_the_conversion():
    from inspection.model.runtime import InspectionModel
    from inspection.model.shipped import default_model_path

    model = InspectionModel.load(default_model_path())
    grey = np.full((256, 256), 128, np.uint8)
    mono = model.inspect(grey, name="mono")
    colour = model.inspect(np.repeat(grey[..., None], 3, axis=2), name="colour")
    assert mono.input_conversion == "grayscale replicated to RGB" and colour.input_conversion is None
    assert mono.score == colour.score
    assert mono.to_result().input_conversion == "grayscale replicated to RGB"


@pytest.mark.parametrize(("arr", "message"), [
    (np.zeros((64, 64), np.float64), "no known scale"),
    (np.zeros((64, 64), np.int16), "no known scale"),
    (np.zeros((64, 64, 5), np.uint8), "unsupported image shape"),
    (np.zeros((64, 64, 3, 2), np.uint8), "unsupported image shape"),
])
def test_what_cannot_be_converted_is_refused(arr, message):
    with pytest.raises(ImageError, match=message):
        as_rgb8(arr, "frame")
