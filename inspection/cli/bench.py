"""Bench commands: measure this box against a latency budget, compare boxes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from inspection.cli.common import default_model, fail, int_list
from inspection.errors import InspectionError

app = typer.Typer(help="Benchmark this box against a latency budget (`inspection bench --help`).",
                  invoke_without_command=True)


def _scenarios_and_depths(scenario: str, depth: str) -> tuple[list[str], list[str]]:
    """The --scenario and --depth choices ("all", "both" expanded); BenchError names a wrong one."""
    from inspection.bench import engine

    scen = list(engine.SCENARIOS) if scenario == "all" else [scenario]
    deps = list(engine.DEPTHS) if depth == "both" else [depth]
    if any(x not in engine.SCENARIOS for x in scen):
        raise engine.BenchError(f"--scenario {scenario!r}: choose {', '.join(engine.SCENARIOS)} or all")
    if any(x not in engine.DEPTHS for x in deps):
        raise engine.BenchError(f"--depth {depth!r}: choose model, e2e or both")
    return scen, deps


@app.callback()
def bench(
    ctx: typer.Context,
    model: Annotated[Path | None, typer.Option(help="Inspection model (default: the shipped demo model).")] = None,
    scenario: Annotated[str, typer.Option(help="single-stream, multi-stream, offline, or all.")] = "single-stream",
    depth: Annotated[str, typer.Option(help="model (graph only), e2e (by stage), or both.")] = "model",
    threads: Annotated[str, typer.Option(help="Thread counts to sweep, e.g. 1,2.")] = "1",
    sizes: Annotated[str, typer.Option(help="Input sizes to sweep, e.g. 256,320.")] = "256",
    providers: Annotated[str, typer.Option(help="Execution providers, e.g. CPUExecutionProvider.")]
    = "CPUExecutionProvider",
    variants: Annotated[str, typer.Option(help="fp32, int8, or fp32,int8 (int8 needs --good or --int8-model).")]
    = "fp32",
    streams: Annotated[int, typer.Option(help="multi-stream: cameras per query.")] = 4,
    batch: Annotated[int, typer.Option(help="offline: frames per batch.")] = 8,
    duration: Annotated[float, typer.Option(help="Minimum seconds per run.")] = 10.0,
    min_count: Annotated[int, typer.Option(help="Minimum queries per run.")] = 200,
    warmup: Annotated[int, typer.Option(help="Warm-up queries, not measured.")] = 20,
    budget: Annotated[str | None, typer.Option(help="Latency budget, e.g. p90=20ms or p90=20ms,p99=30ms.")] = None,
    images: Annotated[Path | None, typer.Option(help="Sample images of your part (default: drawn by the "
                                                     "synthetic flange line).")] = None,
    good: Annotated[Path | None, typer.Option(help="int8 variant: the model's good training images (the int8 "
                                                    "bank is rebuilt from them).")] = None,
    int8_model: Annotated[Path | None, typer.Option(help="int8 variant: a model from `inspection quantize`.")]
    = None,
    defects: Annotated[Path | None, typer.Option(help="With --good: labelled defect images; reports the image "
                                                      "AUROC of fp32 and int8.")] = None,
    calib_good: Annotated[Path | None, typer.Option(help="int8 variant, with --good: the separate held-out good "
                                                         "images of a model trained with --calib-good (required "
                                                         "for such a model).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for bench.json and bench.html.")] = Path("bench-report"),
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Measure inference latency and throughput; with --budget, PASS (exit 0) or FAIL (exit 1)."""
    if ctx.invoked_subcommand is not None:
        return
    from inspection.bench import engine, report
    from inspection.bench.int8 import Int8Inputs
    from inspection.bench.stats import Budget, BudgetError
    from inspection.bench.suite import run_suite

    try:
        parsed_budget = Budget.parse(budget) if budget else None
        scen, deps = _scenarios_and_depths(scenario, depth)
        model_path = model or default_model()
        if not Path(model_path).is_file():
            raise engine.BenchError(f"{model_path}: no such model file")
        encoded = engine.sample_images(images)
        result = run_suite(Path(model_path), scen, deps, int_list(threads, "--threads"),
                           int_list(sizes, "--sizes"), [p.strip() for p in providers.split(",") if p.strip()],
                           [v.strip() for v in variants.split(",") if v.strip()], parsed_budget, encoded, streams,
                           batch, duration, min_count, warmup, progress=not quiet,
                           int8=Int8Inputs(int8_model, good, defects, calib_good))
    except (BudgetError, engine.BenchError, InspectionError) as exc:
        raise fail(str(exc)) from None
    js, page = report.write(result, out)
    typer.echo(report.table(result))
    typer.echo(f"wrote {js} and {page}")
    if result["verdict"] == "FAIL":
        raise typer.Exit(1)


@app.command("compare")
def bench_compare(reports: Annotated[list[Path], typer.Argument(help="bench.json files from different boxes.")]
                  ) -> None:
    """Show runs from different boxes side by side."""
    from inspection.bench import report

    loaded = []
    for p in reports:
        try:
            data = json.loads(p.read_text())
            if data.get("tool") != "inspection bench":
                raise ValueError("not a bench report")
        except (OSError, ValueError) as exc:
            raise fail(f"{p}: cannot read a bench report ({exc})") from None
        loaded.append((p.stem if len({r.stem for r in reports}) == len(reports) else str(p), data))
    typer.echo(report.compare(loaded))
