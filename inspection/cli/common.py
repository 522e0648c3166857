"""What every command shares: exit codes, the fatal-error exit, file-error reporting, option parsers and the
one default model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

if TYPE_CHECKING:
    from inspection.model.tiling import FrameMapping

EXIT_FILE_ERRORS = 1
EXIT_FATAL = 2


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` in red on stderr; raise the returned Exit (code 2)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(EXIT_FATAL)


def report_file_errors(errors: list[str]) -> None:
    for e in errors:
        typer.secho(f"  skipped: {e}", fg=typer.colors.YELLOW, err=True)


def parse_size(text: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in text.lower().replace("x", " ").split()]
    except ValueError:
        raise typer.BadParameter(f"{text!r}: give a size like 256 or 256x320 (height x width)") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2:
        raise typer.BadParameter(f"{text!r}: give a size like 256 or 256x320 (height x width)")
    return parts[0], parts[1]


def int_list(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise fail(f"{what} {text!r}: give whole numbers separated by commas, like 1,2") from None


# inspection.schema.FrameMappingMode, spelled here so that importing the CLI loads no pydantic model module
FrameMode = Literal["resize", "roi", "tiles"]
_OPTION_OF = {"mode": "--frame-mapping", "roi": "--roi", "tile_px": "--tile-px", "overlap": "--overlap",
              "max_batch": "--max-batch"}

# The options of a command whose images are whole frames scored as a station with that [frame_mapping] scores
# them (calibrate, eval): one spelling, parsed by mapping_from_options
FramesMode = Annotated[FrameMode, typer.Option(help="roi or tiles: the images are whole frames, scored as a "
                                               "station with this frame mapping scores them.")]
FramesRoi = Annotated[str | None, typer.Option(help="As for inspect: X,Y,WIDTH,HEIGHT.")]
FramesTilePx = Annotated[int | None, typer.Option(help="As for inspect: a tile's width in frame pixels.")]
FramesOverlap = Annotated[float, typer.Option(help="As for inspect: tiles' least overlap.")]
FramesMaxBatch = Annotated[int | None, typer.Option(help="tiles: at most this many tiles per model call (the "
                                                    "station's max_batch; bounds the memory); default: all "
                                                    "tiles of a frame in one call.")]


def mapping_from_options(mode: str, roi: str | None, tile_px: int | None, overlap: float,
                         max_batch: int | None = None) -> FrameMapping:
    """The FrameMapping the options describe; a bad one exits 2 naming the option."""
    from pydantic import ValidationError

    from inspection.model.tiling import FrameMapping

    box = None
    if roi is not None:
        parts = [p.strip() for p in roi.split(",")]
        if len(parts) != 4 or not all(p.lstrip("-").isdigit() for p in parts):
            raise fail(f"--roi {roi!r}: give X,Y,WIDTH,HEIGHT in whole pixels, like 400,300,1600,1200")
        box = dict(zip(("x", "y", "width", "height"), (int(p) for p in parts), strict=True))
    try:
        return FrameMapping(mode=mode, roi=box, tile_px=tile_px, overlap=overlap, max_batch=max_batch)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            option = _OPTION_OF.get(str(e["loc"][0]), str(e["loc"][0])) if e["loc"] else "--frame-mapping"
            inner = f" {e['loc'][1]}" if len(e["loc"]) > 1 else ""
            problems.append(f"{option}{inner}: {e['msg'].replace('Value error, ', '')}")
        raise fail("; ".join(problems)) from None


def output_stems(paths: list[Path]) -> list[str]:
    """One distinct output name per input: the file's stem, prefixed by its folder where stems repeat."""
    counts: dict[str, int] = {}
    for p in paths:
        counts[p.stem] = counts.get(p.stem, 0) + 1
    stems, used = [], set()
    for p in paths:
        stem = p.stem if counts[p.stem] == 1 else f"{p.parent.name}_{p.stem}"
        candidate, n = stem, 1
        while candidate in used:
            n += 1
            candidate = f"{stem}_{n}"
        used.add(candidate)
        stems.append(candidate)
    return stems


def default_model() -> Path:
    """The one default model of every command: the shipped demo flange model (see README)."""
    from inspection.model.shipped import default_model_path

    return default_model_path()
