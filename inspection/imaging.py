"""Reading images from disk into the one format the models take: 8-bit RGB, HxWx3 uint8.

Mono and deep images are converted, and the conversion is reported (:class:`Converted`), never silent:
- 8-bit grayscale (HxW or HxWx1; most industrial cameras are mono): the channel replicated to R, G, B;
- 16-bit (grey or colour): scaled to 8 bits by ``round(v / 257)``, so 0 -> 0 and 65535 -> 255 (the full
  16-bit range; a camera delivering 12-bit values in the low bits of 16 should be set to shift them up,
  or its images will come out dark);
- 4 channels (with alpha): the alpha channel dropped; 2 channels (grey + alpha): the grey replicated.
Refused: other sample types (float, signed, 32-bit: their scale is unknown), other channel counts, images
smaller than 32x32.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from inspection.errors import ImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MIN_SIDE = 32


@dataclass(frozen=True)
class Converted:
    image: np.ndarray  # RGB uint8 HxWx3
    conversion: str | None  # what was done to make it so, or None when it already was


def decode_image_converted(data: bytes, name: str) -> Converted:
    """Decode encoded image bytes to RGB uint8 with the conversion made; ``name`` is used in errors."""
    if not data:
        raise ImageError(f"{name}: file is empty (0 bytes)")
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-64:]:
        raise ImageError(f"{name}: truncated JPEG (no end-of-image marker)")
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageError(f"{name}: not a readable image (corrupt, truncated or unsupported format)")
    return to_rgb8(arr, name, bgr=True)


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Decode encoded image bytes to RGB uint8 (mono and 16-bit converted); ``name`` is used in errors."""
    return decode_image_converted(data, name).image


def _to_8bit(arr: np.ndarray, name: str) -> tuple[np.ndarray, str | None]:
    if arr.dtype == np.uint8:
        return arr, None
    if arr.dtype == np.uint16:
        scaled = np.round(arr.astype(np.float32) / 257.0).astype(np.uint8)
        return scaled, "16-bit scaled to 8-bit (v / 257)"
    bits = arr.dtype.itemsize * 8
    raise ImageError(f"{name}: {bits}-bit {arr.dtype} image; the models take 8-bit (16-bit unsigned is "
                     "converted), other sample types have no known scale. Convert it to 8 bits per channel")


def _to_three_channels(arr: np.ndarray, name: str, bgr: bool) -> tuple[np.ndarray, str | None]:
    """(RGB image, conversion) from 1-4 channels of 8-bit data."""
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 2)):
        grey = arr if arr.ndim == 2 else arr[:, :, 0]
        alpha = " (alpha dropped)" if arr.ndim == 3 and arr.shape[2] == 2 else ""
        return np.repeat(grey[:, :, None], 3, axis=2), "grayscale replicated to RGB" + alpha
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ImageError(f"{name}: unsupported image shape {arr.shape}; expected HxW grey, HxWx3 RGB or "
                         "HxWx4 RGBA")
    note = None
    if arr.shape[2] == 4:
        arr, note = arr[:, :, :3], "alpha channel dropped"
    return (cv2.cvtColor(arr, cv2.COLOR_BGR2RGB) if bgr else arr), note


def to_rgb8(arr: np.ndarray, name: str, bgr: bool = False) -> Converted:
    """An image array as 8-bit RGB, converting mono, 16-bit and alpha images (see the module docstring)."""
    if arr.ndim not in (2, 3):
        raise ImageError(f"{name}: unsupported image shape {arr.shape}; expected HxW or HxWxC")
    h, w = arr.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ImageError(f"{name}: image is {w}x{h} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed")
    eight, depth_note = _to_8bit(arr, name)
    rgb, channel_note = _to_three_channels(eight, name, bgr)
    notes = [n for n in (depth_note, channel_note) if n]
    return Converted(np.ascontiguousarray(rgb), "; ".join(notes) if notes else None)


def as_rgb8(arr: np.ndarray, name: str, bgr: bool = False) -> np.ndarray:
    """An image array as 8-bit RGB (a view where no conversion is needed); see :func:`to_rgb8`."""
    return to_rgb8(arr, name, bgr).image


def load_image_converted(path: str | Path) -> Converted:
    """Read an image file as RGB uint8 HxWx3 with the conversion made, or raise ImageError."""
    return decode_image_converted(_read(path), str(path))


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 HxWx3, or raise ImageError naming the file and the problem."""
    return load_image_converted(path).image


def _read(path: str | Path) -> bytes:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot be read ({exc.strerror})") from None
    return data


def save_image(path: str | Path, rgb: np.ndarray) -> None:
    path = Path(path)
    ok, buf = cv2.imencode(path.suffix or ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ImageError(f"{path}: could not encode image")
    path.write_bytes(buf.tobytes())


def list_images(folder: str | Path) -> list[Path]:
    """The image files directly inside a folder, sorted by name."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
