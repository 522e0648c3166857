"""Images on the local filesystem under names the service derives itself (never a client-supplied path),
and retention by age and total bytes, oldest first.

An upload is checked from its header first (Pillow's lazy open reads size and mode without decoding): more
pixels than the limit (default 40 MP) is a 413 before any decoding; only then is it decoded in full, in the
calling thread (the routes call :meth:`ImageStore.save` off the event loop).

Retention never deletes an image of a FAIL result that is still unreviewed, unless the byte limit cannot be
met otherwise; such forced deletions are counted (metric ``inspection_images_forced_deletions_total``).
"""

from __future__ import annotations

import io
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from PIL import Image, ImageFile, JpegImagePlugin, PngImagePlugin
from sqlalchemy import Engine, and_, delete, select

from edge_service.database import images, results, utcnow
from edge_service.observability import IMAGE_BYTES, IMAGES_DELETED
from inspection.retention import Kept, Reason, expired

IMAGE_KINDS = ("original", "overlay", "heatmap")
CONTENT_TYPES = {"image/png": ".png", "image/jpeg": ".jpg"}
MAX_IMAGE_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG"}
# The format's own reader (not Image.open, whose bomb check would answer first, in its words and limit).
_READERS: dict[str, type[ImageFile.ImageFile]] = {"image/png": PngImagePlugin.PngImageFile,
                                                  "image/jpeg": JpegImagePlugin.JpegImageFile}


class ImageRejected(ValueError):
    """An upload that is not stored; each kind carries the HTTP status it is answered with."""

    status: ClassVar[int] = 422


class ImageTooLarge(ImageRejected):
    status = 413


class UnsupportedImageType(ImageRejected):
    status = 415


class UndecodableImage(ImageRejected):
    status = 422


def decode_fully(image: Image.Image) -> None:
    """Decode every pixel (so a truncated or corrupt body is found); the pixels are then dropped."""
    image.load()


def check_image(data: bytes, content_type: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> str:
    """Validate an upload; returns the file suffix. The header is checked (type, pixel count) before the image
    is decoded, so a renamed non-image or a decompression bomb is refused without decoding it."""
    if content_type not in CONTENT_TYPES:
        raise UnsupportedImageType(f"content type {content_type!r} not accepted; send image/png or image/jpeg")
    if not data:
        raise UndecodableImage("image body is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageTooLarge(f"image is {len(data)} bytes; the limit is {MAX_IMAGE_BYTES}")
    expected = _FORMATS[content_type]
    try:
        image = _READERS[content_type](io.BytesIO(data))
    except (OSError, SyntaxError, ValueError):
        raise UndecodableImage(f"body is not a decodable {expected} image") from None
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise ImageTooLarge(f"image declares {width}x{height} = {width * height} pixels; the limit is "
                                f"{max_pixels} pixels")
        try:
            decode_fully(image)
        except (OSError, SyntaxError, ValueError, zlib.error, Image.DecompressionBombError):
            raise UndecodableImage(f"body is not a decodable {expected} image ({width}x{height} declared, "
                                   "pixel data broken)") from None
    return CONTENT_TYPES[content_type]


@dataclass(frozen=True)
class _StoredImage:
    inspection_id: str
    kind: str
    file_name: str


def _epoch(naive_utc: datetime) -> float:
    return naive_utc.replace(tzinfo=UTC).timestamp()


@dataclass
class ImageStore:
    root: Path
    max_age_days: float | None = None
    max_total_bytes: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, file_name: str) -> Path:
        return self.root / file_name[:2] / file_name

    def check(self, data: bytes, content_type: str) -> str:
        """:func:`check_image` with this store's pixel limit; returns the file suffix."""
        return check_image(data, content_type, self.max_pixels)

    def save(self, engine: Engine, inspection_id: uuid.UUID, kind: str, data: bytes, content_type: str) -> None:
        suffix = self.check(data, content_type)
        file_name = f"{inspection_id.hex}-{kind}{suffix}"
        path = self.path_for(file_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
        row = {"inspection_id": str(inspection_id), "kind": kind, "file_name": file_name,
               "content_type": content_type, "size_bytes": len(data), "created_at": utcnow()}
        with engine.begin() as conn:
            conn.execute(delete(images).where(images.c.inspection_id == row["inspection_id"],
                                              images.c.kind == kind))
            conn.execute(images.insert().values(**row))

    def find(self, engine: Engine, inspection_id: str, kind: str) -> tuple[Path, str] | None:
        with engine.connect() as conn:
            row = conn.execute(select(images.c.file_name, images.c.content_type).where(
                images.c.inspection_id == inspection_id, images.c.kind == kind)).first()
        if row is None or not self.path_for(row.file_name).is_file():
            return None
        return self.path_for(row.file_name), row.content_type

    def _kept(self, engine: Engine) -> list[Kept[_StoredImage]]:
        """Every stored image; an unreviewed FAIL's images are protected."""
        protected = and_(results.c.verdict == "FAIL", results.c.review_state == "unreviewed")
        stmt = select(images.c.inspection_id, images.c.kind, images.c.file_name, images.c.size_bytes,
                      images.c.created_at, protected.label("protected")).select_from(
            images.outerjoin(results, results.c.inspection_id == images.c.inspection_id))
        with engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [Kept(_StoredImage(r.inspection_id, r.kind, r.file_name), _epoch(r.created_at), int(r.size_bytes),
                     bool(r.protected)) for r in rows]

    def enforce_retention(self, engine: Engine) -> dict[Reason, int]:
        """Delete images past the age limit, then oldest first until under the byte limit (the rule of
        :func:`inspection.retention.expired`); returns how many went for each reason."""
        max_age_s = self.max_age_days * 86400 if self.max_age_days is not None else None
        doomed, left = expired(self._kept(engine), _epoch(utcnow()), max_age_s, self.max_total_bytes)
        deleted: dict[Reason, int] = {"age": 0, "bytes": 0, "forced": 0}
        for item, reason in doomed:
            image = item.key
            self.path_for(image.file_name).unlink(missing_ok=True)
            with engine.begin() as conn:
                conn.execute(delete(images).where(images.c.inspection_id == image.inspection_id,
                                                  images.c.kind == image.kind))
            deleted[reason] += 1
            IMAGES_DELETED.labels(reason=reason).inc()
        IMAGE_BYTES.set(left)
        return deleted
