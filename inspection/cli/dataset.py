"""Dataset commands: generate the synthetic line; cut good camera frames into tiles to train a tiles model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from inspection.cli.common import EXIT_FILE_ERRORS, fail, mapping_from_options, output_stems, parse_size

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


@app.command("tiles")
def dataset_tiles(
    frames: Annotated[Path, typer.Option(help="Folder of whole good camera frames.")],
    out: Annotated[Path, typer.Option(help="Folder to write the tiles into (PNG, at frame resolution).")],
    tile_px: Annotated[int, typer.Option(help="A tile's width in frame pixels, as the station's tile_px.")],
    overlap: Annotated[float, typer.Option(help="Least overlap of neighbouring tiles, as the station's.")] = 0.25,
    roi: Annotated[str | None, typer.Option(help="Only tile this area: X,Y,WIDTH,HEIGHT.")] = None,
    input_size: Annotated[str, typer.Option(help="The model input HxW the tiles are for (their aspect).")] = "256",
) -> None:
    """Cut good frames into the tiles a station in tiles mode shows the model, for `inspection train --good`."""
    from inspection.errors import InspectionError
    from inspection.imaging import list_images, load_image, save_image
    from inspection.model.tiling import plan_views

    mapping = mapping_from_options("tiles", roi, tile_px, overlap)
    model_hw = parse_size(input_size)
    if not frames.is_dir() or not (paths := list_images(frames)):
        raise fail(f"--frames {frames}: not a folder of images")
    out.mkdir(parents=True, exist_ok=True)
    written, errors = 0, []
    for p, stem in zip(paths, output_stems(paths), strict=True):  # one name per frame, even where stems repeat
        try:
            image = load_image(p)
            views = plan_views(mapping, image.shape[:2], model_hw).views
        except InspectionError as exc:
            errors.append(str(exc) if str(p) in str(exc) else f"{p}: {exc}")
            typer.secho(f"ERROR {errors[-1]}", fg=typer.colors.YELLOW, err=True)
            continue
        names = [out / f"{stem}_t{i:03d}.png" for i in range(len(views))]
        if taken := next((n for n in names if n.exists()), None):  # an earlier cut: keep scales apart
            raise fail(f"--out {out} already holds {taken.name} (tiles of an earlier run?); give an empty or new "
                       f"folder, so that `inspection train` does not mix tiles of two cuts")
        for name, v in zip(names, views, strict=True):
            save_image(name, image[v.slices])
        written += len(views)
    typer.echo(f"wrote {written} tiles of {len(paths) - len(errors)} frame(s) to {out}")
    if errors:
        raise typer.Exit(EXIT_FILE_ERRORS)
