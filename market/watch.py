"""``python -m market.watch RUN_DIR``: the live page's command line, kept under its old name.

The live page is the ``watch`` package beside ``analysis`` and ``slackbot``
(it draws with ``analysis``, which the engine never imports), so this module
only hands the command line over to it when run; importing it imports nothing.
"""

from __future__ import annotations


def cli() -> None:
    """Run ``watch.cli`` as ``python -m market.watch`` (the same options: --host, --port, --speed, --paused)."""
    from watch.cli import cli as watch_cli

    watch_cli(prog_name="python -m market.watch")


if __name__ == "__main__":
    cli()
