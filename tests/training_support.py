"""Helpers for the training-job tests: a small generated line (20 good flange images at the default size,
two defects of each kind with masks), zips of it, good and hostile, and waiting for a job to end."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np

from inspection.evaluation.synthetic import DatasetSpec, write_dataset

GOOD_IMAGES = 20


def small_line(root: Path) -> Path:
    """<root>/flange: train/good (20), test/<kind> (2 each), ground_truth/<kind>/<name>_mask.png."""
    return write_dataset(root, "flange", DatasetSpec(GOOD_IMAGES, 2, 2, 256, 7))


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def good_members(line: Path, count: int = GOOD_IMAGES, folder: str = "good/") -> dict[str, bytes]:
    paths = sorted((line / "train" / "good").glob("*.png"))[:count]
    return {f"{folder}{p.name}": p.read_bytes() for p in paths}


def defect_members(line: Path) -> dict[str, bytes]:
    """defect/<kind>/<name>.png and ground_truth/<kind>/<name>_mask.png of every test defect."""
    out = {}
    for kind in sorted(d.name for d in (line / "test").iterdir() if d.is_dir() and d.name != "good"):
        for p in sorted((line / "test" / kind).glob("*.png")):
            out[f"defect/{kind}/{p.name}"] = p.read_bytes()
            mask = line / "ground_truth" / kind / f"{p.stem}_mask.png"
            if mask.is_file():
                out[f"ground_truth/{kind}/{mask.name}"] = mask.read_bytes()
    return out


def png(width: int = 256, height: int = 256, channels: int = 3, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels == 1 else (height, width, channels)
    return cv2.imencode(".png", rng.integers(0, 255, shape, dtype=np.uint8))[1].tobytes()


def with_symlink(members: dict[str, bytes], name: str, target: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
        info = zipfile.ZipInfo(name)
        info.external_attr = (0o120777 << 16)
        z.writestr(info, target)
    return buf.getvalue()


def form(name: str = "flange", preset: str = "fast", **fields) -> dict[str, str]:
    return {"name": name, "preset": preset, "target_frr": "0.05", **fields}


def wait_for(get, job_id: str, states=("succeeded", "failed", "cancelled"), timeout: float = 240) -> dict:
    """Poll GET /training/jobs/{id} until it is in one of ``states``; returns the job and every state seen."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        job = get(f"/api/v1/training/jobs/{job_id}").json()
        seen.append((job["state"], job["progress"], job["stage"]))
        if job["state"] in states:
            job["seen"] = seen
            return job
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} still {seen[-1]} after {timeout} s")
