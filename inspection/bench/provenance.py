"""Where a benchmark ran: every report carries this, so runs from different boxes can be compared."""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

import numpy as np
import onnxruntime as ort

ISA_FLAGS = {"avx2": "AVX2", "fma": "FMA", "avx512f": "AVX-512F", "avx512_vnni": "AVX-512 VNNI",
             "avx_vnni": "AVX-VNNI", "amx_int8": "AMX-INT8", "asimd": "NEON", "sve": "SVE"}


def cpu_info() -> dict:
    model = platform.processor() or "unknown"
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "Hardware", "cpu model") and model in ("unknown", "", platform.machine()):
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {"cpu_model": model, "logical_cores": os.cpu_count(), "machine": platform.machine(),
            "isa": {name: (flag in flags) for flag, name in ISA_FLAGS.items()}}


def provenance(model_path: str | Path, provider: str, threads: int, input_shape: list[int]) -> dict:
    data = Path(model_path).read_bytes()
    return {
        **cpu_info(),
        "os": platform.platform(), "python": platform.python_version(), "onnxruntime": ort.__version__,
        "numpy": np.__version__, "execution_provider": provider, "intra_op_threads": threads,
        "inter_op_threads": 1, "model_file": Path(model_path).name, "model_sha256": hashlib.sha256(data).hexdigest(),
        "input_shape": input_shape,
    }
