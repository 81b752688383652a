"""Read run folders (ledger + scenario.yaml) into polars DataFrames.

Nothing here touches the engine: the ledger's events are the only truth.
Money columns are integer cents (``Int64``); times are simulated seconds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ValidationError

from analysis import tables
from analysis.tables import SCHEMAS, enrich_deals, hourly_series, project
from market.clock import DAY
from market.ledger import Ledger, LedgerError
from running.runfolder import RunFolder, RunFolderError

TABLES = (*tables.TABLES, "hourly")
_SCHEMAS = SCHEMAS  # the projected tables' columns (analysis.tables), named here for older callers


class AnalysisError(ValueError):
    """A path that cannot be analysed; the message says which and why."""


@dataclass
class RunData:
    """One run's tables. Every table has ``run`` (the run folder's name) and ``market``.

    The negotiation is in ``offers`` (every offer and counter with its text, recipient, ``counter_of``,
    expiry and outcome), ``messages`` (every text anyone wrote) and ``transcripts`` (each listing turn
    by turn); docs/data.md describes every column.
    """

    path: Path
    name: str
    seed: int
    scenario: dict[str, Any]
    tiers: list[str]
    participants: pl.DataFrame
    items: pl.DataFrame
    wants: pl.DataFrame
    listings: pl.DataFrame
    offers: pl.DataFrame
    deals: pl.DataFrame
    messages: pl.DataFrame
    hourly: pl.DataFrame
    rejections: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=SCHEMAS["rejections"]))
    failures: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=SCHEMAS["failures"]))
    transcripts: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=SCHEMAS["transcripts"]))
    runs: list[Path] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)

    @property
    def markets(self) -> list[str]:
        """The names of the markets that have participants, sorted."""
        return sorted(self.participants["market"].unique().to_list())

    @property
    def duration(self) -> int:
        """Simulated seconds in the run: the scenario's ``days`` (1 if missing) in seconds."""
        return int(self.scenario.get("days", 1)) * DAY


def load_run(path: Path | str, run_id: str | None = None) -> RunData:
    """Load one complete run folder; :class:`AnalysisError` names what is wrong.

    ``run_id`` fills the ``run`` column (default: the folder's name).
    """
    try:
        folder = RunFolder.open(path)
    except RunFolderError as exc:
        raise AnalysisError(str(exc)) from None
    scenario = _read_scenario(folder)
    run = run_id or folder.path.name
    try:
        with Ledger(folder.ledger) as ledger:
            state = ledger.status("state")
            if state != "complete":
                raise AnalysisError(
                    f"{folder.path}: the run is {'still in progress or was interrupted' if state else 'not finished'}"
                    f" (ledger state {state or 'missing'}); finish it with "
                    f"`python -m market.run --resume {folder.path}` before analysing it"
                )
            records = [(r.market, r.event) for r in ledger.records()]
            frames = project(records, run)
    except (LedgerError, sqlite3.DatabaseError) as exc:
        raise AnalysisError(f"{folder.path}: the ledger cannot be read ({exc}); it may be truncated") from None
    except (ValidationError, ValueError) as exc:
        if isinstance(exc, AnalysisError):
            raise
        raise AnalysisError(f"{folder.path}: the ledger holds an event that cannot be read ({exc})") from None
    if frames["participants"].is_empty():
        raise AnalysisError(f"{folder.path}: the ledger has no participants; it may be truncated")
    tiers = list(scenario.get("tiers") or sorted(frames["participants"]["tier"].unique().to_list()))
    frames["deals"] = enrich_deals(frames)
    hourly = hourly_series(records, tiers, int(scenario.get("days", 1)) * DAY, run)
    return RunData(
        path=folder.path, name=str(scenario.get("name", run)), seed=int(scenario.get("seed", 0)),
        scenario=scenario, tiers=tiers, hourly=hourly, runs=[folder.path], run_ids=[run],
        seeds=[int(scenario.get("seed", 0))], **frames,
    )


def load_runs(paths: Iterable[Path | str]) -> RunData:
    """Load and stack several runs (or sweep folders: every run folder directly inside)."""
    folders = expand_runs(paths)
    names = [p.name for p in folders]
    if len(set(names)) != len(names):  # e.g. runs of two sweeps: name them by sweep and run
        names = [f"{p.parent.name}/{p.name}" for p in folders]
    if len(set(names)) != len(names):
        names = [str(p) for p in folders]
    if len(set(names)) != len(names):
        raise AnalysisError(f"the same run folder is given twice ({', '.join(sorted(names))})")
    loaded = [load_run(p, n) for p, n in zip(folders, names, strict=True)]
    first = loaded[0]
    if len(loaded) == 1:
        return first
    tiers = list(dict.fromkeys(t for r in loaded for t in r.tiers))
    stacked = {
        name: pl.concat([getattr(r, name) for r in loaded], how="diagonal_relaxed") for name in TABLES
    }
    return RunData(
        path=first.path.parent, name=first.name, seed=first.seed, scenario=first.scenario, tiers=tiers,
        runs=[r.path for r in loaded], run_ids=names, seeds=[s for r in loaded for s in r.seeds], **stacked,
    )


def expand_runs(paths: Iterable[Path | str]) -> list[Path]:
    """Run folders named by ``paths``: a run folder itself, or a sweep folder holding runs."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise AnalysisError(f"{path}: no such folder")
        if (path / "ledger.sqlite").is_file() or (path / "scenario.yaml").is_file():
            out.append(path)
            continue
        inner = sorted(p for p in path.iterdir() if p.is_dir() and (p / "ledger.sqlite").is_file())
        if not inner:
            raise AnalysisError(f"{path}: not a run folder (no ledger.sqlite) and holds no run folders")
        out.extend(inner)
    if not out:
        raise AnalysisError("give at least one run folder or sweep folder")
    return out


def _read_scenario(folder: RunFolder) -> dict[str, Any]:
    try:
        return folder.read_scenario()
    except RunFolderError as exc:
        raise AnalysisError(str(exc)) from None
