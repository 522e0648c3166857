"""Line commands: run a station, the demo."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from inspection.cli.common import fail
from inspection.errors import InspectionError

if TYPE_CHECKING:
    from inspection.line.config import StationConfig
    from inspection.line.runner import LineRunner
    from inspection.schema import StationContext

EXIT_LINE_ERROR = 3  # the station stopped on an unrecoverable error (state error): let systemd restart it


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _run_until(runner: LineRunner, stop: threading.Event, duration: float | None) -> None:
    """Until a signal, the duration, a finite source's end, or an unrecoverable error (a full outbox disk is
    not one: the runner waits for space and resumes)."""
    deadline = time.monotonic() + duration if duration else None
    while not stop.is_set() and not runner.finished.is_set() and not runner.fatal.is_set():
        runner.check()
        stop.wait(0.1)
        if deadline and time.monotonic() > deadline:
            break


def _summary(runner: LineRunner) -> str:
    st = runner.snapshot()
    src = st.source
    return (f"{st.results['PASS']} PASS, {st.results['FAIL']} FAIL, {src.dropped} dropped, {src.corrupt} corrupt, "
            f"{src.failed} failed of {src.frames} frames; undelivered: "
            + ", ".join(f"{d} {s.depth}" for d, s in st.outbox.items()))


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
    """Run one inspection station: frames in, verdicts out, store-and-forward to the service and MQTT.
    Exits 3 when the station stopped on an unrecoverable error (state error in /status)."""
    import logging

    from inspection.line.config import load_config
    from inspection.line.runner import LineRunner
    from inspection.line.station_lock import StationLock

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {"service.url": service_url, "mqtt.host": mqtt_host, "source.rate": rate,
                 "status.port": status_port, "outbox": str(outbox) if outbox else None}
    lock: StationLock | None = None
    try:
        cfg = load_config(config, overrides)
        lock = StationLock(cfg.station.path)
        lock.acquire()  # one runner per station on this box: a second one stops here (exit 2)
        runner = LineRunner(cfg, flush_timeout=flush_timeout)
    except (InspectionError, FileNotFoundError) as exc:
        if lock is not None:
            lock.release()
        raise fail(str(exc)) from None
    try:
        _serve(runner, duration)
    finally:
        lock.release()


def _serve(runner: LineRunner, duration: float | None) -> None:
    """Run a started station until stopped, then flush; exit 3 when it stopped on an error."""
    cfg = runner.cfg
    if cfg.service.url and not cfg.service.secret():
        typer.secho(f"warning: no service token (service.token, or ${cfg.service.token_env}); the service will "
                    "refuse results unless it runs --insecure-local", fg=typer.colors.YELLOW, err=True)
    stop = _stop_on_signals()
    try:
        runner.start()
    except Exception as exc:  # a plant server that cannot bind its port, an unreadable certificate, ...
        runner.stop()
        raise fail(f"the station could not start: {type(exc).__name__}: {exc}") from None
    links = ", ".join(f.dest for f in runner.forwarders) or "none (outbox only)"
    running = runner.running_model().info  # the assigned model, when one was restored from the cache
    typer.echo(f"station {runner.station.path}: {runner.source.name}, model {running.name} "
               f"v{running.version}; delivering to {links}"
               + (f"; status http://{cfg.status.host}:{cfg.status.port}/status" if cfg.status.port else ""))
    if runner.assignment:
        typer.echo(f"model assignment: polling {cfg.service.url} every {cfg.assignment.poll_interval_s:g} s; "
                   f"models cached in {cfg.assignment.cache_dir}")
    if runner.trigger_mode:
        http = "POST /trigger on the status port" if cfg.status.port else "no HTTP trigger (status.port = 0)"
        typer.echo("trigger mode: " + "; ".join([*runner.trigger_mode.plant.lines, http]))
    _run_until(runner, stop, duration)
    typer.echo("stopping: finishing frames in flight and flushing the outbox ...")
    runner.stop()
    typer.echo(_summary(runner))
    if runner.state == "error":
        typer.secho(f"error: the station stopped: {runner.error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(EXIT_LINE_ERROR)


def _start_demo_service(port: int, db: str, workdir: Path) -> subprocess.Popen:
    import httpx

    service = subprocess.Popen([sys.executable, "-m", "inspection.cli", "serve", "--insecure-local", "--port",
                                str(port), "--database-url", db, "--image-dir", str(workdir / "service-images"),
                                "--stale-seconds", "5"],
                               start_new_session=True)  # Ctrl-C stops the line first: it drains into the service
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return service
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or service.poll() is not None:
            service.terminate()
            raise fail(f"the results service did not start on port {port}")
        time.sleep(0.2)


def _demo_config(station: StationContext, workdir: Path, port: int, part: str, rate: float, defect_rate: float,
                 mqtt_up: bool) -> StationConfig:
    from inspection.line.config import parse_config
    from inspection.model.shipped import demo_model_path

    return parse_config({
        "station": station.model_dump(), "outbox": str(workdir / "outbox.db"),
        "model": {"path": str(demo_model_path(part))},
        "source": {"kind": "simulated", "part_type": part, "rate": rate, "defect_rate": defect_rate},
        "images": {"dir": str(workdir / "images"), "keep_pass_fraction": 0.05},
        "service": {"url": f"http://127.0.0.1:{port}"},
        "mqtt": {"host": "127.0.0.1" if mqtt_up else None, "topic_prefix": "demo"},
        "status": {"port": 0}}, "demo")


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
    from edge_service import store
    from inspection.cli.service import service_engine
    from inspection.line.runner import LineRunner
    from inspection.schema import StationContext

    if part not in ("flange", "knurled_plate"):
        raise fail(f"--part {part!r}: choose flange or knurled_plate")
    workdir.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{workdir / 'results.db'}"
    station = StationContext.from_path("demo-plant/area1/line1/cell1/station1")
    store.add_station(service_engine(db), station)
    with socket.socket() as probe:
        mqtt_up = probe.connect_ex(("127.0.0.1", 1883)) == 0
    service = _start_demo_service(port, db, workdir)
    try:
        runner = LineRunner(_demo_config(station, workdir, port, part, rate, defect_rate, mqtt_up))
        runner.start()
        typer.secho(f"\n  operator page:  http://127.0.0.1:{port}/#station={station.path}\n"
                    f"  QA workstation: http://127.0.0.1:{port}/qa\n"
                    f"  API docs:       http://127.0.0.1:{port}/docs\n"
                    f"  MQTT:           {'demo/' + station.path + '/inspection/result' if mqtt_up else 'no broker'}"
                    f"\n  simulated {part} line at {rate:g} parts/s; Ctrl-C stops\n", fg=typer.colors.GREEN)
        _run_until(runner, _stop_on_signals(), duration)
        runner.stop()
        st = runner.snapshot()
        typer.echo(f"{st.results['PASS']} PASS, {st.results['FAIL']} FAIL delivered to the service")
    finally:
        service.terminate()
        service.wait(timeout=20)


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(demo)
