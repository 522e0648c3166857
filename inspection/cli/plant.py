"""Plant commands: ``inspection plant serve`` (a triggered station with its Modbus TCP and OPC UA servers)
and ``inspection plc-sim`` (a simulated PLC that drives one and checks every answer)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from inspection.cli.common import fail
from inspection.errors import InspectionError

plant_app = typer.Typer(help="The plant side: a triggered station with Modbus TCP and OPC UA servers.",
                        no_args_is_help=True)
PASSWORD_ENV = "INSPECTION_OPCUA_PASSWORD"


def _settings(config: Path | None, protocol: str, host: str | None, modbus_port: int | None,
              opcua_port: int | None, cert_dir: Path | None, buffer_depth: int | None, allow_anonymous: bool,
              user: str | None):
    from inspection.plant.config import load_plant

    overrides: dict[str, object] = {
        "enabled": True, "buffer_depth": buffer_depth, "modbus.port": modbus_port, "opcua.port": opcua_port,
        "modbus.host": host, "opcua.host": host, "opcua.cert_dir": str(cert_dir) if cert_dir else None,
        "opcua.allow_anonymous": True if allow_anonymous else None,
        "opcua.users": [{"name": user, "password_env": PASSWORD_ENV}] if user else None}
    if config is None or protocol != "config":
        overrides |= {"modbus.enabled": protocol in ("modbus", "both"), "opcua.enabled": protocol in ("opcua", "both")}
    return load_plant(config, overrides)


@plant_app.command()
def serve(
    config: Annotated[Path | None, typer.Option(help="Station config (TOML) with a [plant] section.")] = None,
    protocol: Annotated[str, typer.Option(help="modbus, opcua, both, or config (as the config says).")] = "both",
    host: Annotated[str | None, typer.Option(help="Bind address of both servers.")] = None,
    modbus_port: Annotated[int | None, typer.Option(help="Modbus TCP port (plant.modbus.port).")] = None,
    opcua_port: Annotated[int | None, typer.Option(help="OPC UA port (plant.opcua.port).")] = None,
    cert_dir: Annotated[Path | None, typer.Option(help="OPC UA key and certificate folder.")] = None,
    user: Annotated[str | None, typer.Option(help=f"OPC UA user; the password is read from ${PASSWORD_ENV}.")] = None,
    allow_anonymous: Annotated[bool, typer.Option(help="Let OPC UA clients in without a user.")] = False,
    buffer_depth: Annotated[int | None, typer.Option(help="Results buffered until acknowledged.")] = None,
    threads: Annotated[int, typer.Option(help="Inference threads.")] = 1,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
) -> None:
    """A triggered station: the shipped model (one per recipe) on synthetic parts, answering triggers from a
    PLC over Modbus TCP and/or OPC UA. Ctrl-C stops."""
    import logging

    from inspection.plant.config import PlantConfigError
    from inspection.plant.station import ModelInspector, SimulatedCamera, build_station, recipe_models

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if protocol not in ("modbus", "opcua", "both", "config"):
        raise fail(f"--protocol {protocol!r}: choose modbus, opcua, both or config")
    if user is not None and not os.environ.get(PASSWORD_ENV):
        raise fail(f"--user {user}: set the password in ${PASSWORD_ENV} (never on the command line)")
    try:
        cfg = _settings(config, protocol, host, modbus_port, opcua_port, cert_dir, buffer_depth, allow_anonymous,
                        user)
        camera = SimulatedCamera({n: r.part_type for n, r in cfg.numbered().items()})
        station = build_station(cfg, ModelInspector(recipe_models(cfg, threads), camera))
        station.start()
    except PlantConfigError as exc:
        hint = f" (here: --user NAME with ${PASSWORD_ENV}, or --allow-anonymous)" if "opcua.users" in str(exc) else ""
        raise fail(f"{exc}{hint}") from None
    except (InspectionError, OSError, RuntimeError) as exc:
        raise fail(str(exc)) from None
    _serve_until_stopped(station, duration)


def _serve_until_stopped(station, duration: float | None) -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    recipes = ", ".join(f"{n} {name}" for n, name in sorted(station.core.recipes.items()))
    for line in station.lines:
        typer.echo(line)
    typer.echo(f"station ready: recipes {recipes}; buffer depth {station.core.depth}; Ctrl-C stops")
    end = time.monotonic() + duration if duration else None
    while not stop.wait(0.5):
        if end and time.monotonic() > end:
            break
    station.stop()
    c = station.core.snapshot().counters
    typer.echo(f"{c.triggers} triggers: {c.ok} OK, {c.ng} NG, {c.errors} errors ({c.refused} refused); processing "
               f"min/mean/max {c.processing_ms_min:.1f}/{c.processing_ms_mean:.1f}/{c.processing_ms_max:.1f} ms")


def plc_sim(
    protocol: Annotated[str, typer.Option(help="modbus or opcua.")] = "modbus",
    host: Annotated[str, typer.Option(help="The station's address.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Default 5020 (Modbus), 4840 (OPC UA).")] = None,
    rate: Annotated[float, typer.Option(help="Parts per second.")] = 10.0,
    count: Annotated[int, typer.Option(help="Parts to trigger.")] = 200,
    buffer_check: Annotated[bool, typer.Option(help="First fill the buffer and check Busy and the errors.")] = True,
    user: Annotated[str | None, typer.Option(help=f"OPC UA user; the password is read from ${PASSWORD_ENV}.")] = None,
    cert_dir: Annotated[Path, typer.Option(help="OPC UA: the simulated PLC's own certificate (made if missing).")]
    = Path("runs/plc-sim-pki"),
    timeout: Annotated[float, typer.Option(help="Seconds to wait for any answer.")] = 5.0,
    report: Annotated[Path | None, typer.Option(help="Write the report (JSON, with every latency) here.")] = None,
) -> None:
    """A simulated PLC: triggers a station at a set part rate over Modbus TCP or OPC UA, checks every answer
    (sequence, result, acknowledge, buffer behaviour) and prints trigger -> Result Ready latency p50/p99.
    Exit 0 when every answer was right, 1 when some were not (each is printed), 2 when it could not run."""
    from inspection.plant.plcsim import PlcSimulator, SimTimeout

    if protocol not in ("modbus", "opcua"):
        raise fail(f"--protocol {protocol!r}: choose modbus or opcua")
    if rate <= 0 or count < 0:
        raise fail(f"--rate {rate:g} / --count {count}: give a positive rate and a count of 0 or more")
    plc = _connect(protocol, host, port, user, cert_dir, timeout)
    sim = PlcSimulator(plc, timeout=timeout)
    try:
        result = sim.run(count, rate, buffer_check=buffer_check)
    except (SimTimeout, ConnectionError) as exc:
        sim.report.problems.append(str(exc))
        result = sim.report
    finally:
        plc.close()
    for problem in result.problems:
        typer.secho(f"  problem: {problem}", fg=typer.colors.RED, err=True)
    typer.echo(result.summary())
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps({**result.__dict__, "p50_ms": result.percentile(50),
                                      "p99_ms": result.percentile(99), "rate": rate}, indent=1))
    if result.problems:
        raise typer.Exit(1)


def _connect(protocol: str, host: str, port: int | None, user: str | None, cert_dir: Path, timeout: float):
    try:
        if protocol == "modbus":
            from inspection.plant.modbus_client import ModbusPlc

            return ModbusPlc(host, port or 5020, timeout=timeout)
        from asyncua import ua

        from inspection.plant.opcua_client import OpcUaPlc

        password = os.environ.get(PASSWORD_ENV) if user else None
        if user and not password:
            raise fail(f"--user {user}: set the password in ${PASSWORD_ENV}")
        try:
            return OpcUaPlc(f"opc.tcp://{host}:{port or 4840}/inspection/", user, password, cert_dir, timeout=timeout)
        except ua.UaStatusCodeError as exc:
            raise fail(f"the station refused the OPC UA session: {ua.StatusCode(exc.code).name}") from None
    except (ConnectionError, OSError, TimeoutError) as exc:
        raise fail(f"cannot reach the station over {protocol} at {host}:{port}: {exc}") from None


def register(app: typer.Typer) -> None:
    app.add_typer(plant_app, name="plant")
    app.command("plc-sim")(plc_sim)
