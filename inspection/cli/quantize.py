"""The quantize command: an INT8 twin of a trained model, its bank rebuilt from the int8 backbone's features."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from inspection.cli.common import EXIT_FILE_ERRORS, fail, report_file_errors
from inspection.errors import InspectionError

Method = Literal["minmax", "percentile", "entropy"]  # inspection.model.quantize.CalibrationMethod


def quantize(
    model: Annotated[Path, typer.Option(help="The fp32 model to quantise (from `inspection train`).")],
    good: Annotated[Path, typer.Option(help="The good images the model was trained on (its --good folder): "
                                            "they calibrate the int8 ranges and rebuild the bank.")],
    out: Annotated[Path, typer.Option(help="INT8 model file to write (.onnx).")],
    calib_good: Annotated[Path | None, typer.Option(help="Separate folder of held-out good images (as for "
                                                         "train; required for a model trained with it).")] = None,
    holdout: Annotated[float | None, typer.Option(help="Fraction held out for the threshold (default: the "
                                                       "model's own, which reproduces its split).")] = None,
    seed: Annotated[int, typer.Option(help="The seed the model was trained with.")] = 0,
    calibration_images: Annotated[int, typer.Option(help="Good images used to calibrate the int8 ranges.")] = 64,
    method: Annotated[Method, typer.Option(help="Range calibration: minmax, percentile or entropy.")] = "minmax",
    keep_taps: Annotated[bool, typer.Option("--keep-taps", help="Leave the conv and Add in front of each feature "
                                                                "tap in fp32.")] = False,
    threads: Annotated[int | None, typer.Option(help="onnxruntime threads (default: all cores).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Write an INT8 model: backbone quantised, bank, position statistics and threshold rebuilt from it."""
    from inspection.model.quantize import quantize_model

    try:
        report = quantize_model(model, good, out, calib_good, holdout, seed, calibration_images, method,
                                keep_taps, threads, progress=not quiet)
    except (InspectionError, ValueError) as exc:
        raise fail(str(exc)) from None
    report_file_errors(report.errors)
    c = report.calibration
    typer.echo(f"wrote {report.model_path} (int8 backbone, fp32 head): bank rebuilt from {report.bank_images} "
               f"images, {report.calibration_images} calibrated the int8 ranges; threshold {c.threshold:.4f} "
               f"({c.good_count} held-out good); {sum(report.seconds.values()):.1f} s")
    if not report.same_bank_images:
        typer.echo("note: the bank images differ from the fp32 model's (another folder, seed or hold-out): the two "
                   "models are not a like-for-like comparison")
    for note in c.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"calibration report: {report.calibration_path}")
    if report.errors:
        typer.echo(f"{len(report.errors)} file(s) could not be read and were skipped")
        raise typer.Exit(EXIT_FILE_ERRORS)


def register(app: typer.Typer) -> None:
    app.command()(quantize)
