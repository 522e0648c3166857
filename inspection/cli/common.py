"""What every command shares: exit codes, the fatal-error exit, file-error reporting, option parsers and the
one default model."""

from __future__ import annotations

from pathlib import Path

import typer

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


def default_model() -> Path:
    """The one default model of every command: the shipped demo flange model (see README)."""
    from inspection.model.shipped import default_model_path

    return default_model_path()
