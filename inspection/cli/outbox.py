"""Outbox commands: list the results a destination refused for good, and put them back in the queue."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from inspection.cli.common import fail

if TYPE_CHECKING:
    from inspection.line.outbox import Outbox

app = typer.Typer(help="The station's outbox: results set aside (rejected) by the service or broker.",
                  no_args_is_help=True)

OutboxOption = Annotated[Path, typer.Option("--outbox", envvar="INSPECTION_OUTBOX", help="Outbox file (SQLite).")]


def _open(path: Path) -> Outbox:
    from inspection.line.outbox import Outbox

    if not path.is_file():
        raise fail(f"--outbox {path}: no such outbox file")
    try:
        box = Outbox(path, prepare=False)
        box.stats()  # is it an outbox at all?
        return box
    except sqlite3.Error as exc:
        raise fail(f"--outbox {path}: not a usable outbox ({exc})") from None


def _check_dest(dest: str | None) -> None:
    from inspection.line.outbox import DESTINATIONS

    if dest is not None and dest not in DESTINATIONS:
        raise fail(f"--dest {dest!r}: choose one of {', '.join(DESTINATIONS)}")


@app.command("list")
def list_rejected(outbox: OutboxOption,
                  dest: Annotated[str | None, typer.Option(help="Only this destination: http or mqtt.")] = None
                  ) -> None:
    """The rejected results, oldest first: id, destination, the reason it gave, age."""
    _check_dest(dest)
    box = _open(outbox)
    try:
        entries = box.rejected(dest)
    finally:
        box.close()
    if not entries:
        typer.echo("no rejected results")
        return
    typer.echo(f"{'id':36}  {'dest':4}  {'age':>8}  error")
    for e in entries:
        typer.echo(f"{e.inspection_id:36}  {e.dest:4}  {_age(e.age_s()):>8}  {e.error or ''}")
    typer.echo(f"{len(entries)} rejected")


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


@app.command()
def retry(outbox: OutboxOption,
          ids: Annotated[list[str] | None, typer.Argument(help="Only these inspection ids (default: all).")] = None,
          dest: Annotated[str | None, typer.Option(help="Only this destination: http or mqtt.")] = None) -> None:
    """Put rejected results back in the queue; the running station delivers them again."""
    _check_dest(dest)
    box = _open(outbox)
    try:
        requeued = box.retry(dest, ids or ())
    except sqlite3.Error as exc:
        raise fail(f"--outbox {outbox}: cannot be written ({exc})") from None
    finally:
        box.close()
    for rid, d in requeued:
        typer.echo(f"requeued {rid} for {d}")
    unknown = sorted(set(ids or ()) - {rid for rid, _ in requeued})
    for rid in unknown:
        typer.secho(f"  not rejected (unknown id, or not set aside{' for ' + dest if dest else ''}): {rid}",
                    fg=typer.colors.YELLOW, err=True)
    typer.echo(f"{len(requeued)} requeued")
    if unknown:
        raise typer.Exit(1)
