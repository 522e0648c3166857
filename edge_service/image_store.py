"""Images on the local filesystem under names the service derives itself (never a client-supplied path),
and retention by age and total bytes, oldest first.

Retention never deletes an image of a FAIL result that is still unreviewed, unless the byte limit cannot be
met otherwise; such forced deletions are counted (metric ``inspection_images_forced_deletions_total``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
from sqlalchemy import Engine, and_, delete, func, select

from edge_service.database import images, results, utcnow
from edge_service.observability import IMAGE_BYTES, IMAGES_DELETED

IMAGE_KINDS = ("original", "overlay")
CONTENT_TYPES = {"image/png": ".png", "image/jpeg": ".jpg"}
MAX_IMAGE_BYTES = 8 * 1024 * 1024


class ImageRejected(ValueError):
    pass


def check_image(data: bytes, content_type: str) -> str:
    """Validate an upload; returns the file suffix. Decodes it, so a renamed non-image is refused."""
    if content_type not in CONTENT_TYPES:
        raise ImageRejected(f"content type {content_type!r} not accepted; send image/png or image/jpeg")
    if not data:
        raise ImageRejected("image body is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageRejected(f"image is {len(data)} bytes; the limit is {MAX_IMAGE_BYTES}")
    magic_ok = data.startswith(b"\x89PNG\r\n\x1a\n") if content_type == "image/png" else data.startswith(b"\xff\xd8")
    if not magic_ok or cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) is None:
        raise ImageRejected(f"body is not a decodable {content_type.split('/')[1].upper()} image")
    return CONTENT_TYPES[content_type]


@dataclass
class ImageStore:
    root: Path
    max_age_days: float | None = None
    max_total_bytes: int | None = None

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, file_name: str) -> Path:
        return self.root / file_name[:2] / file_name

    def save(self, engine: Engine, inspection_id: uuid.UUID, kind: str, data: bytes, content_type: str) -> None:
        suffix = check_image(data, content_type)
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

    def enforce_retention(self, engine: Engine) -> dict:
        """Delete images past the age limit, then oldest first until under the byte limit."""
        deleted = {"age": 0, "bytes": 0, "forced": 0}
        protected = and_(results.c.verdict == "FAIL", results.c.review_state == "unreviewed")
        with engine.connect() as conn:
            base = select(images.c.inspection_id, images.c.kind, images.c.file_name, images.c.size_bytes,
                          protected.label("protected")).select_from(
                images.outerjoin(results, results.c.inspection_id == images.c.inspection_id)
            ).order_by(images.c.created_at)
            rows = conn.execute(base).all()
            total = int(conn.execute(select(func.coalesce(func.sum(images.c.size_bytes), 0))).scalar())
        doomed = []
        if self.max_age_days is not None:
            cutoff = utcnow() - timedelta(days=self.max_age_days)
            with engine.connect() as conn:
                old = {(r.inspection_id, r.kind) for r in conn.execute(
                    select(images.c.inspection_id, images.c.kind).where(images.c.created_at < cutoff))}
            for r in rows:
                if (r.inspection_id, r.kind) in old and not r.protected:
                    doomed.append((r, "age"))
                    total -= r.size_bytes
        if self.max_total_bytes is not None and total > self.max_total_bytes:
            chosen = {(r.inspection_id, r.kind) for r, _ in doomed}
            for only_unprotected in (True, False):  # protected images go only if nothing else is left
                for r in rows:
                    if total <= self.max_total_bytes:
                        break
                    if (r.inspection_id, r.kind) in chosen or (only_unprotected and r.protected):
                        continue
                    doomed.append((r, "bytes" if only_unprotected else "forced"))
                    chosen.add((r.inspection_id, r.kind))
                    total -= r.size_bytes
        for r, reason in doomed:
            self.path_for(r.file_name).unlink(missing_ok=True)
            with engine.begin() as conn:
                conn.execute(delete(images).where(images.c.inspection_id == r.inspection_id,
                                                  images.c.kind == r.kind))
            deleted[reason] += 1
            IMAGES_DELETED.labels(reason=reason).inc()
        IMAGE_BYTES.set(max(total, 0))
        return deleted
