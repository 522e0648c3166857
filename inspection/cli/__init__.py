"""The `inspection` command line: one module per command group (model, dataset, line, service, bench).

Exit codes: 0 all went well; 1 the command finished but some files failed (each one is reported);
2 the command could not run (bad option, missing folder, unusable model).
"""

from __future__ import annotations

from typing import Annotated

import typer

from inspection import __version__
from inspection.cli import bench, dataset, line, model, outbox, plant, quantize, service


def _version(value: bool) -> None:
    if value:
        typer.echo(f"inspection {__version__}")
        raise typer.Exit()


app = typer.Typer(help="Edge visual quality inspection: train, calibrate, inspect and evaluate defect models.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def _main(version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                       help="Print the version and exit.")] = None) -> None:
    """Edge visual quality inspection: train, calibrate, inspect and evaluate defect models."""


model.register(app)
quantize.register(app)
app.add_typer(dataset.app, name="dataset")
line.register(app)
app.add_typer(bench.app, name="bench")
service.register(app)
app.add_typer(outbox.app, name="outbox")
plant.register(app)
