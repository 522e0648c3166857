"""Machine-readable progress for `inspection train --progress-json`: every progress bar of training writes
JSON lines to stderr instead of drawing itself, one object per update (at most every half second, and when a
stage ends): ``{"progress": {"stage": "features", "done": 3, "total": 5, "fraction": 0.6}}``. A caller such
as the results service's training worker reads them to show the stage and how far it got."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

from tqdm import tqdm


def progress_line(stage: str, done: float, total: float | None) -> str:
    fraction = min(1.0, done / total) if total else 0.0
    return json.dumps({"progress": {"stage": stage, "done": done, "total": total, "fraction": round(fraction, 4)}})


class JsonLinesProgress(tqdm):
    """A tqdm that writes :func:`progress_line` JSON lines to stderr in place of its bar (tqdm's own writes,
    such as the carriage return that clears a bar, go nowhere)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("mininterval", 0.5)
        kwargs["file"] = io.StringIO()
        super().__init__(*args, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        sys.stderr.write(progress_line(str(self.desc), self.n, self.total) + "\n")
        sys.stderr.flush()
        return True
