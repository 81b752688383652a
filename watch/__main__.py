"""``python -m watch RUN_DIR``: replay a run in the browser."""

from watch.cli import cli

cli()
