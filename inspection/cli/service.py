"""Service commands: serve, tokens, stations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from inspection.cli.common import fail

token_app = typer.Typer(help="API tokens of the results service (shown once at creation).", no_args_is_help=True)
station_app = typer.Typer(help="Stations known to the results service.", no_args_is_help=True)

DatabaseOpt = Annotated[str, typer.Option("--database-url", envvar="INSPECTION_DATABASE_URL",
                                          help="SQLAlchemy URL: sqlite:///file.db or postgresql://user@host/db.")]
DEFAULT_DB = "sqlite:///inspection-results.db"


def service_engine(url: str):
    """The service database, migrated to the newest schema, or a clear error."""
    from edge_service.database import DatabaseUnavailable, make_engine, prepare

    try:
        return prepare(make_engine(url))
    except DatabaseUnavailable as exc:
        raise fail(str(exc)) from None


GRACEFUL_STOP_S = 3  # seconds: how long requests in flight may take to finish at stop


def _insecure_local_host(host: str) -> str:
    """--insecure-local: only a loopback address, and a loud banner."""
    import ipaddress

    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise fail(f"--insecure-local binds only to 127.0.0.1, not {host}")
    banner = "!" * 78
    typer.secho(f"{banner}\n  INSECURE LOCAL MODE: no API tokens are checked. Anyone on this machine can read,\n"
                f"  write and administer results. Bound to 127.0.0.1 only. Never use this on a line.\n{banner}",
                fg=typer.colors.RED, err=True, bold=True)
    return "127.0.0.1"


# the operator page's settings
ShiftStartsOpt = Annotated[str, typer.Option(envvar="INSPECTION_SHIFT_STARTS",
                                             help="Operator page: shift counters reset at these local times.")]
ShiftZoneOpt = Annotated[str, typer.Option(envvar="INSPECTION_SHIFT_TIMEZONE",
                                           help="Time zone of the shift starts (IANA name).")]
FailLatchOpt = Annotated[float, typer.Option(envvar="INSPECTION_FAIL_LATCH_SECONDS",
                                             help="Operator page: a FAIL stays on screen this long; 0 = until "
                                                  "acknowledged.")]
AlarmFailsOpt = Annotated[int, typer.Option(envvar="INSPECTION_ALARM_FAILS",
                                            help="Operator page: alarm after this many FAILs in a row.")]


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
    max_future_skew: Annotated[float, typer.Option(envvar="INSPECTION_MAX_FUTURE_SKEW_S",
                                                   help="Refuse results timed more than this many seconds "
                                                        "ahead of this clock.")] = 3600.0,
    model_dir: Annotated[Path | None, typer.Option(envvar="INSPECTION_MODEL_DIR",
                                                   help="Where uploaded models are kept (default: "
                                                        "inspection-models beside the image folder).")] = None,
    model_max_mb: Annotated[float, typer.Option(envvar="INSPECTION_MODEL_MAX_MB",
                                                help="Refuse model uploads over this many MB.")] = 64.0,
    training_dir: Annotated[Path | None, typer.Option(envvar="INSPECTION_TRAINING_DIR", help="Training jobs' "
                                                      "folders (default: inspection-training beside the image "
                                                      "folder).")] = None,
    training_max_mb: Annotated[float, typer.Option(envvar="INSPECTION_TRAINING_MAX_MB",
                                                   help="Refuse training uploads over this many MB.")] = 512.0,
    shift_starts: ShiftStartsOpt = "06:00,14:00,22:00",
    shift_timezone: ShiftZoneOpt = "UTC",
    fail_latch_seconds: FailLatchOpt = 0.0,
    alarm_fails: AlarmFailsOpt = 3,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")] = False,
) -> None:
    """Run the results service: REST API, live stream, operator page."""
    from edge_service import serving
    from edge_service.app import ServiceSettings, create_app
    from edge_service.settings import TrainingSettings

    try:
        settings = ServiceSettings(database_url=database_url, image_dir=image_dir, insecure_local=insecure_local,
                                   stale_seconds=stale_seconds, image_max_age_days=image_max_age_days or None,
                                   image_max_bytes=int(image_max_gb * 1024**3) or None,
                                   max_future_skew_s=max_future_skew, shift_starts=shift_starts,
                                   shift_timezone=shift_timezone, fail_latch_seconds=fail_latch_seconds,
                                   alarm_consecutive_fails=alarm_fails, model_dir=model_dir,
                                   model_max_bytes=int(model_max_mb * 1024 * 1024),
                                   training=TrainingSettings(jobs_dir=training_dir,
                                                             max_upload_bytes=int(training_max_mb * 1024 * 1024)))
    except ValueError as exc:
        raise fail(str(exc)) from None
    if insecure_local:
        host = _insecure_local_host(host)
    service_engine(database_url).dispose()
    typer.echo(f"results service on http://{host}:{port}/ (database {database_url.split('@')[-1]})")
    # open live streams (operator screens) never end by themselves: at stop they are told to end (event:
    # shutdown), then whatever still runs after GRACEFUL_STOP_S is cancelled (edge_service.serving)
    serving.run(create_app(settings), host=host, port=port, access_log=access_log, grace_s=GRACEFUL_STOP_S)


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
        new = auth.create_token(service_engine(database_url), name, role, station.strip("/") if station else None)
    except ValueError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"token id {new.id} ({new.role}, {new.name}); store this now, it is not shown again:")
    typer.echo(new.token)


@token_app.command("list")
def token_list(database_url: DatabaseOpt = DEFAULT_DB) -> None:
    """List tokens (never the secrets)."""
    from edge_service import auth

    for t in auth.list_tokens(service_engine(database_url)):
        state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
        typer.echo(f"{t.id}  {t.role:8s} {t.name:24s} {t.station_prefix or '-':30s} {state}")


@token_app.command("revoke")
def token_revoke(token_id: Annotated[str, typer.Argument(help="Token id from `token list`.")],
                 database_url: DatabaseOpt = DEFAULT_DB) -> None:
    """Revoke a token at once."""
    from edge_service import auth

    if not auth.revoke_token(service_engine(database_url), token_id):
        raise fail(f"no active token {token_id}")
    typer.echo(f"revoked {token_id}")


@station_app.command("add")
def station_add(path: Annotated[str, typer.Argument(help="site/area/line/cell/station")],
                database_url: DatabaseOpt = DEFAULT_DB) -> None:
    """Register a station so that its results are accepted."""
    from pydantic import ValidationError

    from edge_service import store
    from inspection.schema import StationContext

    try:
        station = StationContext.from_path(path)
    except (ValueError, ValidationError) as exc:
        raise fail(f"station {path!r}: {exc}") from None
    created = store.add_station(service_engine(database_url), station)
    typer.echo(f"{'added' if created else 'already known'}: {station.path}")


@station_app.command("list")
def station_list(database_url: DatabaseOpt = DEFAULT_DB) -> None:
    from edge_service import store

    for p in store.list_stations(service_engine(database_url)):
        typer.echo(p)


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.add_typer(token_app, name="token")
    app.add_typer(station_app, name="station")
