"""``python -m watch RUN_DIR`` (or ``market watch``, ``python -m market.watch``): replay a run in the browser.

Exit codes: 0 after Ctrl-C, 2 on bad input (a folder that is not a run, a port in use).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from market.ledger import LedgerError
from running.runfolder import RunFolder, RunFolderError
from watch.controls import SPEEDS, ControlError, Controls, parse_speed
from watch.replay import LedgerWatch
from watch.server import WatchError, WatchServer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})


@app.command()
def main(
    run_dir: Annotated[Path, typer.Argument(help="a run folder (finished, or still running)")],
    host: Annotated[str, typer.Option(help="address to serve on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to serve on (0: a free one)", min=0, max=65535)] = 0,
    speed: Annotated[str, typer.Option(help=f"replay speed: {', '.join(SPEEDS)} (spaces optional)")] = "1 h/s",
    paused: Annotated[bool, typer.Option("--paused", help="start paused (use Step or Resume)")] = False,
) -> None:
    """Serve a local page that replays RUN_DIR's events on a clock you control."""
    try:
        controls = Controls(market="", speed=parse_speed(speed), paused=paused)
        folder = RunFolder.open(run_dir)
        watch = LedgerWatch(folder, controls)
        server = WatchServer(watch.hub, controls, host, port)
    except ControlError as exc:
        typer.echo(f"error: --speed: {exc}", err=True)
        raise typer.Exit(2) from None
    except (RunFolderError, LedgerError, WatchError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    server.start()
    watch.start()
    try:  # the line is printed inside: whoever reads it may press Ctrl-C at once
        typer.echo(f"watching {folder.path} at {server.url} (Ctrl-C to stop)")
        while True:  # short sleeps, not an untimed wait: polars' SIGINT handler (SA_RESTART) would hold Ctrl-C
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        watch.stop()
        server.stop()


def cli(prog_name: str = "python -m watch") -> None:
    """Run the command line (``prog_name`` is what its usage line calls it)."""
    app(prog_name=prog_name)


if __name__ == "__main__":
    sys.exit(cli())
