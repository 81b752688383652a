"""``python -m market.run SCENARIO.yaml``: run a scenario and report on it.

Exit codes: 0 on success, 2 on bad input (with the reason, no traceback),
130 when interrupted (the ledger stays consistent; ``--resume`` continues).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from market import runner
from market.backends import BackendError
from market.engine import DAY, MarketModel
from market.ledger import LedgerError
from market.money import format_money
from market.runfolder import RunFolder, RunFolderError
from market.scenario import ScenarioError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
err = Console(stderr=True)
BAD_INPUT = (ScenarioError, BackendError, LedgerError, RunFolderError, runner.ResumeError, ValueError)


@app.command()
def main(
    scenario: Annotated[Path | None, typer.Argument(help="scenario YAML file")] = None,
    seed: Annotated[int | None, typer.Option(help="override the scenario's seed")] = None,
    out: Annotated[Path | None, typer.Option(help="the run folder to create (default runs/<scenario>-<time>)")] = None,
    markets: Annotated[str | None, typer.Option(help="only these markets, e.g. A,C")] = None,
    days: Annotated[int | None, typer.Option(help="override the number of simulated days")] = None,
    resume: Annotated[Path | None, typer.Option(help="continue the run in this folder")] = None,
    runs: Annotated[Path, typer.Option(help="where new run folders go")] = Path("runs"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar or table")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="serve a live page of the run in the browser")] = False,
    host: Annotated[str, typer.Option(help="with --watch: the address to serve on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="with --watch: the port (0: a free one)")] = 0,
) -> None:
    """Run SCENARIO offline (or on the backends it names) into a run folder."""
    console = Console(quiet=quiet)
    folder: RunFolder | None = None
    live: Any = None
    try:
        if resume is not None:
            folder = RunFolder.open(resume)
            live = _serve(watch, host, port)
            go = _watched(live, folder, lambda cb: runner.resume(folder, on_batch=cb))
            result = _with_progress(console, quiet, go)
        elif scenario is None:
            raise ValueError("give a SCENARIO file, or --resume RUN_DIR")
        else:
            only = [m.strip() for m in markets.split(",") if m.strip()] if markets else None
            prepared = runner.plan(scenario, seed=seed, days=days, markets=only, run_dir=out)
            live = _serve(watch, host, port)
            folder = RunFolder.create(runs, prepared.scenario.name, exact=out)
            go = _watched(live, folder, lambda cb: runner.start(prepared, folder, on_batch=cb))
            result = _with_progress(console, quiet, go)
    except BAD_INPUT as exc:
        if live is not None:
            live.close()
        err.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        where = f"; continue with: python -m market.run --resume {folder.path}" if folder else ""
        err.print(f"interrupted{where}", highlight=False)
        if live is not None:
            live.close()
        raise typer.Exit(130) from None
    if not quiet:
        console.print(summary_table(result.summary))
    if result.stopped:
        console.print(f"stopped early: {result.stopped}")
    print(f"run folder: {result.folder.path}", flush=True)
    if live is not None:
        live.watch.finish("complete" if result.complete else "stopped")
        print(f"the run is over; the page stays up at {live.url} until Ctrl-C", flush=True)
        live.linger()
        live.close()


def _serve(watch: bool, host: str, port: int) -> Any:
    """With --watch: the page's server, started before anything is written (a busy port is bad input)."""
    if not watch:
        return None
    from market.watch.live import LiveServer

    live = LiveServer(host, port)
    print(f"watch the run at {live.url}", flush=True)
    return live


def _watched(live: Any, folder: RunFolder, go: Any) -> Any:
    """``go`` with the watcher's on_batch chained after the progress bar's."""
    return go if live is None else lambda cb: go(live.watch.chain(cb, folder.path.name))


def _with_progress(console: Console, quiet: bool, go: Any) -> runner.RunResult:
    if quiet:
        return go(None)
    progress = Progress(
        TextColumn("[bold]{task.fields[market]}"), BarColumn(),
        TextColumn("day {task.completed:.1f}/{task.total:.0f}"), TextColumn("{task.fields[deals]} deals"),
        TimeElapsedColumn(), console=console, transient=False,
    )
    tasks: dict[str, Any] = {}

    def on_batch(model: MarketModel, at: int) -> None:
        for market in model.markets:
            if market.name not in tasks:
                tasks[market.name] = progress.add_task("", total=model.scenario.days, market=market.name, deals=0)
            progress.update(tasks[market.name], completed=at / DAY, deals=len(market.state.deals))

    with progress:
        result = go(on_batch)
        for market_name, task in tasks.items():
            progress.update(task, completed=progress.tasks[task].total if result.complete else None)
            del market_name
    return result


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"{summary.get('scenario', '')} (seed {summary.get('seed', '?')})")
    for column in ("market", "tier", "participants", "listings", "deals", "volume", "deals/participant",
                   "price/value (sold)", "price/value (bought)"):
        table.add_column(column, justify="left" if column in ("market", "tier") else "right")
    for m in summary.get("markets", []):
        table.add_row(
            m["market"], "all", str(m["participants"]), str(m["listings"]), str(m["deals"]),
            format_money(m["volume_cents"]), f"{m['deals_per_participant']:.2f}", _ratio(m["mean_price_ratio"]), "",
        )
        for tier, t in m["tiers"].items():
            table.add_row(
                "", tier, str(t["participants"]), "", f"{t['deals_as_seller']}+{t['deals_as_buyer']}",
                format_money(t["volume_sold_cents"]), f"{t['deals_per_participant']:.2f}",
                _ratio(t["price_ratio_as_seller"]), _ratio(t["price_ratio_as_buyer"]),
            )
    return table


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def cli() -> None:
    app(prog_name="python -m market.run")


if __name__ == "__main__":
    sys.exit(cli())
