"""The results service as a server box installs it: the wheel without the inspection runtime.

The wheel goes into a fresh venv with ``--no-deps`` plus only the service's own dependencies (no onnxruntime,
no onnx); `inspection serve` must start there and answer /readyz. The slow test takes about a minute (pip's
cache and the local index help); the quick ones check the imports it relies on.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
import venv
from pathlib import Path
from typing import get_args

import httpx
import pytest
from service_support import free_port

REPO = Path(__file__).resolve().parents[1]
# What edge_service and `inspection serve` import, and nothing of the inspection runtime.
SERVICE_DEPENDENCIES = ["fastapi", "fastapi-offline", "python-multipart", "pillow", "uvicorn", "pydantic",
                        "sqlalchemy", "alembic", "prometheus-client", "typer", "numpy", "opencv-python-headless"]
RUNTIME = ("onnxruntime", "onnx")


def _run(args, cwd, **kw):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=900, **kw)


def test_importing_the_cli_loads_no_model_runtime():
    code = ("import sys, inspection.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('onnxruntime', 'onnx', 'numpy', 'cv2')"
            " or m.startswith('inspection.model')))")
    out = _run([sys.executable, "-c", code], REPO, check=True)
    assert ast.literal_eval(out.stdout.strip()) == []


def test_cli_policy_choices_match_the_calibration():
    from inspection.cli.model import Policy as CliPolicy
    from inspection.model.calibration import Policy

    assert get_args(CliPolicy) == get_args(Policy)


def _wait_ready(url: str, proc: subprocess.Popen, seconds: float = 60) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            return httpx.get(url, timeout=2)
        except httpx.HTTPError:
            time.sleep(0.2)
    out, err = proc.communicate(timeout=10) if proc.poll() is not None else ("", "")
    raise AssertionError(f"`inspection serve` did not answer at {url} (exit {proc.poll()}):\n{out}\n{err}")


@pytest.mark.slow
def test_results_service_starts_in_a_fresh_venv_without_onnxruntime(tmp_path):
    wheels = tmp_path / "wheels"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(REPO)], REPO)
    assert built.returncode == 0, built.stderr
    wheel = next(wheels.glob("*.whl"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    for args in (["--no-deps", str(wheel)], SERVICE_DEPENDENCIES):
        installed = _run([str(py), "-m", "pip", "install", "--quiet", *args], tmp_path, env=clean_env)
        assert installed.returncode == 0, installed.stderr
    for module in RUNTIME:
        absent = _run([str(py), "-c", f"import {module}"], tmp_path, env=clean_env)
        assert absent.returncode != 0 and f"No module named '{module}'" in absent.stderr

    work = tmp_path / "work"
    work.mkdir()
    port = free_port()
    proc = subprocess.Popen([str(env_dir / "bin" / "inspection"), "serve", "--port", str(port), "--database-url",
                             f"sqlite:///{work / 'r.db'}", "--image-dir", str(work / "img")], cwd=work, env=clean_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = _wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/results").status_code == 401  # the API, not a stub
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
