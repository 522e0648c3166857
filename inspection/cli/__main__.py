"""`python -m inspection.cli`: the same as the `inspection` command."""

from inspection.cli import app

app()
