from __future__ import annotations

from pathlib import Path

import pytest

from inspection.training import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "datasets" / "samples"


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def small_model(tmp_path_factory) -> Path:
    """A model trained on the flange sample with a small bank (quick, and still a real model)."""
    out = tmp_path_factory.mktemp("model") / "flange_small.onnx"
    train(SAMPLES / "flange" / "train" / "good", out,
          TrainConfig(name="flange_small", bank_size=256, holdout_fraction=0.25, progress=False),
          defects_dir=SAMPLES / "flange" / "test")
    return out
