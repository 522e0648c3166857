"""Dataset commands: generate the synthetic line."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from inspection.cli.common import fail

app = typer.Typer(help="Synthetic production-line datasets (MVTec AD layout).", no_args_is_help=True)


@app.command("generate")
def dataset_generate(
    out: Annotated[Path, typer.Option(help="Folder to write <part>/train, test, ground_truth into.")],
    part: Annotated[list[str] | None, typer.Option(help="Part type(s): knurled_plate, flange.")] = None,
    train_good: Annotated[int, typer.Option(help="Good training images per part.")] = 200,
    test_good: Annotated[int, typer.Option(help="Good test images per part.")] = 40,
    test_per_defect: Annotated[int, typer.Option(help="Test images per defect kind.")] = 20,
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = 256,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same pixels.")] = 7,
) -> None:
    """Generate the synthetic production-line dataset (deterministic)."""
    from inspection.evaluation.synthetic import PART_TYPES, DatasetSpec, write_dataset

    parts = part or list(PART_TYPES)
    unknown = [p for p in parts if p not in PART_TYPES]
    if unknown:
        raise fail(f"unknown part type(s) {', '.join(unknown)}; choose from {', '.join(PART_TYPES)}")
    spec = DatasetSpec(train_good, test_good, test_per_defect, size, seed)
    for p in parts:
        t = time.perf_counter()
        folder = write_dataset(out, p, spec)
        typer.echo(f"wrote {folder} in {time.perf_counter() - t:.1f} s")
