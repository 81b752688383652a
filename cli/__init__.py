"""``market``: one command line for the simulator and its front ends.

``market run``, ``sweep``, ``experiment``, ``calibrate``, ``power``, ``report``, ``watch``, ``export``,
``ledger`` and ``slack`` are the module command lines (``python -m market.run``,
``python -m analysis.report``, ``python -m slackbot`` ...) under one name, with
``-h``/``--help`` and ``--version`` on each. Every subcommand is the module's
own typer app (or function), mounted, not copied: the two forms cannot drift.

This package is the top floor: it may import any other, but imports none of them
when loaded. A subcommand's module is imported only when that
subcommand runs, so ``market --help`` imports none of them, ``market run``
imports no front end, and a missing optional part (``market slack`` without
the ``slack`` extra) fails with a message naming what to install.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

HELP_OPTIONS = ["-h", "--help"]


@dataclass(frozen=True)
class Subcommand:
    """Where a subcommand's command line lives (``module``'s typer app named ``attr``) and its line in ``market -h``."""

    module: str
    attr: str
    summary: str

    def load(self, name: str) -> Any:
        """The subcommand's click command, built from its module's typer app (imported now)."""
        try:
            module = importlib.import_module(self.module)
        except ModuleNotFoundError as exc:
            if exc.name is not None and (self.module + ".").startswith(exc.name + "."):
                _fail(f"market {name}: this installation has no module {self.module} (an editable install made "
                      "before it existed needs: pip install -e . again)")
            _fail(f"market {name} needs the package {exc.name!r}, which is not installed (the README lists the "
                  "extras: pip install -e '.[llm,slack,sweep]')")
        app = getattr(module, self.attr)  # a declared name per module (the registry below), not probing
        command = typer.main.get_command(app)
        _add_version(command)
        return command


SUMMARIES: dict[str, str] = {
    "run": "Run a scenario into a run folder (python -m market.run).",
    "sweep": "Run replications of a scenario over seeds (python -m market.sweep).",
    "experiment": "Run a scenario across conditions x replications (python -m market.experiment).",
    "calibrate": "Fit offline profile settings to published figures (python -m market.calibrate).",
    "power": "Estimate a study's power to detect each tier effect (python -m market.power).",
    "report": "Write the HTML report of runs or sweeps (python -m analysis.report).",
    "watch": "Replay a run in the browser (python -m watch).",
    "export": "Write a run's tables as Parquet or JSON lines (python -m market.export).",
    "ledger": "Print a run's events as JSON lines (python -m market.ledger).",
    "slack": "Post a run into Slack, or host a live week there (python -m slackbot).",
}
"""Each subcommand's line in ``market -h``, in its order. Where it lives is its ``market.commands`` entry point."""

UNREACHED = {"report": "analysis.report:app", "ledger": "cli:ledger_app", "slack": "slackbot.__main__:app"}
"""Subcommands no ``market.commands`` entry point declares: the core never reaches them (their module forms are
``python -m analysis.report``, ``market.ledger`` and ``slackbot`` themselves), so only this command names them."""


def _subcommands() -> dict[str, Subcommand]:
    """:data:`SUMMARIES` with where each lives: its ``market.commands`` entry point, else :data:`UNREACHED`
    (nothing is imported: entry points are read from the installation's metadata)."""
    declared = {ep.name: ep.value for ep in entry_points(group="market.commands")} | UNREACHED
    out = {}
    for name, summary in SUMMARIES.items():
        module, _, attr = declared.get(name, "").partition(":")
        if not module:
            continue  # an installation made before the command existed (the shim says: pip install -e . again)
        out[name] = Subcommand(module, attr, summary)
    return out


SUBCOMMANDS: dict[str, Subcommand] = _subcommands()
"""Every subcommand by name, in ``market -h``'s order."""


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def market_version() -> str:
    """The installed package's version."""
    try:
        return version("market")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown (not installed)"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"market {market_version()}")
        raise typer.Exit()


VersionFlag = Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                           help="Show the version and exit.")]


@cache
def _version_param() -> Any:
    """A ``--version`` option (typer builds it), added to every subcommand."""
    probe = typer.Typer()

    @probe.command()
    def show(version: VersionFlag = False) -> None:
        """Show the version."""

    (param,) = [p for p in typer.main.get_command(probe).params if "--version" in p.opts]
    param.expose_value = False
    return param


def _add_version(command: Any) -> None:
    """``--version`` on ``command`` and, for a group, on each of its subcommands."""
    if not any("--version" in p.opts for p in command.params):
        command.params.append(_version_param())
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            _add_version(sub)


class Lazy(TyperCommand):
    """A subcommand listed by name and summary; its module is imported only when it runs (or shows its help)."""

    def __init__(self, name: str, sub: Subcommand) -> None:
        super().__init__(name=name, help=sub.summary, short_help=sub.summary, add_help_option=False)
        self.sub = sub

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        """The real command's context: from here on the module's own command parses and runs."""
        return self.sub.load(self.name or "").make_context(info_name, args, parent=parent, **extra)


class Commands(TyperGroup):
    """``market``'s subcommands, in the order of ``SUBCOMMANDS``."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, sub in SUBCOMMANDS.items():
            self.add_command(Lazy(name, sub), name)


app = typer.Typer(cls=Commands, add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  context_settings={"help_option_names": HELP_OPTIONS})


@app.callback()
def market(version: VersionFlag = False) -> None:
    """Simulate agent commerce: run scenarios, sweeps and experiments; report, watch, export; host in Slack.

    Each subcommand is also a module command line (python -m market.run, ...); market SUB -h shows its options.
    """


ledger_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@ledger_app.command()
def ledger(
    run_dir: Annotated[Path, typer.Argument(help="a run folder (or its ledger.sqlite)")],
    market: Annotated[str | None, typer.Argument(help="only this market's events")] = None,
) -> None:
    """Print RUN_DIR's events as JSON lines, in order: the same scenario and seed give the same bytes."""
    from market.ledger import main as ledger_main

    raise typer.Exit(ledger_main([str(run_dir), *([market] if market else [])]))


def main() -> None:
    """The ``market`` console command."""
    app(prog_name="market")


if __name__ == "__main__":
    sys.exit(main())
