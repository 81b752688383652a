"""``python -m market.export RUN_DIR|SWEEP_DIR|EXPERIMENT_DIR --format parquet|jsonl [--out DIR]``.

Writes every table of the runs under a folder (one file per table, every run
stacked with a ``run`` column) so a study's data can be published and loaded
without this package. The tables are the ones the analysis loads, projected
from the ledger by :mod:`analysis.tables`, plus the stored fairness ratings,
each run's settings (``runs``, ``tiers``) and, when a model ran, its calls
(``model_calls``, from ``cassette.jsonl``) and tokens and cost per trader
(``model_usage``, from ``summary.json``). Every column is described in
``docs/data.md``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
import typer

from analysis.tables import (
    DAILY_SCHEMA,
    DEAL_EXTRAS,
    SCHEMAS,
    daily_series,
    enrich_deals,
    hourly_schema,
    hourly_series,
    project,
)
from market.ledger import Ledger, LedgerError
from market.ratings import SCHEMA as RATINGS_SCHEMA
from market.ratings import RatingsError, read_ratings
from market.scenario import ScenarioError, validate_scenario
from running.runfolder import RunFolder, RunFolderError

TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
EXTRA_SCHEMAS: dict[str, dict[str, Any]] = {
    "runs": {"run": pl.Utf8, "scenario": pl.Utf8, "seed": pl.Int64, "days": pl.Int64, "markets": pl.Utf8,
             "participants": pl.Int64, "state": pl.Utf8},
    "tiers": {"run": pl.Utf8, "tier": pl.Utf8, "backend": pl.Utf8, "model": pl.Utf8, "profile": pl.Utf8},
    "ratings": RATINGS_SCHEMA,
    "model_calls": {"run": pl.Utf8, "market": pl.Utf8, "trader": pl.Utf8, "tier": pl.Utf8, "step": pl.Int64,
                    "purpose": pl.Utf8, "api": pl.Utf8, "model": pl.Utf8, "key": pl.Utf8, "error": pl.Utf8,
                    **{t: pl.Int64 for t in TOKENS}},
    "model_usage": {"run": pl.Utf8, "market": pl.Utf8, "participant_id": pl.Utf8, "calls": pl.Int64,
                    "replayed_calls": pl.Int64, **{t: pl.Int64 for t in TOKENS}, "cost_usd": pl.Float64},
}
"""Tables written beside the projected ones (see :data:`analysis.tables.SCHEMAS`)."""


def export_schemas(tiers: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Every exported table's columns (``hourly`` has a ``money_<tier>`` column per tier)."""
    return {**SCHEMAS, "deals": {**SCHEMAS["deals"], **DEAL_EXTRAS}, "hourly": hourly_schema(list(tiers)),
            "daily": DAILY_SCHEMA,
            **EXTRA_SCHEMAS}


class ExportError(ValueError):
    """A folder that cannot be exported; the message names which and why."""


def find_runs(path: Path) -> list[Path]:
    """Run folders at or under ``path`` (a run, a sweep, an experiment: any depth), in name order."""
    if not path.is_dir():
        raise ExportError(f"{path}: no such folder")
    if (path / "ledger.sqlite").is_file():
        return [path]
    found = sorted({p.parent for p in path.rglob("ledger.sqlite")})
    if not found:
        raise ExportError(f"{path}: not a run folder (no ledger.sqlite) and holds no run folders")
    return found


def run_tables(run_dir: Path, run: str) -> dict[str, pl.DataFrame]:
    """Every table of one run folder."""
    try:
        folder = RunFolder.open(run_dir)
        scenario = validate_scenario(folder.read_scenario(), str(folder.scenario))
        with Ledger(folder.ledger) as ledger:
            state = ledger.status("state") or "unknown"
            records = [(r.market, r.event) for r in ledger.records()]
            frames = project(records, run)
        ratings = read_ratings(folder.path, run)
    except (RunFolderError, ScenarioError, RatingsError) as exc:
        raise ExportError(str(exc)) from None
    except (LedgerError, sqlite3.DatabaseError) as exc:
        raise ExportError(f"{run_dir}: the ledger cannot be read ({exc})") from None
    tiers = list(scenario.tiers)
    frames["deals"] = enrich_deals(frames)
    frames["hourly"] = hourly_series(records, tiers, scenario.duration, run)
    frames["daily"] = daily_series(frames, scenario.days)
    frames["runs"] = pl.DataFrame([{
        "run": run, "scenario": scenario.name, "seed": scenario.seed, "days": scenario.days,
        "markets": ",".join(m.name for m in scenario.markets),
        "participants": frames["participants"]["participant_id"].n_unique(), "state": state,
    }], schema=EXTRA_SCHEMAS["runs"])
    frames["tiers"] = pl.DataFrame([
        {"run": run, "tier": name, "backend": t.backend, "model": t.model,
         "profile": (t.profile or name) if t.backend == "offline" else t.profile}
        for name, t in scenario.tiers.items()], schema=EXTRA_SCHEMAS["tiers"])
    frames["ratings"] = ratings
    frames["model_calls"] = model_calls(folder.cassette, run)
    try:
        summary = folder.read_summary()
        frames["model_usage"] = model_usage(summary.llm if summary is not None else None, run)
    except RunFolderError as exc:
        raise ExportError(str(exc)) from None
    return frames


def model_calls(cassette: Path, run: str) -> pl.DataFrame:
    """One row per recorded model call: where it was asked, the model, and its tokens (``input_tokens``
    excludes cached tokens, as for Anthropic; an OpenAI-compatible call's cached tokens are subtracted)."""
    rows = []
    if cassette.is_file():
        with cassette.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    if handle.read().strip():  # only a torn last line (a run killed mid-write) is skipped
                        raise ExportError(f"{cassette}: line {number} is not valid JSON") from None
                    break
                if entry.get("kind") != "call":
                    continue
                rows.append({"run": run, "market": entry.get("market"), "trader": entry.get("trader"),
                             "tier": entry.get("tier"), "step": entry.get("step"), "purpose": entry.get("purpose"),
                             "api": entry.get("api"), "model": (entry.get("request") or {}).get("model"),
                             "key": entry.get("key"), "error": entry.get("error"),
                             **_tokens(entry.get("api"), (entry.get("response") or {}).get("usage") or {})})
    return pl.DataFrame(rows, schema=EXTRA_SCHEMAS["model_calls"])


def _tokens(api: str | None, usage: dict[str, Any]) -> dict[str, int]:
    if api == "openai":
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        return {"input_tokens": (usage.get("prompt_tokens") or 0) - cached,
                "output_tokens": usage.get("completion_tokens") or 0, "cache_read_tokens": cached,
                "cache_write_tokens": 0}
    return {"input_tokens": usage.get("input_tokens") or 0, "output_tokens": usage.get("output_tokens") or 0,
            "cache_read_tokens": usage.get("cache_read_input_tokens") or 0,
            "cache_write_tokens": usage.get("cache_creation_input_tokens") or 0}


def model_usage(llm: dict[str, Any] | None, run: str) -> pl.DataFrame:
    """Calls, tokens and cost (US dollars, at the prices the run used) per trader, from ``summary.json``'s ``llm``
    section (None for a run with no model tier)."""
    rows = []
    for key, account in ((llm or {}).get("traders") or {}).items():
        market, _, trader = str(key).partition("/")
        rows.append({"run": run, "market": market, "participant_id": trader,
                     "calls": account.get("calls", 0), "replayed_calls": account.get("replayed_calls", 0),
                     **{t: account.get(t, 0) for t in TOKENS}, "cost_usd": account.get("cost_usd", 0.0)})
    return pl.DataFrame(rows, schema=EXTRA_SCHEMAS["model_usage"])


def export(path: Path, fmt: Literal["parquet", "jsonl"], out: Path) -> dict[str, int]:
    """Write every table of the runs under ``path`` into ``out``; returns rows written per table."""
    runs = find_runs(path)
    names = [run.name if run == path else run.relative_to(path).as_posix() for run in runs]
    parts = [run_tables(run, name) for run, name in zip(runs, names, strict=True)]
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for table in parts[0]:
        frame = pl.concat([p[table] for p in parts], how="diagonal_relaxed")
        target = out / f"{table}.{fmt}"
        tmp = target.with_name(target.name + ".tmp")
        if fmt == "parquet":
            frame.write_parquet(tmp)
        else:
            frame.write_ndjson(tmp)
        tmp.replace(target)
        written[table] = frame.height
    return written


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})


@app.command()
def main(
    path: Annotated[Path, typer.Argument(help="a run folder, a sweep folder or an experiment folder")],
    fmt: Annotated[str, typer.Option("--format", help="parquet or jsonl")] = "parquet",
    out: Annotated[Path | None, typer.Option(help="folder for the tables (default: PATH/export)")] = None,
) -> None:
    """Write every table of the runs under PATH (one file per table; docs/data.md describes the columns)."""
    if fmt not in ("parquet", "jsonl"):
        typer.echo(f"error: --format: expected parquet or jsonl, got {fmt!r}", err=True)
        raise typer.Exit(2)
    target = out or path / "export"
    try:
        written = export(path, "parquet" if fmt == "parquet" else "jsonl", target)
    except ExportError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"error: cannot write the tables: {exc}", err=True)
        raise typer.Exit(2) from None
    for table, rows in written.items():
        typer.echo(f"{table:>13}: {rows:>8,} rows")
    typer.echo(f"tables: {target}")


def cli() -> None:
    """The ``python -m market.export`` command line."""
    app(prog_name="python -m market.export")


if __name__ == "__main__":
    cli()
