"""The runtime as a user installs it: a wheel in a fresh virtual environment, without torch.

Builds the wheel, installs it into a new venv (runtime dependencies only), and from a folder outside the
source tree runs `inspection train`, `inspect` and `eval`; the shipped models must be found inside the
installed package, and `import torch` must fail there. Takes about a minute (pip's cache helps).
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(args, cwd, **kw):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=900, **kw)


@pytest.mark.slow
def test_wheel_in_fresh_venv_has_no_torch_and_works(tmp_path, samples):
    wheels = tmp_path / "wheels"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(REPO)], REPO)
    assert built.returncode == 0, built.stderr
    wheel = next(wheels.glob("*.whl"))

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    cli = env_dir / "bin" / "inspection"
    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    installed = _run([str(py), "-m", "pip", "install", "--quiet", str(wheel)], tmp_path, env=clean_env)
    assert installed.returncode == 0, installed.stderr

    work = tmp_path / "work"
    work.mkdir()
    where = _run([str(py), "-c", "import inspection.model.shipped as s; print(s.models_dir())"], work, env=clean_env)
    assert where.returncode == 0, where.stderr
    assert "site-packages" in where.stdout and "shipped_models" in where.stdout

    torch = _run([str(py), "-c", "import torch"], work, env=clean_env)
    assert torch.returncode != 0 and "No module named 'torch'" in torch.stderr

    data = samples / "knurled_plate"
    steps = [
        [str(cli), "train", "--good", str(data / "train" / "good"), "--out", "m.onnx", "--bank-size", "256",
         "--quiet"],
        [str(cli), "inspect", str(data / "test" / "crack"), "--model", "m.onnx", "--out", "results"],
        [str(cli), "eval", "--model", "m.onnx", "--data", str(data), "--out", "eval", "--quiet"],
        [str(cli), "inspect", str(data / "test" / "good" / "000.png"), "--out", "demo"],  # shipped demo model
    ]
    for step in steps:
        res = _run(step, work, env=clean_env)
        assert res.returncode == 0, f"{step[1]} failed:\n{res.stdout}\n{res.stderr}"
    assert len(list((work / "results").glob("*.json"))) == 4
    assert (work / "eval" / "eval.json").is_file()
