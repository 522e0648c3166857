"""Reading images from disk into the one format the models take: 8-bit RGB, HxWx3 uint8."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from inspection.errors import ImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MIN_SIDE = 32


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Decode encoded image bytes to RGB uint8; ``name`` is used in the error messages."""
    if not data:
        raise ImageError(f"{name}: file is empty (0 bytes)")
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-64:]:
        raise ImageError(f"{name}: truncated JPEG (no end-of-image marker)")
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageError(f"{name}: not a readable image (corrupt, truncated or unsupported format)")
    return as_rgb8(arr, name, bgr=True)


def as_rgb8(arr: np.ndarray, name: str, bgr: bool = False) -> np.ndarray:
    """Check that an array is an 8-bit 3-channel colour image and return it as RGB (a view where possible)."""
    if arr.dtype != np.uint8:
        bits = arr.dtype.itemsize * 8
        raise ImageError(f"{name}: {bits}-bit image ({arr.dtype}); the models take 8-bit RGB. "
                         "Convert it to 8 bits per channel first")
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 1):
        raise ImageError(f"{name}: grayscale image (1 channel); the models take 3-channel RGB")
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ImageError(f"{name}: unsupported image shape {arr.shape}; expected HxWx3 RGB")
    if arr.shape[2] == 4:
        raise ImageError(f"{name}: 4-channel image (with alpha); the models take 3-channel RGB. "
                         "Remove the alpha channel first")
    h, w = arr.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ImageError(f"{name}: image is {w}x{h} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed")
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB) if bgr else arr


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 HxWx3, or raise ImageError naming the file and the problem."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot be read ({exc.strerror})") from None
    return decode_image(data, str(path))


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
