"""Line commands: run a station, the demo."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from inspection.cli.common import fail
from inspection.errors import InspectionError


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

    from inspection.line.config import load_config
    from inspection.line.runner import LineRunner

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {"service.url": service_url, "mqtt.host": mqtt_host, "source.rate": rate,
                 "status.port": status_port, "outbox": str(outbox) if outbox else None}
    try:
        cfg = load_config(config, overrides)
        runner = LineRunner(cfg, flush_timeout=flush_timeout)
    except (InspectionError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
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
    from inspection.cli.service import service_engine
    from inspection.line.config import parse_config
    from inspection.line.runner import LineRunner
    from inspection.model.shipped import demo_model_path
    from inspection.schema import StationContext

    if part not in ("flange", "knurled_plate"):
        raise fail(f"--part {part!r}: choose flange or knurled_plate")
    workdir.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{workdir / 'results.db'}"
    station = StationContext.from_path("demo-plant/area1/line1/cell1/station1")
    store.add_station(service_engine(db), station)
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
                raise fail(f"the results service did not start on port {port}")
            time.sleep(0.2)
        cfg = parse_config({
            "station": station.model_dump(), "outbox": str(workdir / "outbox.db"),
            "model": {"path": str(demo_model_path(part))},
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


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(demo)
