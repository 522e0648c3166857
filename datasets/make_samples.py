"""Regenerate the committed sample datasets in datasets/samples/ (deterministic: same seed, same pixels).

The samples are the first images of the full generated line (`inspection dataset generate`, seed 7): the
tests use them as a small labelled set. (The shipped demo models are not trained on them: `make demo-models`
generates its own, larger line at build time; see models/demo_models.md.)

    python datasets/make_samples.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

from inspection.evaluation.synthetic import PART_TYPES, DatasetSpec, write_dataset

SAMPLES = Path(__file__).resolve().parent / "samples"
SPEC = DatasetSpec(train_good=80, test_good=12, test_per_defect=4, size=256, seed=7)


def main() -> None:
    for part in PART_TYPES:
        shutil.rmtree(SAMPLES / part, ignore_errors=True)
        print("wrote", write_dataset(SAMPLES, part, SPEC))


if __name__ == "__main__":
    main()
