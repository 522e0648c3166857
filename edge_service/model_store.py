"""Models on the service: upload (checked to be one of ours, stored once by SHA-256, idempotent), list, get,
and where a model's file lives (``<model dir>/<sha256>.onnx``, written to a temporary file, fsynced, renamed).

Used by the REST routes (routers/models.py) and by training, which publishes through :func:`add_model`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import IntegrityError

from edge_service.database import as_utc, models, utcnow
from edge_service.model_check import ModelRejected, check_model
from edge_service.qa_audit import record
from edge_service.qa_models import ModelVersion
from edge_service.settings import ServiceSettings

__all__ = ["ModelConflict", "ModelRejected", "add_model", "get_model", "list_models", "model_file"]


class ModelConflict(Exception):
    """Another file is already stored under this model name and version."""


def download_url(name: str, version: str) -> str:
    return f"/api/v1/models/{quote(name, safe='')}/{quote(version, safe='')}/file"


def model_file(settings: ServiceSettings, sha256: str) -> Path:
    return settings.models_path / f"{sha256}.onnx"


def _version_of(row) -> ModelVersion:
    return ModelVersion(name=row.name, version=row.version, sha256=row.sha256, size_bytes=row.size_bytes,
                        preset=row.preset, uploaded_by=row.uploaded_by, uploaded_at=as_utc(row.uploaded_at),
                        note=row.note, card=json.loads(row.card), download_url=download_url(row.name, row.version))


def _find(conn: Connection, name: str, version: str):
    return conn.execute(select(models).where(models.c.name == name, models.c.version == version)).first()


def _write_file(path: Path, data: bytes) -> None:
    """Temporary file, fsync, rename, fsync the folder: the file is whole or absent after a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.stat().st_size == len(data):
        return  # the same digest is the same bytes
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(data)}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _existing(row, sha256: str) -> ModelVersion:
    if row.sha256 != sha256:
        raise ModelConflict(f"model {row.name} version {row.version} is already stored with other bytes "
                            f"(SHA-256 {row.sha256[:12]}..., this file {sha256[:12]}...); give the new model "
                            "another version")
    return _version_of(row)


def _forget_file(engine: Engine, settings: ServiceSettings, sha256: str) -> None:
    with engine.connect() as conn:
        used = conn.execute(select(models.c.id).where(models.c.sha256 == sha256)).first()
    if used is None:
        with contextlib.suppress(FileNotFoundError):
            model_file(settings, sha256).unlink()


def add_model(engine: Engine, settings: ServiceSettings, data: bytes, actor: str,
              note: str | None = None) -> ModelVersion:
    """Check and store an uploaded model (audited as ``model_upload``). ModelRejected: not ONNX, corrupt, or
    not one of ours; ModelConflict: this name and version hold other bytes. The same bytes again return the
    stored version."""
    checked = check_model(data)
    sha256 = hashlib.sha256(data).hexdigest()
    with engine.connect() as conn:
        row = _find(conn, checked.name, checked.version)
    if row is not None:
        return _existing(row, sha256)
    _write_file(model_file(settings, sha256), data)
    values = {"name": checked.name, "version": checked.version, "sha256": sha256, "size_bytes": len(data),
              "preset": checked.preset, "card": json.dumps(checked.card), "uploaded_by": actor,
              "uploaded_at": utcnow(), "note": note}
    try:
        with engine.begin() as conn:
            conn.execute(insert(models).values(**values))
            record(conn, actor, "model_upload", f"{checked.name}/{checked.version}", None,
                   json.dumps({"sha256": sha256, "size_bytes": len(data)}), note)
    except IntegrityError:  # uploaded at the same moment by someone else
        with engine.connect() as conn:
            row = _find(conn, checked.name, checked.version)
        if row is None:
            raise
        if row.sha256 != sha256:
            _forget_file(engine, settings, sha256)
        return _existing(row, sha256)
    except Exception:
        with contextlib.suppress(Exception):  # the database may be down: an unreferenced file is harmless
            _forget_file(engine, settings, sha256)
        raise
    stored = get_model(engine, checked.name, checked.version)
    assert stored is not None  # just committed
    return stored


def sha256_known(engine: Engine, data: bytes) -> bool:
    """Whether these exact bytes are stored already."""
    digest = hashlib.sha256(data).hexdigest()
    with engine.connect() as conn:
        return conn.execute(select(models.c.id).where(models.c.sha256 == digest)).first() is not None


def get_model(engine: Engine, name: str, version: str) -> ModelVersion | None:
    with engine.connect() as conn:
        row = _find(conn, name, version)
    return _version_of(row) if row else None


def list_models(engine: Engine, name: str | None = None) -> list[ModelVersion]:
    """Newest upload first."""
    stmt = select(models).order_by(models.c.uploaded_at.desc(), models.c.id.desc())
    if name:
        stmt = stmt.where(models.c.name == name)
    with engine.connect() as conn:
        return [_version_of(r) for r in conn.execute(stmt).all()]
