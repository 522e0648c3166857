"""Reading the station's TOML file: the one place that turns a missing or broken file into a clear error and
lets dotted overrides (from flags and environment) win over what the file says."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from inspection.errors import InspectionError


def read_toml(path: Path, error: type[InspectionError]) -> dict[str, Any]:
    """The file's tables; ``error`` (naming the file) when it is missing or not TOML."""
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise error(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML ({exc})") from None


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Set each dotted key (``"source.rate"``) that is not None, creating tables on the way; returns ``data``."""
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return data
