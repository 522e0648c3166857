"""Finding the models that ship with the project, installed from a wheel or run from the source tree."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the inspection package

BACKBONE_FILE = "efficientnet_lite0_features.onnx"


def models_dir() -> Path:
    """The folder of shipped models: inside the package in a wheel, the repository's models/ otherwise."""
    for candidate in (_PACKAGE_DIR / "shipped_models", _PACKAGE_DIR.parent / "models"):
        if (candidate / BACKBONE_FILE).is_file():
            return candidate
    raise FileNotFoundError(
        f"shipped models not found (looked for {BACKBONE_FILE} in {_PACKAGE_DIR / 'shipped_models'} "
        f"and {_PACKAGE_DIR.parent / 'models'}); reinstall the package")


def backbone_path() -> Path:
    return models_dir() / BACKBONE_FILE


DEFAULT_PART = "flange"


def demo_model_path(part_type: str) -> Path:
    """The shipped demo model of a synthetic part type (``flange`` or ``knurled_plate``)."""
    return models_dir() / f"demo_{part_type}.onnx"


def default_model_path() -> Path:
    """The one default of every command that takes a model (inspect, eval, bench, run, demo): the shipped
    demo model of the synthetic flange."""
    return demo_model_path(DEFAULT_PART)
