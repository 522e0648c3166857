"""`inspection` with a fault injected into the model, for tests of the supervisor:

    INSPECTION_TEST_FAULT_FROM=N  python tests/faulty_cli.py run --config ...

Every call of InspectionModel.inspect from the N-th on raises RuntimeError (N counts from 1);
INSPECTION_TEST_FAULT_ONLY=1 makes only the N-th call raise. The time of the first fault (time.time()) is
written to the file INSPECTION_TEST_FAULT_MARK names. Everything else is the real command."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

from inspection.cli import app
from inspection.model.runtime import InspectionModel

FROM = int(os.environ["INSPECTION_TEST_FAULT_FROM"])
ONLY = os.environ.get("INSPECTION_TEST_FAULT_ONLY") == "1"
MARK = os.environ.get("INSPECTION_TEST_FAULT_MARK")
_calls = itertools.count(1)
_real_inspect = InspectionModel.inspect


def _faulty_inspect(self, *args, **kwargs):
    n = next(_calls)
    if n == FROM or (n > FROM and not ONLY):
        if n == FROM and MARK:
            Path(MARK).write_text(repr(time.time()))
        raise RuntimeError(f"injected fault in inspect call {n}")
    return _real_inspect(self, *args, **kwargs)


InspectionModel.inspect = _faulty_inspect  # type: ignore[method-assign]

if __name__ == "__main__":
    app(prog_name="inspection")
