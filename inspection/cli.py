"""The `inspection` command line.

Exit codes: 0 all went well; 1 the command finished but some files failed (each one is reported);
2 the command could not run (bad option, missing folder, unusable model).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from inspection.errors import InspectionError

app = typer.Typer(help="Edge visual quality inspection: train, calibrate, inspect and evaluate defect models.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
dataset_app = typer.Typer(help="Synthetic production-line datasets (MVTec AD layout).", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")
bench_app = typer.Typer(help="Benchmark this box against a latency budget (`inspection bench --help`).",
                        invoke_without_command=True)
app.add_typer(bench_app, name="bench")
token_app = typer.Typer(help="API tokens of the results service (shown once at creation).", no_args_is_help=True)
app.add_typer(token_app, name="token")
station_app = typer.Typer(help="Stations known to the results service.", no_args_is_help=True)
app.add_typer(station_app, name="station")

EXIT_FILE_ERRORS = 1
EXIT_FATAL = 2


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(EXIT_FATAL)


def _report_file_errors(errors: list[str]) -> None:
    for e in errors:
        typer.secho(f"  skipped: {e}", fg=typer.colors.YELLOW, err=True)


def _parse_size(text: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in text.lower().replace("x", " ").split()]
    except ValueError:
        raise typer.BadParameter(f"{text!r}: give a size like 256 or 256x320 (height x width)") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2:
        raise typer.BadParameter(f"{text!r}: give a size like 256 or 256x320 (height x width)")
    return parts[0], parts[1]


def _default_model() -> Path:
    from inspection.shipped import demo_model_path

    return demo_model_path()


@app.command()
def train(
    good: Annotated[Path, typer.Option(help="Folder of good images of the part.")],
    out: Annotated[Path, typer.Option(help="Model file to write (.onnx).")],
    name: Annotated[str | None, typer.Option(help="Model name (default: the output file's stem).")] = None,
    version: Annotated[str, typer.Option(help="Model version recorded in results.")] = "1",
    input_size: Annotated[str, typer.Option(help="Model input HxW (multiples of 16), e.g. 256 or 256x320.")]
    = "256",
    bank_size: Annotated[int, typer.Option(help="Memory-bank entries (coreset size).")] = 1024,
    projection_dim: Annotated[int, typer.Option(help="Principal axes kept for the search; 0 = no projection.")]
    = 32,
    blur_sigma: Annotated[float, typer.Option(help="Gaussian blur of the patch map, in patches; 0 = none.")]
    = 0.0,
    holdout: Annotated[float, typer.Option(help="Fraction of good images held out for calibration.")] = 0.15,
    calib_good: Annotated[Path | None, typer.Option(help="Separate folder of held-out good images.")] = None,
    defects: Annotated[Path | None, typer.Option(help="Folder of labelled defect images, searched recursively "
                                                      "(subfolders named good are skipped), for the F1 "
                                                      "threshold and escape rate.")] = None,
    target_frr: Annotated[float, typer.Option(help="Target false-reject rate on good parts.")] = 0.01,
    policy: Annotated[str, typer.Option(help="Threshold used by the model: frr or f1 (needs --defects).")]
    = "frr",
    threads: Annotated[int | None, typer.Option(help="onnxruntime threads (default: all cores).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (coreset start, projections, hold-out split).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Train a model for a new part type from good images only."""
    from inspection.training import TrainConfig
    from inspection.training import train as run_train

    if policy not in ("frr", "f1"):
        raise _fail(f"--policy {policy!r}: choose frr or f1")
    config = TrainConfig(name=name or out.stem, model_version=version, input_size=_parse_size(input_size),
                         bank_size=bank_size, projection_dim=projection_dim or None, blur_sigma=blur_sigma,
                         holdout_fraction=holdout, target_frr=target_frr, policy=policy, seed=seed,
                         threads=threads, progress=not quiet)
    try:
        report = run_train(good, out, config, calib_good_dir=calib_good, defects_dir=defects)
    except (InspectionError, ValueError) as exc:
        raise _fail(str(exc)) from None
    _report_file_errors(report.errors)
    c = report.calibration
    total = sum(report.seconds.values())
    typer.echo(f"wrote {report.model_path}: bank {config.bank_size} from {report.patches} patches of "
               f"{report.bank_images} images; threshold {c.threshold:.4f} ({c.policy}, "
               f"{c.good_count} held-out good, {c.defect_count} defect); trained in {total:.1f} s")
    for note in c.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"calibration report: {report.calibration_path}")
    if report.errors:
        typer.echo(f"{len(report.errors)} file(s) could not be read and were skipped")
        raise typer.Exit(EXIT_FILE_ERRORS)


@app.command()
def calibrate(
    model: Annotated[Path, typer.Option(help="Model file to re-calibrate.")],
    good: Annotated[Path, typer.Option(help="Folder of held-out good images.")],
    defects: Annotated[Path | None, typer.Option(help="Folder of labelled defect images, searched recursively "
                                                      "(subfolders named good are skipped).")] = None,
    target_frr: Annotated[float, typer.Option(help="Target false-reject rate on good parts.")] = 0.01,
    policy: Annotated[str, typer.Option(help="frr or f1 (needs --defects).")] = "frr",
    out: Annotated[Path | None, typer.Option(help="Write here instead of updating the model in place.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Set a model's threshold again from held-out images, without retraining."""
    from inspection.training import recalibrate

    if policy not in ("frr", "f1"):
        raise _fail(f"--policy {policy!r}: choose frr or f1")
    try:
        c, report, errors = recalibrate(model, good, defects, target_frr, policy, out, progress=not quiet)
    except (InspectionError, ValueError) as exc:
        raise _fail(str(exc)) from None
    _report_file_errors(errors)
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


def _output_stems(paths: list[Path]) -> list[str]:
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


@app.command()
def inspect(
    images: Annotated[list[Path], typer.Argument(help="Image files or folders of images.")],
    out: Annotated[Path, typer.Option(help="Folder for one JSON and one overlay PNG per image.")],
    model: Annotated[Path | None, typer.Option(help="Model file (default: the shipped demo model).")] = None,
    threads: Annotated[int | None, typer.Option(help="onnxruntime threads.")] = None,
) -> None:
    """Inspect images: a verdict, score, regions and an overlay for each."""
    from inspection.imaging import load_image, save_image
    from inspection.model import InspectionModel
    from inspection.overlay import render_overlay

    try:
        m = InspectionModel.load(model or _default_model(), threads=threads)
    except (InspectionError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    paths, errors = _expand_inputs(images)
    out.mkdir(parents=True, exist_ok=True)
    counts = {"PASS": 0, "FAIL": 0}
    for path, stem in zip(paths, _output_stems(paths), strict=True):
        try:
            image = load_image(path)
        except InspectionError as exc:
            errors.append(str(exc))
            typer.secho(f"ERROR {exc}", fg=typer.colors.YELLOW, err=True)
            continue
        result = m.inspect(image, name=str(path))
        record = result.to_result(source=str(path))
        (out / f"{stem}.json").write_text(record.model_dump_json(indent=2) + "\n")
        save_image(out / f"{stem}_overlay.png", render_overlay(image, result, m.meta.good_scores.p50))
        counts[result.verdict] += 1
        typer.echo(f"{result.verdict}  {result.score:8.4f}  {len(result.regions)} region(s)  {path}")
    typer.echo(f"{counts['PASS']} PASS, {counts['FAIL']} FAIL, {len(errors)} error(s); results in {out}")
    if errors:
        raise typer.Exit(EXIT_FILE_ERRORS)


@app.command(name="eval")
def eval_(
    data: Annotated[Path, typer.Option(help="Dataset folder in MVTec AD layout (test/, ground_truth/).")],
    model: Annotated[Path | None, typer.Option(help="Model file (default: the shipped demo model).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for eval.json and eval.md.")] = Path("eval-report"),
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Evaluate a model: image/pixel AUROC, AUPRO, F1 and confusion per defect kind."""
    from inspection.evaluation import evaluate, to_markdown, write_reports
    from inspection.model import InspectionModel

    try:
        m = InspectionModel.load(model or _default_model())
        report = evaluate(m, data, progress=not quiet)
    except (InspectionError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    js, md = write_reports(report, out)
    typer.echo(to_markdown(report))
    typer.echo(f"wrote {js} and {md}")
    if report.errors:
        raise typer.Exit(EXIT_FILE_ERRORS)


@app.command()
def info(model: Annotated[Path, typer.Argument(help="Model file.")]) -> None:
    """Print a model's metadata."""
    from inspection.metadata import read_metadata

    try:
        meta = read_metadata(model)
    except InspectionError as exc:
        raise _fail(str(exc)) from None
    typer.echo(json.dumps(meta.model_dump(mode="json"), indent=2))


@dataset_app.command("generate")
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
    from inspection.synthetic import PART_TYPES, DatasetSpec, write_dataset

    parts = part or list(PART_TYPES)
    unknown = [p for p in parts if p not in PART_TYPES]
    if unknown:
        raise _fail(f"unknown part type(s) {', '.join(unknown)}; choose from {', '.join(PART_TYPES)}")
    spec = DatasetSpec(train_good, test_good, test_per_defect, size, seed)
    for p in parts:
        t = time.perf_counter()
        folder = write_dataset(out, p, spec)
        typer.echo(f"wrote {folder} in {time.perf_counter() - t:.1f} s")


@app.command()
def run(
    config: Annotated[Path, typer.Option(envvar="INSPECTION_CONFIG", help="Station config (TOML).")],
    service_url: Annotated[str | None, typer.Option(envvar="INSPECTION_SERVICE_URL",
                                                    help="Results service URL (overrides service.url).")] = None,
    mqtt_host: Annotated[str | None, typer.Option(envvar="INSPECTION_MQTT_HOST", help="Broker (mqtt.host).")] = None,
    rate: Annotated[float | None, typer.Option(help="Simulated line: parts per second (source.rate).")] = None,
    status_port: Annotated[int | None, typer.Option(envvar="INSPECTION_STATUS_PORT",
                                                    help="Status/metrics port (status.port).")] = None,
    outbox: Annotated[Path | None, typer.Option(envvar="INSPECTION_OUTBOX", help="Outbox file (outbox).")] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    flush_timeout: Annotated[float, typer.Option(help="At stop, seconds to keep delivering the outbox.")] = 10.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at INFO.")] = False,
) -> None:
    """Run one inspection station: frames in, verdicts out, store-and-forward to the service and MQTT."""
    import logging
    import signal
    import threading

    from inspection.runner import LineRunner
    from inspection.station_config import load_config

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {"service.url": service_url, "mqtt.host": mqtt_host, "source.rate": rate,
                 "status.port": status_port, "outbox": str(outbox) if outbox else None}
    try:
        cfg = load_config(config, overrides)
        runner = LineRunner(cfg, flush_timeout=flush_timeout)
    except (InspectionError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    if cfg.service.url and not cfg.service.secret():
        typer.secho(f"warning: no service token (service.token, or ${cfg.service.token_env}); the service will "
                    "refuse results unless it runs --insecure-local", fg=typer.colors.YELLOW, err=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    runner.start()
    links = ", ".join(f.dest for f in runner.forwarders) or "none (outbox only)"
    typer.echo(f"station {runner.station.path}: {runner.source.name}, model {runner.model.info.name} "
               f"v{runner.model.info.version}; delivering to {links}"
               + (f"; status http://{cfg.status.host}:{cfg.status.port}/status" if cfg.status.port else ""))
    deadline = time.monotonic() + duration if duration else None
    while not stop.is_set() and not runner.finished.is_set():
        stop.wait(0.2)
        if deadline and time.monotonic() > deadline:
            break
    typer.echo("stopping: finishing frames in flight and flushing the outbox ...")
    runner.stop()
    st = runner.status()
    typer.echo(f"{st['results']['PASS']} PASS, {st['results']['FAIL']} FAIL, {st['source']['dropped']} dropped, "
               f"{st['source']['corrupt']} corrupt; undelivered: "
               + ", ".join(f"{d} {s['depth']}" for d, s in st["outbox"].items()))


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port of the results service and pages.")] = 8080,
    rate: Annotated[float, typer.Option(help="Parts per second on the simulated line.")] = 4.0,
    defect_rate: Annotated[float, typer.Option(help="Share of defective parts.")] = 0.15,
    part: Annotated[str, typer.Option(help="Part type: flange or knurled_plate.")] = "flange",
    workdir: Annotated[Path, typer.Option(help="Where the demo keeps its database, outbox and images.")]
    = Path("runs/demo"),
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
) -> None:
    """The whole product on this machine: a simulated line, the shipped model, the results service and the
    operator page on localhost (no tokens: --insecure-local), and MQTT when a broker runs on 1883."""
    import socket
    import subprocess

    import httpx

    from edge_service import store
    from inspection.result import StationContext
    from inspection.runner import LineRunner
    from inspection.station_config import parse_config

    if part not in ("flange", "knurled_plate"):
        raise _fail(f"--part {part!r}: choose flange or knurled_plate")
    workdir.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{workdir / 'results.db'}"
    station = StationContext.from_path("demo-plant/area1/line1/cell1/station1")
    store.add_station(_engine(db), station)
    with socket.socket() as probe:
        mqtt_up = probe.connect_ex(("127.0.0.1", 1883)) == 0
    service = subprocess.Popen([sys.executable, "-m", "inspection.cli", "serve", "--insecure-local", "--port",
                                str(port), "--database-url", db, "--image-dir", str(workdir / "service-images"),
                                "--stale-seconds", "5"])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or service.poll() is not None:
                raise _fail(f"the results service did not start on port {port}")
            time.sleep(0.2)
        cfg = parse_config({
            "station": station.model_dump(), "outbox": str(workdir / "outbox.db"),
            "source": {"kind": "simulated", "part_type": part, "rate": rate, "defect_rate": defect_rate},
            "images": {"dir": str(workdir / "images"), "keep_pass_fraction": 0.05},
            "service": {"url": f"http://127.0.0.1:{port}"},
            "mqtt": {"host": "127.0.0.1" if mqtt_up else None, "topic_prefix": "demo"},
            "status": {"port": 0}}, "demo")
        runner = LineRunner(cfg)
        runner.start()
        typer.secho(f"\n  operator page:  http://127.0.0.1:{port}/#station={station.path}\n"
                    f"  API docs:       http://127.0.0.1:{port}/docs\n"
                    f"  MQTT:           {'demo/' + station.path + '/inspection/result' if mqtt_up else 'no broker'}"
                    f"\n  simulated {part} line at {rate:g} parts/s; Ctrl-C stops\n", fg=typer.colors.GREEN)
        import signal
        import threading

        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        end = time.monotonic() + duration if duration else None
        while not stop.wait(0.5):
            if end and time.monotonic() > end:
                break
        runner.stop()
        st = runner.status()
        typer.echo(f"{st['results']['PASS']} PASS, {st['results']['FAIL']} FAIL delivered to the service")
    finally:
        service.terminate()
        service.wait(timeout=20)


def _int_list(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise _fail(f"{what} {text!r}: give whole numbers separated by commas, like 1,2") from None


@bench_app.callback()
def bench(
    ctx: typer.Context,
    model: Annotated[Path | None, typer.Option(help="Inspection model (default: the shipped demo model).")] = None,
    scenario: Annotated[str, typer.Option(help="single-stream, multi-stream, offline, or all.")] = "single-stream",
    depth: Annotated[str, typer.Option(help="model (graph only), e2e (by stage), or both.")] = "model",
    threads: Annotated[str, typer.Option(help="Thread counts to sweep, e.g. 1,2.")] = "1",
    sizes: Annotated[str, typer.Option(help="Input sizes to sweep, e.g. 256,320.")] = "256",
    providers: Annotated[str, typer.Option(help="Execution providers, e.g. CPUExecutionProvider.")]
    = "CPUExecutionProvider",
    variants: Annotated[str, typer.Option(help="fp32, int8, or fp32,int8.")] = "fp32",
    streams: Annotated[int, typer.Option(help="multi-stream: cameras per query.")] = 4,
    batch: Annotated[int, typer.Option(help="offline: frames per batch.")] = 8,
    duration: Annotated[float, typer.Option(help="Minimum seconds per run.")] = 10.0,
    min_count: Annotated[int, typer.Option(help="Minimum queries per run.")] = 200,
    warmup: Annotated[int, typer.Option(help="Warm-up queries, not measured.")] = 20,
    budget: Annotated[str | None, typer.Option(help="Latency budget, e.g. p90=20ms or p90=20ms,p99=30ms.")] = None,
    images: Annotated[Path | None, typer.Option(help="Sample images (default: drawn by the synthetic line).")]
    = None,
    out: Annotated[Path, typer.Option(help="Folder for bench.json and bench.html.")] = Path("bench-report"),
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Measure inference latency and throughput; with --budget, PASS (exit 0) or FAIL (exit 1)."""
    if ctx.invoked_subcommand is not None:
        return
    from inspection.bench import engine, report
    from inspection.bench.stats import Budget, BudgetError
    from inspection.bench.suite import run_suite

    try:
        parsed_budget = Budget.parse(budget) if budget else None
        scen = list(engine.SCENARIOS) if scenario == "all" else [scenario]
        deps = list(engine.DEPTHS) if depth == "both" else [depth]
        if any(x not in engine.SCENARIOS for x in scen):
            raise engine.BenchError(f"--scenario {scenario!r}: choose {', '.join(engine.SCENARIOS)} or all")
        if any(x not in engine.DEPTHS for x in deps):
            raise engine.BenchError(f"--depth {depth!r}: choose model, e2e or both")
        model_path = model or _default_model()
        if not Path(model_path).is_file():
            raise engine.BenchError(f"{model_path}: no such model file")
        part = "knurled_plate" if "knurled_plate" in Path(model_path).name else "flange"
        encoded = engine.sample_images(images, part=part)
        result = run_suite(Path(model_path), scen, deps, _int_list(threads, "--threads"),
                           _int_list(sizes, "--sizes"), [p.strip() for p in providers.split(",") if p.strip()],
                           [v.strip() for v in variants.split(",") if v.strip()], parsed_budget, encoded, streams,
                           batch, duration, min_count, warmup, progress=not quiet)
    except (BudgetError, engine.BenchError, InspectionError) as exc:
        raise _fail(str(exc)) from None
    js, page = report.write(result, out)
    typer.echo(report.table(result))
    typer.echo(f"wrote {js} and {page}")
    if result["verdict"] == "FAIL":
        raise typer.Exit(1)


@bench_app.command("compare")
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
            raise _fail(f"{p}: cannot read a bench report ({exc})") from None
        loaded.append((p.stem if len({r.stem for r in reports}) == len(reports) else str(p), data))
    typer.echo(report.compare(loaded))


DatabaseOpt = Annotated[str, typer.Option("--database-url", envvar="INSPECTION_DATABASE_URL",
                                          help="SQLAlchemy URL: sqlite:///file.db or postgresql://user@host/db.")]
DEFAULT_DB = "sqlite:///inspection-results.db"


def _engine(url: str):
    """The service database, migrated to the newest schema, or a clear error."""
    from edge_service.database import DatabaseUnavailable, make_engine, prepare

    try:
        return prepare(make_engine(url))
    except DatabaseUnavailable as exc:
        raise _fail(str(exc)) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="INSPECTION_HOST", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="INSPECTION_PORT", help="Port.")] = 8080,
    database_url: DatabaseOpt = DEFAULT_DB,
    image_dir: Annotated[Path, typer.Option(envvar="INSPECTION_IMAGE_DIR", help="Where images are kept.")]
    = Path("inspection-images"),
    insecure_local: Annotated[bool, typer.Option("--insecure-local", envvar="INSPECTION_INSECURE_LOCAL",
                                                 help="No tokens (demo only): binds 127.0.0.1 only.")] = False,
    stale_seconds: Annotated[float, typer.Option(envvar="INSPECTION_STALE_SECONDS",
                                                 help="Operator page shows STALE after this long.")] = 10.0,
    image_max_age_days: Annotated[float, typer.Option(envvar="INSPECTION_IMAGE_MAX_AGE_DAYS",
                                                      help="Delete images older than this; 0 = keep.")] = 30.0,
    image_max_gb: Annotated[float, typer.Option(envvar="INSPECTION_IMAGE_MAX_GB",
                                                help="Keep images under this many GB; 0 = no limit.")] = 10.0,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")] = False,
) -> None:
    """Run the results service: REST API, live stream, operator page."""
    import ipaddress

    import uvicorn

    from edge_service.app import ServiceSettings, create_app

    if insecure_local:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise _fail(f"--insecure-local binds only to 127.0.0.1, not {host}")
        host = "127.0.0.1"
        banner = "!" * 78
        typer.secho(f"{banner}\n  INSECURE LOCAL MODE: no API tokens are checked. Anyone on this machine can read,\n"
                    f"  write and administer results. Bound to 127.0.0.1 only. Never use this on a line.\n{banner}",
                    fg=typer.colors.RED, err=True, bold=True)
    _engine(database_url).dispose()
    settings = ServiceSettings(database_url=database_url, image_dir=image_dir, insecure_local=insecure_local,
                               stale_seconds=stale_seconds, image_max_age_days=image_max_age_days or None,
                               image_max_bytes=int(image_max_gb * 1024**3) or None)
    typer.echo(f"results service on http://{host}:{port}/ (database {database_url.split('@')[-1]})")
    uvicorn.run(create_app(settings), host=host, port=port, access_log=access_log, log_level="info")


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="edge, operator, qa or admin.")],
    name: Annotated[str, typer.Option(help="Who or what uses it (shown in reviews and logs).")],
    station: Annotated[str | None, typer.Option(help="edge only: restrict to stations under this path.")] = None,
    database_url: DatabaseOpt = DEFAULT_DB,
) -> None:
    """Create a token; it is printed once and only its hash is kept."""
    from edge_service import auth

    try:
        new = auth.create_token(_engine(database_url), name, role, station.strip("/") if station else None)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"token id {new.id} ({new.role}, {new.name}); store this now, it is not shown again:")
    typer.echo(new.token)


@token_app.command("list")
def token_list(database_url: DatabaseOpt = DEFAULT_DB) -> None:
    """List tokens (never the secrets)."""
    from edge_service import auth

    for t in auth.list_tokens(_engine(database_url)):
        state = f"revoked {t['revoked_at']:%Y-%m-%d %H:%M}" if t["revoked_at"] else "active"
        typer.echo(f"{t['id']}  {t['role']:8s} {t['name']:24s} {t['station_prefix'] or '-':30s} {state}")


@token_app.command("revoke")
def token_revoke(token_id: Annotated[str, typer.Argument(help="Token id from `token list`.")],
                 database_url: DatabaseOpt = DEFAULT_DB) -> None:
    """Revoke a token at once."""
    from edge_service import auth

    if not auth.revoke_token(_engine(database_url), token_id):
        raise _fail(f"no active token {token_id}")
    typer.echo(f"revoked {token_id}")


@station_app.command("add")
def station_add(path: Annotated[str, typer.Argument(help="site/area/line/cell/station")],
                database_url: DatabaseOpt = DEFAULT_DB) -> None:
    """Register a station so that its results are accepted."""
    from pydantic import ValidationError

    from edge_service import store
    from inspection.result import StationContext

    try:
        station = StationContext.from_path(path)
    except (ValueError, ValidationError) as exc:
        raise _fail(f"station {path!r}: {exc}") from None
    created = store.add_station(_engine(database_url), station)
    typer.echo(f"{'added' if created else 'already known'}: {station.path}")


@station_app.command("list")
def station_list(database_url: DatabaseOpt = DEFAULT_DB) -> None:
    from edge_service import store

    for p in store.list_stations(_engine(database_url)):
        typer.echo(p)


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())


if __name__ == "__main__":  # python -m inspection.cli
    app()
