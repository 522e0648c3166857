"""Model commands: train, calibrate, inspect, eval, info."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from inspection.cli.common import (
    EXIT_FILE_ERRORS,
    FrameMode,
    FramesMaxBatch,
    FramesMode,
    FramesOverlap,
    FramesRoi,
    FramesTilePx,
    default_model,
    fail,
    mapping_from_options,
    output_stems,
    parse_size,
    report_file_errors,
)
from inspection.errors import InspectionError

# The threshold policies of inspection.model.calibration.Policy, spelled here so that importing the CLI
# (as `inspection serve` does) loads neither numpy nor onnx; tests/test_service_fresh_install.py checks it.
Policy = Literal["frr", "f1"]


def _preset_with_overrides(preset: str, given: dict) -> dict:
    """The preset's settings with the options given on the command line on top (projection 0 = none)."""
    from inspection.model.presets import preset_settings

    try:
        settings = preset_settings(preset)
    except ValueError as exc:
        raise fail(f"--preset: {exc}") from None
    settings.update({k: v for k, v in given.items() if v is not None})
    if settings.get("projection_dim") == 0:
        settings["projection_dim"] = None
    return settings


def train(
    good: Annotated[Path, typer.Option(help="Folder of good images of the part.")],
    out: Annotated[Path, typer.Option(help="Model file to write (.onnx).")],
    name: Annotated[str | None, typer.Option(help="Model name (default: the output file's stem).")] = None,
    version: Annotated[str, typer.Option(help="Model version recorded in results.")] = "1",
    input_size: Annotated[str | None, typer.Option(help="Model input HxW (multiples of 16), e.g. 256 or 256x320 "
                                                        "(default: the preset's).")] = None,
    preset: Annotated[str, typer.Option(help="fast (one Gaussian), balanced (whitened bank of 1024, 3 nearest) "
                                             "or accurate (bank of 1024, the nearest, at 352x352); options given "
                                             "below override it.")]
    = "balanced",
    bank_size: Annotated[int | None, typer.Option(help="Memory-bank entries (coreset size; 1 with whitening = "
                                                       "one Gaussian).")] = None,
    projection_dim: Annotated[int | None, typer.Option(help="Principal axes kept for the search; 0 = none.")]
    = None,
    blur_sigma: Annotated[float | None, typer.Option(help="Gaussian blur of the patch map, in patches.")] = None,
    border: Annotated[int | None, typer.Option(help="Patches at each edge left out of map and score.")] = None,
    top_k: Annotated[int | None, typer.Option(help="Image score: mean of the top-k patches (1 = max).")] = None,
    k_nearest: Annotated[int | None, typer.Option(help="Patch distance: mean over the k nearest bank entries.")]
    = None,
    holdout: Annotated[float, typer.Option(help="Fraction of good images held out for calibration.")] = 0.15,
    calib_good: Annotated[Path | None, typer.Option(help="Separate folder of held-out good images.")] = None,
    defects: Annotated[Path | None, typer.Option(help="Folder of labelled defect images, searched recursively "
                                                      "(subfolders named good are skipped), for the F1 "
                                                      "threshold and escape rate.")] = None,
    target_frr: Annotated[float, typer.Option(help="Target false-reject rate on good parts.")] = 0.01,
    policy: Annotated[Policy, typer.Option(help="Threshold used by the model: frr or f1 (needs --defects).")]
    = "frr",
    threads: Annotated[int | None, typer.Option(help="onnxruntime threads (default: all cores).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (coreset start, projections, hold-out split).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
    progress_json: Annotated[bool, typer.Option("--progress-json", help="Progress as JSON lines on stderr "
                                                "({\"progress\": {stage, done, total, fraction}}), not bars.")]
    = False,
) -> None:
    """Train a model for a new part type from good images only."""
    from inspection.cli.progress_json import JsonLinesProgress
    from inspection.model.training import TrainConfig
    from inspection.model.training import train as run_train

    settings = _preset_with_overrides(preset, {"bank_size": bank_size, "blur_sigma": blur_sigma, "border": border,
                                               "top_k": top_k, "projection_dim": projection_dim,
                                               "k_nearest": k_nearest,
                                               "input_size": parse_size(input_size) if input_size else None})
    config = TrainConfig(name=name or out.stem, model_version=version,
                         holdout_fraction=holdout, target_frr=target_frr, policy=policy, seed=seed,
                         threads=threads, progress=progress_json or not quiet, **settings)
    if progress_json:
        config.bar = JsonLinesProgress
    try:
        report = run_train(good, out, config, calib_good_dir=calib_good, defects_dir=defects)
    except (InspectionError, ValueError) as exc:
        raise fail(str(exc)) from None
    _print_training_report(report, preset, config.bank_size)


def _print_training_report(report, preset: str, bank_size: int) -> None:
    """What `inspection train` wrote and how it was calibrated; exit code EXIT_FILE_ERRORS if files were skipped."""
    report_file_errors(report.errors)
    c = report.calibration
    total = sum(report.seconds.values())
    typer.echo(f"wrote {report.model_path} (preset {preset}): bank {bank_size} from {report.patches} patches of "
               f"{report.bank_images} images; threshold {c.threshold:.4f} ({c.policy}, "
               f"{c.good_count} held-out good, {c.defect_count} defect); trained in {total:.1f} s")
    for note in c.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"calibration report: {report.calibration_path}")
    if report.errors:
        typer.echo(f"{len(report.errors)} file(s) could not be read and were skipped")
        raise typer.Exit(EXIT_FILE_ERRORS)


def calibrate(
    model: Annotated[Path, typer.Option(help="Model file to re-calibrate.")],
    good: Annotated[Path, typer.Option(help="Folder of held-out good images.")],
    defects: Annotated[Path | None, typer.Option(help="Folder of labelled defect images, searched recursively "
                                                      "(subfolders named good are skipped).")] = None,
    target_frr: Annotated[float, typer.Option(help="Target false-reject rate on good parts.")] = 0.01,
    policy: Annotated[Policy, typer.Option(help="frr or f1 (needs --defects).")] = "frr",
    out: Annotated[Path | None, typer.Option(help="Write here instead of updating the model in place.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
    frame_mapping: FramesMode = "resize",
    roi: FramesRoi = None,
    tile_px: FramesTilePx = None,
    overlap: FramesOverlap = 0.25,
    max_batch: FramesMaxBatch = None,
) -> None:
    """Set a model's threshold again from held-out images, without retraining."""
    from inspection.model.training import recalibrate

    mapping = mapping_from_options(frame_mapping, roi, tile_px, overlap, max_batch)
    try:
        c, report, errors = recalibrate(model, good, defects, target_frr, policy, out, progress=not quiet,
                                        mapping=mapping)
    except (InspectionError, ValueError) as exc:
        raise fail(str(exc)) from None
    report_file_errors(errors)
    fig = c.chosen
    escape = "n/a (no defects given)" if fig.escape_rate is None else f"{fig.escape_rate:.2%}"
    typer.echo(f"threshold {c.threshold:.4f} ({c.policy}): false-reject rate {fig.false_reject_rate:.2%} on "
               f"{c.good_count} good, escape rate {escape}")
    for note in c.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"wrote {out or model} and {report}")
    if errors:
        raise typer.Exit(EXIT_FILE_ERRORS)


def _expand_inputs(items: list[Path]) -> tuple[list[Path], list[str]]:
    from inspection.imaging import list_images

    paths, errors = [], []
    for item in items:
        if item.is_dir():
            found = list_images(item)
            if not found:
                errors.append(f"{item}: folder has no images")
            paths.extend(found)
        else:
            paths.append(item)
    return paths, errors


def inspect(
    images: Annotated[list[Path], typer.Argument(help="Image files or folders of images.")],
    out: Annotated[Path, typer.Option(help="Folder for one JSON and one overlay PNG per image.")],
    model: Annotated[Path | None, typer.Option(help="Model file (default: the shipped demo model).")] = None,
    threads: Annotated[int | None, typer.Option(help="onnxruntime threads.")] = None,
    frame_mapping: Annotated[FrameMode, typer.Option(help="How an image is shown to the model: resize (the whole "
                             "image), roi (--roi, resized), tiles (--tile-px tiles, stitched).")] = "resize",
    roi: Annotated[str | None, typer.Option(help="roi (or the area the tiles cover): X,Y,WIDTH,HEIGHT in image "
                                                 "pixels.")] = None,
    tile_px: Annotated[int | None, typer.Option(help="tiles: a tile's width in image pixels.")] = None,
    overlap: Annotated[float, typer.Option(help="tiles: the least overlap of neighbouring tiles, in [0, "
                                                "0.9].")] = 0.25,
) -> None:
    """Inspect images: a verdict, score, regions and an overlay for each."""
    from inspection.imaging import load_image, save_image
    from inspection.model.runtime import InspectionModel
    from inspection.results.overlay import render_overlay

    mapping = mapping_from_options(frame_mapping, roi, tile_px, overlap)
    try:
        m = InspectionModel.load(model or default_model(), threads=threads)
    except (InspectionError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    paths, errors = _expand_inputs(images)
    out.mkdir(parents=True, exist_ok=True)
    counts = {"PASS": 0, "FAIL": 0}
    for path, stem in zip(paths, output_stems(paths), strict=True):
        try:
            image = load_image(path)
        except InspectionError as exc:
            errors.append(str(exc))
            typer.secho(f"ERROR {exc}", fg=typer.colors.YELLOW, err=True)
            continue
        try:
            result = m.inspect(image, name=str(path), mapping=mapping)
        except InspectionError as exc:  # the mapping does not fit this image (an roi outside it, ...)
            errors.append(f"{path}: {exc}")
            typer.secho(f"ERROR {path}: {exc}", fg=typer.colors.YELLOW, err=True)
            continue
        record = result.to_result(source=str(path))
        (out / f"{stem}.json").write_text(record.model_dump_json(indent=2) + "\n")
        save_image(out / f"{stem}_overlay.png", render_overlay(image, result, m.meta.good_scores.p50))
        counts[result.verdict] += 1
        typer.echo(f"{result.verdict}  {result.score:8.4f}  {len(result.regions)} region(s)  {path}")
    typer.echo(f"{counts['PASS']} PASS, {counts['FAIL']} FAIL, {len(errors)} error(s); results in {out}")
    if errors:
        raise typer.Exit(EXIT_FILE_ERRORS)


def eval_(
    data: Annotated[Path, typer.Option(help="Dataset folder in MVTec AD layout (test/, ground_truth/).")],
    model: Annotated[Path | None, typer.Option(help="Model file (default: the shipped demo model).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for eval.json and eval.md.")] = Path("eval-report"),
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
    frame_mapping: FramesMode = "resize",
    roi: FramesRoi = None,
    tile_px: FramesTilePx = None,
    overlap: FramesOverlap = 0.25,
    max_batch: FramesMaxBatch = None,
) -> None:
    """Evaluate a model: image/pixel AUROC, AUPRO, F1 and confusion per defect kind."""
    from inspection.evaluation.evaluate import evaluate, to_markdown, write_reports
    from inspection.model.runtime import InspectionModel

    mapping = mapping_from_options(frame_mapping, roi, tile_px, overlap, max_batch)
    try:
        m = InspectionModel.load(model or default_model())
        report = evaluate(m, data, progress=not quiet, mapping=mapping)
    except (InspectionError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    js, md = write_reports(report, out)
    typer.echo(to_markdown(report))
    typer.echo(f"wrote {js} and {md}")
    if report.errors:
        raise typer.Exit(EXIT_FILE_ERRORS)


def info(model: Annotated[Path, typer.Argument(help="Model file.")]) -> None:
    """Print a model's metadata."""
    from inspection.model.metadata import read_metadata

    try:
        meta = read_metadata(model)
    except InspectionError as exc:
        raise fail(str(exc)) from None
    typer.echo(json.dumps(meta.model_dump(mode="json"), indent=2))


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command()(calibrate)
    app.command()(inspect)
    app.command(name="eval")(eval_)
    app.command()(info)
