"""Helpers for the model-assignment tests: the real results service (its own process) with a qa token, model
versions written from the shipped model, upload / assign / rollback through the REST API."""

from __future__ import annotations

from pathlib import Path

import httpx
import onnx
from line_support import ServiceProcess
from service_support import STATION

from inspection.model.metadata import from_props, write_metadata


def model_version(src: Path, dest: Path, version: str, threshold: float | None = None) -> Path:
    """A new version of the model in ``src`` (same graph, other bytes): ``version`` and, if given, another
    threshold in its metadata, as a retrained model would have."""
    proto = onnx.load(str(src))
    meta = from_props({p.key: p.value for p in proto.metadata_props}, str(src))
    update: dict = {"model_version": version}
    if threshold is not None:
        update["threshold"] = threshold
    write_metadata(proto, meta.model_copy(update=update))
    onnx.save(proto, str(dest))
    return dest


class ModelService(ServiceProcess):
    """`inspection serve` with a qa token: models uploaded and assigned as QA does it."""

    def __init__(self, workdir: Path):
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir)
        self.qa = self._token("qa")

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.qa}"}, timeout=60)

    def upload(self, path: Path) -> dict:
        with self._client() as c:
            res = c.post("/api/v1/models", content=path.read_bytes(),
                         headers={"Content-Type": "application/octet-stream"})
        assert res.status_code in (200, 201), res.text
        return res.json()

    def assign(self, name: str, version: str, threshold: float | None = None,
               shadow: tuple[str, str] | None = None, station: str = STATION) -> dict:
        body = {"model_name": name, "model_version": version, "threshold": threshold, "reason": "test",
                "shadow": {"model_name": shadow[0], "model_version": shadow[1]} if shadow else None}
        with self._client() as c:
            res = c.put(f"/api/v1/stations/{station}/assignment", json=body)
        assert res.status_code == 200, res.text
        return res.json()

    def apply_threshold(self, threshold: float, station: str = STATION) -> dict:
        """As the thresholds page applies one (POST /api/v1/stations/{path}/threshold)."""
        with self._client() as c:
            res = c.post(f"/api/v1/stations/{station}/threshold", json={"threshold": threshold, "reason": "test"})
        assert res.status_code == 200, res.text
        return res.json()

    def rollback(self, station: str = STATION) -> dict:
        with self._client() as c:
            res = c.post(f"/api/v1/stations/{station}/assignment/rollback", json={"reason": "test"})
        assert res.status_code == 200, res.text
        return res.json()

    def results(self) -> list[dict]:
        """Every stored result (all pages)."""
        out, cursor = [], None
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.reader}"}) as c:
            while True:
                body = c.get("/api/v1/results", params={"limit": 500} | ({"cursor": cursor} if cursor else {})).json()
                out += body["items"]
                cursor = body["next_cursor"]
                if not cursor:
                    return out


def assignment_config(tmp: Path, service_url: str, token: str, source: str, extra: str = "",
                      poll_interval_s: float = 0.2) -> Path:
    """A station TOML with [assignment] enabled, polling ``service_url`` with the edge ``token``."""
    from line_support import write_config

    path = write_config(tmp / "station.toml", source, service_url=service_url,
                        extra=f'token = "{token}"\n\n[assignment]\nenabled = true\n'
                              f'poll_interval_s = {poll_interval_s}\ncache_dir = "{tmp / "models"}"\n' + extra)
    return path
