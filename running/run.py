"""``python -m market.run SCENARIO.yaml``: run a scenario and report on it.

Exit codes (the message says why; never a traceback):

- 0: done (the run is complete and its after-run steps, e.g. the report, are written);
- 1: an internal error, i.e. a bug (one line on stderr; the traceback in RUN_DIR/error.txt);
- 2: bad input (a scenario, option, backend or run folder that cannot be used);
- 3: stopped by the model API or a limit (authentication, permission, quota, unknown
  model, the ``failures:`` circuit breaker, ``--max-cost``): the run stopped cleanly
  after its current batch, summary.json says ``status: stopped`` and why;
- 4: the disk is full (nothing written is corrupt; free some space);
- 130: interrupted (Ctrl-C stops the run after the current batch; a second Ctrl-C at once).

Every stop but bad input prints the exact ``python -m market.run --resume RUN_DIR``
command that continues the run; the resumed run is byte-identical to one never stopped.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterable
from enum import IntEnum
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from market.backends import BackendError, FatalPolicyError, disk_full, known_backends
from market.clock import DAY
from market.engine import MarketModel
from market.ledger import LedgerError
from market.money import format_money
from market.scenario import ScenarioError, quoted
from market.targets import Published, read_published
from running import provenance, runner
from running.hooks import MaxCost, OnBatch, compose, cost_cap, model_cost
from running.runfolder import RunFolder, RunFolderError
from running.summary import RunSummary

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})
err = Console(stderr=True)
BAD_INPUT = (ScenarioError, BackendError, LedgerError, RunFolderError, runner.ResumeError, ValueError)
"""What a command that runs weeks (``market run``, ``sweep``, ``experiment``, ...) reports as bad input (exit 2)."""


class ExitCode(IntEnum):
    """The command's exit codes (see the module docstring and the README)."""

    DONE = 0
    INTERNAL_ERROR = 1
    BAD_INPUT = 2
    STOPPED = 3
    DISK_FULL = 4
    INTERRUPTED = 130


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
    port: Annotated[int, typer.Option(help="with --watch: the port (0: a free one)", min=0, max=65535)] = 0,
    paused: Annotated[bool, typer.Option("--paused", help="with --watch: hold the run after its first batch "
                                         "(Step or Resume on the page)")] = False,
    speed: Annotated[str, typer.Option(help="with --watch: simulated time per second: max, 1 day/s, 1 h/s, 10 min/s, "
                                       "1 min/s")] = "max",
    backend: Annotated[list[str] | None, typer.Option(
        help="TIER=BACKEND[:MODEL], e.g. frontier=anthropic:claude-opus-4-5 (repeatable)")] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, max=1024,
                                                    help="model calls in flight at once (default 16)")] = None,
    max_cost: MaxCost = None,
    cassette: Annotated[Path | None, typer.Option(help="recorded model calls for the replay backend")] = None,
    estimate: Annotated[bool, typer.Option("--estimate", help=(
        "print the expected model calls, tokens and dollars per tier; no network, no key, no run folder"))] = False,
    no_report: Annotated[bool, typer.Option("--no-report", help=(
        "skip the after-run steps (fairness ratings, report.html); `--resume RUN_DIR` does them later"))] = False,
) -> None:
    """Run SCENARIO offline (or on the backends it names) into a run folder."""
    console = Console(quiet=quiet)
    folder: RunFolder | None = None
    live: Any = None
    try:
        tiers = backend_overrides(backend or [])
        options: dict[str, Any] = {"concurrency": concurrency} if concurrency else {}
        if cassette is not None:
            if not cassette.is_file():
                raise ValueError(f"--cassette: no such file {cassette}")
            options["cassette"] = str(cassette)
        if resume is not None:
            folder = RunFolder.open(resume)
            if not folder.ledger.is_file():
                err.print(f"{folder.path}: the run stopped before its ledger was created; starting it from the "
                          "beginning", highlight=False, soft_wrap=True)
            live = _serve(watch, host, port, speed, paused)
            rules = compose(_watch_hook(live, folder), cost_cap(max_cost))  # after the progress bar's

            def go(progress: OnBatch | None) -> runner.RunResult:
                return runner.resume(folder, on_batch=compose(progress, rules), tiers=tiers or None,
                                     options=options, after_run=not no_report)

            shown = folder.read_scenario() if folder.scenario.is_file() else {}
            result = _with_progress(console, quiet, go, [str(m.get("name")) for m in shown.get("markets", [])
                                                         if isinstance(m, dict)], shown.get("days"))
        elif scenario is None:
            raise ValueError("give a SCENARIO file, or --resume RUN_DIR")
        elif estimate:
            only = [m.strip() for m in markets.split(",") if m.strip()] if markets else None
            _estimate(scenario, Console(), seed=seed, days=days, markets=only, tiers=tiers or None)
            return
        else:
            only = [m.strip() for m in markets.split(",") if m.strip()] if markets else None
            prepared = runner.plan(scenario, seed=seed, days=days, markets=only, run_dir=out,
                                   tiers=tiers or None, options=options)
            print_warnings(prepared.warnings)  # before the run, even with --quiet: the week may close nothing
            live = _serve(watch, host, port, speed, paused)
            folder = RunFolder.create(runs, prepared.scenario.name, exact=out)
            rules = compose(_watch_hook(live, folder), cost_cap(max_cost))  # after the progress bar's

            def go(progress: OnBatch | None) -> runner.RunResult:
                return runner.start(prepared, folder, on_batch=compose(progress, rules), after_run=not no_report)

            result = _with_progress(console, quiet, go, [m.name for m in prepared.scenario.markets],
                                    prepared.scenario.days)
    except (*BAD_INPUT, OSError, sqlite3.OperationalError) as exc:
        if disk_full(exc):
            _disk_full(exc, folder, live)
        if live is not None:
            live.close()
        hint = "" if isinstance(exc, BAD_INPUT) else _resume_hint(folder)  # bad input: nothing to resume
        err.print(f"[red]error:[/red] {exc}{hint}", highlight=False, soft_wrap=True, markup=True)
        raise typer.Exit(ExitCode.BAD_INPUT) from None
    except KeyboardInterrupt:
        if live is not None:
            live.close()
        err.print(f"interrupted{_resume_hint(folder)}", highlight=False, soft_wrap=True)
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    except FatalPolicyError as exc:  # refused before the first batch (e.g. a key at set-up)
        if live is not None:
            live.close()
        err.print(f"stopped: {exc.reason}{_resume_hint(folder)}", highlight=False, soft_wrap=True)
        raise typer.Exit(ExitCode.STOPPED) from None
    except typer.Exit:
        raise
    except Exception as exc:  # a bug: said in one line, the traceback kept in a file
        if live is not None:
            live.close()
        details = _keep_traceback(folder)
        err.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc} (a bug; the traceback is in {details})"
                  f"{_resume_hint(folder)}", highlight=False, soft_wrap=True, markup=True)
        raise typer.Exit(ExitCode.INTERNAL_ERROR) from None
    if not quiet:
        for line in provenance.run_lines(result.folder.path):  # what produced the numbers, before the numbers
            console.print(line, markup=False, highlight=False)
        if result.summary is not None:
            console.print(summary_table(result.summary))
            week = week_line(result.summary)
            if week:
                console.print(week, highlight=False, soft_wrap=True)
            if result.summary.llm is not None:
                console.print(cost_table(result.summary))
            failures = failure_line(result.summary)
            if failures:
                console.print(failures, highlight=False, soft_wrap=True)
        published = read_published(result.folder.path)  # written with the report when the scenario names targets
        if published is not None:
            console.print(published_table(published))
            console.print(published.sentence(), highlight=False, soft_wrap=True)
    print(f"run folder: {result.folder.path}", flush=True)
    for line in provenance.closing_lines(result.folder.path):  # the report's path and its headline effects
        print(line, flush=True)
    if result.cause == "interrupted":
        if live is not None:
            live.close()
        what = "the run is complete, its after-run steps are not done" if result.complete else "interrupted"
        err.print(f"{what}{_resume_hint(result.folder)}", highlight=False, soft_wrap=True)
        raise typer.Exit(ExitCode.INTERRUPTED)
    if result.stopped:
        err.print(f"stopped: {result.stopped}{_resume_hint(result.folder)}", highlight=False, soft_wrap=True)
    if live is not None:
        live.watch.finish("complete" if result.complete else "stopped")
        live.linger()  # says the run is over once Ctrl-C is its to handle
        live.close()
    if result.stopped:
        raise typer.Exit(ExitCode.STOPPED)


def print_warnings(warnings: Iterable[str]) -> None:
    """Each warning about a plan (e.g. budgets that cannot buy anything) on stderr, one ``warning:`` line each."""
    for warning in warnings:
        err.print(Text.assemble(("warning:", "yellow"), f" {warning}"), highlight=False, soft_wrap=True)


def _keep_traceback(folder: RunFolder | None) -> Path:
    """The current exception's traceback written to ``RUN_DIR/error.txt`` (or a temporary file)."""
    text = traceback.format_exc()
    try:
        if folder is not None and folder.path.is_dir():
            path = folder.path / "error.txt"
            path.write_text(text, encoding="utf-8")
            return path
    except OSError:
        pass
    with tempfile.NamedTemporaryFile("w", prefix="market-error-", suffix=".txt", delete=False) as handle:
        handle.write(text)
        return Path(handle.name)


def _resume_hint(folder: RunFolder | None) -> str:
    """The exact command that continues the run in ``folder`` (empty when none was created)."""
    return f"; continue with: python -m market.run --resume {folder.path}" if folder is not None else ""


def _disk_full(exc: BaseException, folder: RunFolder | None, live: Any) -> NoReturn:
    """Say the disk is full (nothing written is corrupt) and exit with its own code."""
    if live is not None:
        live.close()
    err.print(f"[red]error:[/red] the disk is full ({exc}); what was recorded is intact: free some space"
              f"{_resume_hint(folder)}", highlight=False, soft_wrap=True, markup=True)
    raise typer.Exit(ExitCode.DISK_FULL) from None


WEEK_LINE_DAYS = 14
"""Runs up to this many days get a deals-per-day line under the table (longer ones: see the report)."""


def week_line(summary: RunSummary) -> str:
    """Deals per simulated day of each market, e.g. ``deals per day (day 1 first): A 15 122 59 44 6; B ...``
    ('' for a summary without them or a run longer than :data:`WEEK_LINE_DAYS` days)."""
    markets = summary.markets
    if not markets or len(markets[0].by_day.deals) > WEEK_LINE_DAYS:
        return ""
    return "deals per day (day 1 first): " + "; ".join(
        f"{m.market} {' '.join(str(n) for n in m.by_day.deals)}" for m in markets)


def failure_line(summary: RunSummary) -> str:
    """Failed turns per tier (``agent_failed`` events), or '' when no turn failed."""
    parts = [f"{tier} {t.failed} of {t.turns} ({', '.join(f'{k} {v}' for k, v in t.kinds.items())})"
             for tier, t in summary.failures.tiers.items() if t.failed]
    return f"failed turns: {'; '.join(parts)}" if parts else ""


def _estimate(scenario: Path, console: Console, **overrides: Any) -> None:
    """``--estimate``: the ``market.estimators`` plugins (the model backends' lives in agents.llm.estimate)."""
    found = list(entry_points(group="market.estimators"))
    if not found:
        raise ValueError("--estimate needs the model backends: pip install -e '.[llm]'")
    for ep in found:
        ep.load()(scenario, console, **overrides)

RUN_HOOKS = "market.run_hooks"
"""Entry points a run reaches above its floor (``watch``: the live page's server for --watch)."""


def _serve(watch: bool, host: str, port: int, speed: str, paused: bool) -> Any:
    """With --watch: the page's server, started before anything is written (a busy port is bad input).

    The live page is an edge above this floor (``watch``), reached through its ``market.run_hooks`` entry point
    ``watch`` only when --watch asks for it.
    """
    if not watch:
        if paused or speed != "max":
            raise ValueError("--paused and --speed go with --watch")
        return None
    found = list(entry_points(group=RUN_HOOKS, name="watch"))
    if not found:
        raise ValueError("--watch needs the live page (the watch package), which this installation does not declare")
    live = found[0].load()(host, port, speed=speed, paused=paused)
    print(f"watch the run at {live.url}", flush=True)
    return live


def _watch_hook(live: Any, folder: RunFolder) -> OnBatch | None:
    """With --watch: the live page's run hook (showing the run in ``folder``); None without."""
    return None if live is None else live.watch.chain(None, folder.path.name)


def _with_progress(console: Console, quiet: bool, go: Callable[[OnBatch | None], runner.RunResult],
                   markets: list[str] | None = None, days: Any = None) -> runner.RunResult:
    """``go(hook)`` under a progress bar per market (the bar's run hook, None with ``quiet``); with ``markets``
    and ``days`` the bars show from the start (before the first batch, whose model calls may take a while),
    else from the first batch on."""
    if quiet:
        return go(None)
    progress = Progress(
        TextColumn("[bold]{task.fields[market]}"), BarColumn(),
        TextColumn("day {task.completed:.1f}/{task.total:.0f}"), TextColumn("{task.fields[deals]} deals"),
        TextColumn("{task.fields[spend]}"), TimeElapsedColumn(), console=console, transient=False,
    )
    tasks: dict[str, Any] = {}
    if isinstance(days, int) and days > 0:
        for name in markets or []:
            tasks[name] = progress.add_task("", total=days, market=name, deals=0, spend="")

    def on_batch(model: MarketModel, at: int) -> None:
        spent = model_cost(model)
        for market in model.markets:
            if market.name not in tasks:
                tasks[market.name] = progress.add_task(
                    "", total=model.scenario.days, market=market.name, deals=0, spend="")
            progress.update(tasks[market.name], completed=at / DAY, deals=len(market.state.deals),
                            spend=f"${spent:,.2f} spent" if spent is not None else "")

    with progress:
        result = go(on_batch)
        if result.complete:
            for task in tasks.values():
                progress.update(task, completed=progress.tasks[task].total)
    return result


def summary_table(summary: RunSummary) -> Table:
    """The run's figures per market (``all``) and tier: people, listings, deals, volume, price over value."""
    table = Table(
        title=f"{summary.scenario} (seed {summary.seed})", box=box.SIMPLE_HEAD,
        caption="tier rows: deals as seller+buyer; p/v: mean price over the item's reference value",
        collapse_padding=True, pad_edge=False,
    )
    for column in ("market", "tier", "people", "listings", "deals", "volume", "deals/\nperson",
                   "p/v\nsold", "p/v\nbought"):
        table.add_column(column, justify="left" if column in ("market", "tier") else "right", no_wrap=True)
    for m in summary.markets:
        table.add_row(
            m.market, "all", str(m.participants), str(m.listings), str(m.deals),
            format_money(m.volume_cents), f"{m.deals_per_participant:.2f}", _ratio(m.mean_price_ratio), "",
        )
        for tier, t in m.tiers.items():
            table.add_row(
                "", tier, str(t.participants), "", f"{t.deals_as_seller}+{t.deals_as_buyer}",
                format_money(t.volume_sold_cents), f"{t.deals_per_participant:.2f}",
                _ratio(t.price_ratio_as_seller), _ratio(t.price_ratio_as_buyer),
            )
    return table


def published_table(published: Published) -> Table:
    """Each published figure beside the simulated one, its 95% interval, and whether it is inside."""
    table = Table(title=f"published ({published.targets}) against simulated", box=box.SIMPLE_HEAD,
                  caption="inside: within the targets' tolerance (or |z| < 1.96 where a published SE is given)",
                  collapse_padding=True, pad_edge=False)
    for column in ("figure", "published", "simulated", "95% interval", "inside?"):
        table.add_column(column, justify="right" if column in ("published", "simulated") else "left")
    for r in published.rows:
        verdict = r.verdict()
        table.add_row(r.moment, r.published_text(), r.show(r.simulated) if r.inside is not None else "-",
                      r.interval_text() or "-", Text(verdict, style="bold red" if r.inside is False else ""))
    return table


def backend_overrides(values: list[str]) -> dict[str, dict[str, Any]]:
    """``--backend TIER=BACKEND[:MODEL]`` values as tier settings overrides (BACKEND may be a
    path ``package.module:factory``, or ``module:factory`` when ``module`` is no known backend's
    name; then ``:MODEL`` follows it)."""
    tiers: dict[str, dict[str, Any]] = {}
    for value in values:
        tier, sep, rest = value.partition("=")
        name, _, model = rest.partition(":")
        if model and ("." in name or name.strip() not in known_backends()):  # module:factory[:MODEL]
            factory, _, model = model.partition(":")
            name = f"{name}:{factory}"
        if not sep or not tier or not name:
            raise ValueError(f"--backend: expected TIER=BACKEND[:MODEL], got {quoted(value)}")
        if len(value) > 500:
            raise ValueError(f"--backend: at most 500 characters, got {quoted(value)}")
        tiers[tier.strip()] = {"backend": name.strip(), **({"model": model.strip()} if model else {})}
    return tiers


def cost_table(summary: RunSummary) -> Table:
    """Model tokens and cost per tier, and cost per deal (a deal counts for each tier of its two sides)."""
    llm = summary.llm or {}
    table = Table(title=f"model calls (prices checked {llm.get('pricing_checked', '?')})")
    for column in ("tier", "model", "calls", "input", "cache read", "cache write", "output", "cost", "deals",
                   "cost/deal", "faults"):
        table.add_column(column, justify="left" if column in ("tier", "model", "faults") else "right")
    deals: dict[str, int] = {}
    for m in summary.markets:
        for tier, t in m.tiers.items():
            deals[tier] = deals.get(tier, 0) + t.deals_as_seller + t.deals_as_buyer
    for tier, t in llm.get("tiers", {}).items():
        n = deals.get(tier, 0)
        faults = ", ".join(f"{k} {v}" for k, v in t["faults"].items()) or "-"
        table.add_row(
            tier, llm["models"].get(tier, {}).get("model", "?"), str(t["calls"]), f"{t['input_tokens']:,}",
            f"{t['cache_read_tokens']:,}", f"{t['cache_write_tokens']:,}", f"{t['output_tokens']:,}",
            f"${t['cost_usd']:,.2f}", str(n), f"${t['cost_usd'] / n:,.3f}" if n else "-", faults,
        )
    return table


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def cli() -> None:
    """Run ``app`` as ``python -m market.run``; exits the process with the command's exit code."""
    app(prog_name="python -m market.run")


if __name__ == "__main__":
    sys.exit(cli())
