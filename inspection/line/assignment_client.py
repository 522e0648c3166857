"""Talking to the results service about the station's assignment, and the local model cache.

``GET /api/v1/stations/{path}/assignment`` says which model (name, version, SHA-256, download URL), which
threshold (null: the model's own) and which shadow model the station should run. Model files are downloaded
with the station's ``[service]`` token (in the Authorization header only: never in a URL or a log line) into
``cache_dir`` as a temp file, hashed while they arrive, and only renamed to ``<sha256>.onnx`` when the
SHA-256 is the assignment's; anything else is refused and deleted. The station's last applied assignment is
kept in ``cache_dir/assignment-<site__area__line__cell__station>.json`` (stations on one box may share the
cache) so that a restart while the service is down runs what was assigned.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urljoin, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from inspection.errors import InspectionError

SHA256 = r"^[0-9a-f]{64}$"


class AssignmentError(InspectionError):
    """The assignment could not be read or applied; the message says what (the running model stays)."""


class AssignedModel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=128)
    version: str = Field(min_length=1, max_length=64)
    sha256: str = Field(pattern=SHA256)
    size_bytes: int | None = Field(default=None, ge=0)
    download_url: str | None = None

    def label(self) -> str:
        return f"{self.name} {self.version}"


class Assignment(BaseModel):
    """What the station should run, as the service answers (unknown fields ignored: newer services)."""

    model_config = ConfigDict(extra="ignore")

    station: str | None = None
    model_version: str | None = None
    threshold: Annotated[float, Strict()] | None = None  # checked finite and positive when applied
    updated_by: str | None = None
    updated_at: datetime | None = None
    model: AssignedModel | None = None
    shadow: AssignedModel | None = None

    def wanted(self) -> tuple:
        """What decides the judges (who changed it and when do not)."""
        return (self.model.sha256 if self.model else None, self.model_version if not self.model else None,
                self.threshold, self.shadow.sha256 if self.shadow else None)


class AssignmentClient:
    """The station's view of the service: its assignment and model files, with the edge token."""

    def __init__(self, base_url: str, token: str | None, station_path: str, cache_dir: Path,
                 timeout_s: float = 30.0, max_bytes: int = 512 * 1024 * 1024):
        self.base_url = base_url.rstrip("/") + "/"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(timeout=timeout_s, headers=headers, follow_redirects=False)
        self.cache_dir, self.max_bytes, self.station_path = Path(cache_dir), max_bytes, station_path
        self.path = f"api/v1/stations/{quote(station_path, safe='/')}/assignment"
        # one file per station: stations on one box may share the cache (models are keyed by SHA-256)
        self.applied_file = self.cache_dir / f"assignment-{station_path.replace('/', '__')}.json"

    def close(self) -> None:
        self.http.close()

    def fetch(self) -> Assignment:
        url = urljoin(self.base_url, self.path)
        try:
            res = self.http.get(url)
        except httpx.HTTPError as exc:
            raise AssignmentError(f"GET {url}: {type(exc).__name__}: {exc}") from None
        if res.status_code != 200:
            raise AssignmentError(f"GET {url}: {res.status_code} {_message(res)}")
        try:
            return Assignment.model_validate_json(res.content)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise AssignmentError(f"GET {url}: not an assignment ({problems})") from None

    # -------------------------------------------------------------------------------------- model files

    def cached(self, model: AssignedModel) -> Path:
        return self.cache_dir / f"{model.sha256}.onnx"

    def model_file(self, model: AssignedModel) -> Path:
        """The model's file in the cache, downloaded first when it is not there (SHA-256 checked)."""
        path = self.cached(model)
        if path.is_file():
            if _sha256(path) == model.sha256:
                return path
            path.unlink()  # damaged on disk: fetch it again
        self.download(model, path)
        return path

    def _file_url(self, model: AssignedModel) -> str:
        default = f"api/v1/models/{quote(model.name, safe='')}/{quote(model.version, safe='')}/file"
        url = urljoin(self.base_url, model.download_url or default)
        ours, theirs = urlsplit(self.base_url), urlsplit(url)
        if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):  # the token goes to the service only
            raise AssignmentError(f"model {model.label()}: download_url {url!r} is not on the results service "
                                  f"({ours.scheme}://{ours.netloc}); refused, the token is not sent elsewhere")
        return url

    def download(self, model: AssignedModel, dest: Path) -> None:
        url = self._file_url(model)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".download-", suffix=".onnx")
        try:
            digest, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out, self.http.stream("GET", url) as res:
                if res.status_code != 200:
                    res.read()
                    raise AssignmentError(f"model {model.label()}: GET {url}: {res.status_code} {_message(res)}")
                for chunk in res.iter_bytes(1 << 20):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise AssignmentError(f"model {model.label()}: more than {self.max_bytes} bytes "
                                              "(assignment.max_model_mb); refused")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != model.sha256:
                raise AssignmentError(f"model {model.label()}: the downloaded file's SHA-256 {digest.hexdigest()} "
                                      f"is not the assignment's {model.sha256} ({size} bytes); refused")
            os.replace(tmp, dest)
        except httpx.HTTPError as exc:
            raise AssignmentError(f"model {model.label()}: GET {url}: {type(exc).__name__}: {exc}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    # ------------------------------------------------------------------------------ the last assignment

    def save_applied(self, assignment: Assignment) -> None:
        """Remember the applied assignment (temp file, fsync, rename) for a restart while the service is down."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".assignment-", suffix=".json")
        with os.fdopen(fd, "w") as out:
            out.write(assignment.model_dump_json())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.applied_file)

    def load_applied(self) -> Assignment | None:
        path = self.applied_file
        try:
            last = Assignment.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValidationError) as exc:
            raise AssignmentError(f"{path}: cannot read the last assignment ({type(exc).__name__})") from None
        if last.station not in (None, self.station_path):
            raise AssignmentError(f"{path}: the assignment of station {last.station}, not {self.station_path}")
        return last


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _message(res: httpx.Response) -> str:
    """The service's error message (its JSON ``message``), or the start of the body; one line."""
    try:
        body = json.loads(res.content)
        text = body.get("message") or body.get("detail") or res.text
    except (ValueError, AttributeError):
        text = res.text
    return re.sub(r"\s+", " ", str(text))[:300]
