"""``python -m market.experiment EXPERIMENT.yaml``: one study across conditions.

An experiment file names a base scenario, the factors to vary (any scenario
field, by its path: see :mod:`market.factors`) and how many replications each
condition (cell) gets::

    scenario: ../scenarios/deal.yaml        # relative to the experiment file
    replications: 16
    factors:
      markets[B,C].tiers.small.share: [0.2, 0.5, 0.8]   # the mixed markets B and C only
      participants.budget: ["$50", "$100"]
    # optional:
    name: tier_share                        # default: the file's name
    seed: 20251                             # base of the derived seeds (default: the scenario's)
    common_seeds: false                     # true: replication r has one seed in every cell
    set: {days: 2}                          # changes made in every cell
    cells:                                  # these cells instead of the product of the factors
      - {markets[B,C].tiers.small.share: 0.2, participants.budget: "$50"}

The grid is the product of the factors unless ``cells`` are listed. A cell in which a
market holds other tiers than in the base scenario (``markets[*].tiers.small.share``
makes the all-frontier A and D of deal.yaml mixed; ``set:`` is part of the base) is named
with those markets before the runs start, in ``experiment.json`` (``tier_changes``) and in the report. Replication
``r`` of a cell runs with a seed derived from the cell's values and ``r``
(:func:`derive_seed`), written beside each run in ``experiment.json`` and in
the results. The experiment folder::

    runs/experiments/<name>-<time>/
      experiment.yaml       the experiment file as given
      experiment.json       cells (values, scenario), every run with its seed, status, wall time
      cells/c01/            scenario.yaml (the cell's resolved scenario), catalog.csv,
        c01-r01-s<seed>/    ... and one ordinary run folder per replication (names unique in the experiment)
      runs.parquet          tidy: one row per run x market x tier, factor values and tier metrics
      cells.parquet, effects.parquet, report.html   (the ``market.after_experiment`` plugins: analysis)

Running the same command with ``--out`` of an interrupted experiment keeps
finished runs, resumes unfinished ones and runs the rest.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from contextlib import closing, nullcontext
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, Self

import polars as pl
import typer
from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from market.domain import Frozen
from market.scenario import FieldPathText, Scenario, ScenarioError, Seed, _describe, load_scenario, quoted, read_mapping
from running.hooks import MaxCost, cost_cap
from running.run import BAD_INPUT, print_warnings
from running.runfolder import RunFolder, RunFolderError
from studies.factors import (
    FactorError,
    TierChange,
    apply,
    as_data,
    canonical,
    check_runnable,
    parse_path,
    shown,
    tier_changes,
    write_resolved,
)
from studies.sweep import (
    MAX_REPLICATIONS,
    Replication,
    Workers,
    finished,
    open_workers,
    print_unfinished,
)

EXPERIMENT_FILE = "experiment.json"
RUNS_TABLE = "runs.parquet"
AFTER_EXPERIMENT_GROUP = "market.after_experiment"
ROOT = Path("runs/experiments")


class ExperimentError(ScenarioError):
    """An experiment file that cannot be run; the message names the file and field."""


MAX_FACTORS = 20
MAX_LEVELS = 1_000
MAX_CELLS = 10_000
"""The most conditions an experiment runs (factors' levels multiplied, or cells listed)."""


class ExperimentSpec(Frozen):
    """An experiment file: a base scenario, factors (path -> values) or cells, replications."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    scenario: Annotated[str, Field(min_length=1, max_length=1000,
                                   description="base scenario, relative to the experiment file")]
    name: Annotated[str, Field(max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")] | None = None
    replications: Annotated[int, Field(ge=1, le=MAX_REPLICATIONS)]
    seed: Seed | None = Field(None, description="base of the derived seeds (default: the scenario's seed)")
    common_seeds: bool = Field(False, description="replication r runs with the same seed in every cell")
    fixed: Annotated[dict[FieldPathText, Any], Field(max_length=100)] = Field(
        default_factory=dict, alias="set", description="path -> value in every cell")
    factors: Annotated[dict[FieldPathText, Annotated[list[Any], Field(min_length=1, max_length=MAX_LEVELS)]],
                       Field(max_length=MAX_FACTORS)] = Field(default_factory=dict)
    cells: Annotated[list[Annotated[dict[FieldPathText, Any], Field(max_length=MAX_FACTORS)]],
                     Field(min_length=1, max_length=MAX_CELLS)] | None = None

    @field_validator("factors", "fixed")
    @classmethod
    def _paths(cls, values: dict[str, Any]) -> dict[str, Any]:
        for path in values:
            try:
                parse_path(path)
            except FactorError as exc:
                raise ValueError(str(exc)) from None
        return values

    @field_validator("factors")
    @classmethod
    def _distinct_levels(cls, factors: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for path, levels in factors.items():
            seen = [canonical(v) for v in levels]
            if len(set(seen)) != len(seen):
                raise ValueError(f"{path}: a level is listed twice ({quoted(levels)})")
        return factors

    @field_validator("cells")
    @classmethod
    def _cells(cls, cells: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for i, cell in enumerate(cells or []):
            if not cell:
                raise ValueError(f"cells[{i}]: a cell sets at least one path")
            for path in cell:
                try:
                    parse_path(path)
                except FactorError as exc:
                    raise ValueError(f"cells[{i}]: {exc}") from None
        return cells

    @model_validator(mode="after")
    def _cells_within_factors(self) -> Self:
        levels = [len(values) for values in self.factors.values()]
        if self.cells is None and math.prod(levels) > MAX_CELLS:
            raise ValueError(f"factors: {' x '.join(map(str, levels))} levels make {math.prod(levels):,} cells; "
                             f"an experiment runs at most {MAX_CELLS:,} (list the cells to run under cells:)")
        if self.cells is None or not self.factors:
            return self
        for i, cell in enumerate(self.cells):
            if set(cell) != set(self.factors):
                raise ValueError(f"cells[{i}]: with factors listed, a cell sets exactly the factors "
                                 f"({', '.join(self.factors)}), got {', '.join(cell)}")
            for path, value in cell.items():
                if canonical(value) not in {canonical(v) for v in self.factors[path]}:
                    raise ValueError(f"cells[{i}]: {path}: {quoted(value)} is not one of the factor's levels "
                                     f"{quoted(self.factors[path])}")
        return self


@dataclass(frozen=True)
class Cell:
    """One condition: its id (c01, c02, ...), the factor values that define it, its scenario."""

    id: str
    values: dict[str, Any]
    scenario: Scenario
    tier_changes: tuple[TierChange, ...] = ()  # markets holding other tiers than in the base (after set:)
    warnings: tuple[str, ...] = ()  # budgets that cannot buy anything (market.scenario.budget_warnings)

    @property
    def label(self) -> str:
        """The cell's factor values as ``path=value`` pairs joined by commas (``base scenario`` when it has none)."""
        return ", ".join(f"{k}={shown(v)}" for k, v in self.values.items()) or "base scenario"

    def changes(self) -> list[dict[str, Any]]:
        """The tier changes as recorded in experiment.json (one entry per market)."""
        return [{"market": c.market, "before": list(c.before), "after": list(c.after), "gains": list(c.gains),
                 "loses": list(c.loses), "text": c.text()} for c in self.tier_changes]


@dataclass(frozen=True)
class Design:
    """A validated experiment, ready to run: nothing written yet."""

    spec: ExperimentSpec
    source: Path | None  # the experiment file (None: built in Python by batch_run)
    name: str
    base_path: Path  # the base scenario file
    catalog_path: Path
    base_seed: int
    factors: dict[str, list[Any]]  # path -> levels, in the order given (for tables and plots)
    cells: list[Cell]

    def seed(self, cell: Cell, replication: int) -> int:
        """The seed of ``cell``'s replication ``replication`` (1-based): ``derive_seed`` with this design's base seed
        and ``common_seeds``."""
        return derive_seed(self.base_seed, cell.values, replication, self.spec.common_seeds)

    def fingerprint(self) -> str:
        """What makes two experiments the same: cells' resolved scenarios, seeds, replications."""
        body = canonical({
            "replications": self.spec.replications, "common_seeds": self.spec.common_seeds, "seed": self.base_seed,
            "cells": [{"values": c.values, "scenario": as_data(c.scenario)} for c in self.cells],
        })
        return hashlib.sha256(body.encode()).hexdigest()[:16]


def derive_seed(base: int, values: Mapping[str, Any], replication: int, common: bool = False) -> int:
    """The seed of replication ``replication`` (1-based) of the cell with ``values``.

    With ``common`` every cell's replication r has seed ``base + r - 1`` (common random
    numbers: the same people and items in every cell). Otherwise a 32-bit number from
    SHA-256 of the base, the cell's values (canonical JSON) and r: it does not depend on the
    cell's position, so adding a level to a factor does not change the other cells' seeds.
    """
    if common:
        return base + replication - 1
    digest = hashlib.sha256(f"{base}|{canonical(dict(values))}|{replication}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def read_spec(path: Path) -> ExperimentSpec:
    """Read and validate an experiment file; errors name the file and the field."""
    data = read_mapping(path, "experiment", "a mapping (scenario, replications, factors)", ExperimentError)
    return validate_spec(data, path.name)


def validate_spec(data: dict[str, Any], source: str) -> ExperimentSpec:
    """``data`` as an experiment spec; raises ``ExperimentError`` with one line per bad field, each naming ``source``
    and the field."""
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise ExperimentError("\n".join(_describe(e, source) for e in exc.errors())) from None


def design(spec: ExperimentSpec, source: Path | None, base_dir: Path, *, name: str | None = None) -> Design:
    """Check every cell (scenario schema, catalog, participants, backends) before anything is written."""
    try:
        return _design(spec, source, base_dir, name)
    except FactorError as exc:
        raise ExperimentError(str(exc)) from None


def _design(spec: ExperimentSpec, source: Path | None, base_dir: Path, name: str | None) -> Design:
    where = source.name if source else "batch_run"
    base_path = (base_dir / spec.scenario).resolve()
    try:
        base, catalog = load_scenario(base_path)
    except ScenarioError as exc:
        raise ExperimentError(f"{where}: scenario: {exc}") from None
    if spec.fixed:
        base = apply(base, catalog, spec.fixed, f"{where}: set")
    factors = dict(spec.factors)
    if spec.cells is not None:
        grid = [dict(c) for c in spec.cells]
        for cell in grid:
            for path, value in cell.items():
                levels = factors.setdefault(path, [])
                if canonical(value) not in {canonical(v) for v in levels}:
                    levels.append(value)
    else:
        grid = [dict(zip(factors, combo, strict=True)) for combo in itertools.product(*factors.values())]
    width = max(2, len(str(len(grid))))
    cells = []
    for i, values in enumerate(grid, start=1):
        label = f"{where}: {'cells' if spec.cells is not None else 'factors'}"
        scenario = apply(base, catalog, values, label) if values else base
        warnings = check_runnable(scenario, catalog, f"{where}: cell {i} ({', '.join(map(str, values)) or 'base'})")
        cells.append(Cell(f"c{i:0{width}d}", values, scenario, tuple(tier_changes(base, scenario)), tuple(warnings)))
    return Design(spec=spec, source=source, name=name or spec.name or (source.stem if source else base.name),
                  base_path=base_path, catalog_path=base_path.parent / base.catalog,
                  base_seed=base.seed if spec.seed is None else spec.seed, factors=factors, cells=cells)


def load(path: Path | str) -> Design:
    """Read an experiment file and check every cell."""
    path = Path(path)
    return design(read_spec(path), path, path.parent)


@dataclass(frozen=True)
class RunSpec:
    """One run of the experiment: a cell's replication."""

    cell: Cell
    replication: int
    seed: int
    run_dir: Path


def plan_runs(plan: Design, folder: Path) -> list[RunSpec]:
    """Every cell x replication with its seed and run folder (cell-major; folder names unique across cells)."""
    width = max(2, len(str(plan.spec.replications)))
    return [
        RunSpec(cell, r, plan.seed(cell, r),
                folder / "cells" / cell.id / f"{cell.id}-r{r:0{width}d}-s{plan.seed(cell, r)}")
        for cell in plan.cells for r in range(1, plan.spec.replications + 1)
    ]


def default_folder(plan: Design) -> Path:
    """``runs/experiments/<name>-<time>``."""
    return ROOT / f"{plan.name}-{datetime.now():%Y%m%d-%H%M%S}"


def run(
    plan: Design,
    *,
    out: Path | None = None,
    workers: int = 1,
    ray_address: str | None = None,
    on_done: Callable[[str], None] | None = None,
    report: bool = True,
    source_text: str | None = None,
    max_cost: float | None = None,
    on: Workers | None = None,
) -> dict[str, Any]:
    """Run every cell x replication of ``plan`` into one experiment folder; returns experiment.json's record.

    With ``max_cost`` each run stops cleanly once its model calls cost that many dollars (the ``--max-cost``
    run hook); the experiment is then incomplete and the same call with ``out`` resumes its stopped runs.

    One worker runs the runs one after another in this process; more run in local worker
    processes, or on Ray with ``ray_address``; a study running several experiments passes the
    workers it keeps open as ``on`` instead (then ``workers`` and ``ray_address`` are theirs).
    ``on_done(cell_id)`` is called once per run as it finishes (at once for runs an earlier,
    interrupted attempt finished).
    """
    owned: Workers | None = None
    if on is None:  # its own workers (a bad --workers is refused here), closed at its end
        on = owned = open_workers(workers, ray_address)
    cost_cap(max_cost)  # a bad cap is bad input before anything runs
    folder = out or default_folder(plan)
    record_path = folder / EXPERIMENT_FILE
    if record_path.is_file():
        previous = json.loads(record_path.read_text(encoding="utf-8"))
        if previous.get("fingerprint") != plan.fingerprint():
            raise ExperimentError(f"--out {folder}: holds a different experiment ({previous.get('name')}: other "
                                  "cells, seeds or replications); choose a new folder to run this one")
    elif folder.exists() and any(folder.iterdir()):
        raise ExperimentError(f"--out {folder}: folder exists, is not empty and is not an experiment folder")
    folder.mkdir(parents=True, exist_ok=True)
    if source_text is not None:
        (folder / "experiment.yaml").write_text(source_text, encoding="utf-8")
    cell_files = {c.id: write_resolved(c.scenario, plan.catalog_path, folder / "cells" / c.id) for c in plan.cells}
    runs = plan_runs(plan, folder)
    record: dict[str, Any] = {
        "name": plan.name, "experiment": str(plan.source) if plan.source else None,
        "scenario": str(plan.base_path), "replications": plan.spec.replications, "base_seed": plan.base_seed,
        "seeds": "common: base + replication - 1" if plan.spec.common_seeds
        else "sha256(base | cell values | replication), first 4 bytes",
        "set": plan.spec.fixed, "factors": plan.factors,
        "cells": [{"id": c.id, "values": c.values, "label": c.label, "tier_changes": c.changes(),
                   "scenario": str(cell_files[c.id].relative_to(folder))} for c in plan.cells],
        "runs": [{"cell": r.cell.id, "replication": r.replication, "seed": r.seed,
                  "run_dir": str(r.run_dir.relative_to(folder))} for r in runs],
        "workers": on.workers, "executor": on.executor,
        "fingerprint": plan.fingerprint(), "started": datetime.now().isoformat(timespec="seconds"),
        "complete": False,
    }
    _write_record(record_path, record)
    started = time.perf_counter()
    pending, done = [], 0
    for r in runs:
        if finished(r.run_dir):
            done += 1
            if on_done:
                on_done(r.cell.id)
        else:
            pending.append(r)
    by_dir = {str(r.run_dir): r for r in pending}
    reps = [Replication(str(cell_files[r.cell.id].resolve()), r.seed, str(r.run_dir), max_cost=max_cost)
            for r in pending]
    incomplete, failed, stopped = 0, [], []
    if reps:
        with owned or nullcontext():
            source = on.run(reps)
            with closing(source):  # an interruption cancels what has not started
                for result in source:
                    incomplete += not result["complete"]
                    run_name = str(Path(result["run_dir"]).relative_to(folder))
                    if "error" in result:  # a Ray worker or node died more often than its retries allow
                        failed.append({"run": run_name, "error": result["error"]})
                    elif not result["complete"]:  # e.g. --max-cost: it goes on from where it stopped
                        stopped.append(run_name)
                    if on_done:
                        on_done(by_dir[result["run_dir"]].cell.id)
    record.update(complete=incomplete == 0, wall_seconds=round(time.perf_counter() - started, 3),
                  skipped=done, failed=failed, stopped=sorted(stopped), folder=str(folder))
    if record["complete"]:
        table = tidy(folder, record)
        table.write_parquet(folder / RUNS_TABLE)
        record["rows"] = table.height
    _write_record(record_path, record)
    if report and record["complete"]:
        after_experiment(folder)
    return record


def _write_record(path: Path, record: dict[str, Any]) -> None:
    path.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")


def after_experiment(folder: Path) -> None:
    """Run the ``market.after_experiment`` plugins on the folder (the analysis: estimates per cell, report)."""
    for ep in sorted(entry_points(group=AFTER_EXPERIMENT_GROUP), key=lambda e: e.name):
        ep.load()(folder)


# --- the tidy table ----------------------------------------------------------------

RUN_COLUMNS = ("cell", "replication", "seed", "run")


def tidy(folder: Path, record: Mapping[str, Any] | None = None) -> pl.DataFrame:
    """One row per run x market x tier: the cell's factor values, the tier's settings and metrics.

    Built from each run's summary.json and resolved scenario.yaml (what the engine computed from
    the market's state); money in integer cents, ratios as floats.
    """
    record = record or json.loads((folder / EXPERIMENT_FILE).read_text(encoding="utf-8"))
    cells = {c["id"]: c for c in record["cells"]}
    factors = list(record["factors"])
    rows: list[dict[str, Any]] = []
    for entry in record["runs"]:
        run_dir = folder / entry["run_dir"]
        summary = RunFolder(run_dir).read_summary()
        if summary is None:
            raise RunFolderError(f"{run_dir}: no summary.json (the run is not finished)")
        scenario = RunFolder(run_dir).read_scenario()
        values = cells[entry["cell"]]["values"]
        for market in (m.model_dump(mode="json") for m in summary.markets):
            for tier, metrics in market["tiers"].items():
                settings = scenario["tiers"].get(tier, {})
                rows.append({
                    "cell": entry["cell"], "replication": entry["replication"], "seed": entry["seed"],
                    "run": run_dir.name, **{f: values.get(f) for f in factors},
                    "market": market["market"], "tier": tier, "backend": settings.get("backend"),
                    "profile": settings.get("profile") or (tier if settings.get("backend") == "offline" else None),
                    "model": settings.get("model"),
                    "market_participants": market["participants"], "market_deals": market["deals"],
                    "market_volume_cents": market["volume_cents"],
                    "tier_share": metrics["participants"] / market["participants"] if market["participants"] else None,
                    **metrics,
                })
    columns = {f: _column([r[f] for r in rows]) for f in factors}
    frame = pl.DataFrame([{k: v for k, v in r.items() if k not in columns} for r in rows], infer_schema_length=None)
    return frame.with_columns(**{f: pl.Series(f, col[0], dtype=col[1]) for f, col in columns.items()}).select(
        *RUN_COLUMNS, *factors, *[c for c in frame.columns if c not in RUN_COLUMNS]
    )


def _column(values: list[Any]) -> tuple[list[Any], pl.DataType]:
    """Factor values as one typed column: numbers stay numbers, anything else is shown as text."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return values, pl.Int64()
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return [None if v is None else float(v) for v in values], pl.Float64()
    if present and all(isinstance(v, bool) for v in present):
        return values, pl.Boolean()
    return [None if v is None else shown(v) for v in values], pl.String()



# --- the Python API -----------------------------------------------------------------


def batch_run(
    scenario: Path | str,
    parameters: Mapping[str, Any] | None = None,
    replications: int = 1,
    workers: int = 1,
    *,
    seed: int | None = None,
    common_seeds: bool = False,
    ray: str | None = None,
    out: Path | str | None = None,
) -> pl.DataFrame:
    """Run a scenario over a grid of parameters and return the tidy table (as Mesa's ``batch_run``).

    ``parameters`` maps a field path to a list (or tuple, or range) of values to vary, or to one
    value to set in every run: ``{"markets[*].tiers.small.share": [0.2, 0.8], "days": 1}``. A value
    that is itself a list is given inside a list: ``{"profiles.medium.anchor": [[1.0, 1.2]]}``.
    Runs go to ``out`` (kept, resumable) or to a temporary folder removed afterwards. Returns one
    row per run x market x tier (see :func:`tidy`); no report is written.
    """
    factors: dict[str, list[Any]] = {}
    fixed: dict[str, Any] = {}
    for path, value in (parameters or {}).items():
        if isinstance(value, list | tuple | range):
            factors[path] = list(value)
        else:
            fixed[path] = value
    scenario = Path(scenario).resolve()
    spec = validate_spec({"scenario": str(scenario), "replications": replications, "seed": seed,
                          "common_seeds": common_seeds, "set": fixed, "factors": factors}, "batch_run")
    plan = design(spec, None, scenario.parent)
    with _folder(out) as folder:
        record = run(plan, out=folder, workers=workers, ray_address=ray, report=False)
        if not record["complete"]:
            raise RuntimeError(f"batch_run: some runs did not complete (see {folder / EXPERIMENT_FILE})")
        return tidy(folder, record)


class _folder:
    """``out`` as given, or a temporary folder removed on exit."""

    def __init__(self, out: Path | str | None) -> None:
        self.out = Path(out) if out is not None else None
        self.temp: str | None = None

    def __enter__(self) -> Path:
        if self.out is not None:
            return self.out
        self.temp = tempfile.mkdtemp(prefix="batch_run-")
        return Path(self.temp) / "experiment"

    def __exit__(self, *exc: object) -> None:
        if self.temp is not None:
            shutil.rmtree(self.temp, ignore_errors=True)


# --- the command line ---------------------------------------------------------------

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})
err = Console(stderr=True)


def _progress(plan: Design, console: Console, quiet: bool) -> tuple[Progress, Callable[[str], None]]:
    progress = Progress(TextColumn("[bold]{task.fields[cell]}"), TextColumn("{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), console=console, disable=quiet)
    tasks = {c.id: progress.add_task(c.label, total=plan.spec.replications, cell=c.id) for c in plan.cells}

    def advance(cell: str) -> None:
        progress.advance(tasks[cell])

    return progress, advance


@app.command()
def main(
    experiment: Annotated[Path, typer.Argument(help="experiment YAML file")],
    workers: Annotated[int, typer.Option(help="local worker processes (or Ray CPUs with --ray local)")] = 1,
    ray: Annotated[str | None, typer.Option("--ray", help="run on Ray: local, auto, or HOST:PORT")] = None,
    out: Annotated[Path | None, typer.Option(help="the experiment folder (default runs/experiments/<name>-<time>)")]
    = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="skip the estimates per cell and the report")]
    = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
    max_cost: MaxCost = None,
) -> None:
    """Run every cell x replication of EXPERIMENT into one folder: tidy table, estimates per cell, report."""
    console = Console(quiet=quiet)
    folder = out
    try:
        plan = load(experiment)
        console.print(f"{plan.name}: {len(plan.cells)} cell(s) x {plan.spec.replications} replication(s) of "
                      f"{plan.base_path.name}; seeds derived from base {plan.base_seed}"
                      f"{' (common to every cell)' if plan.spec.common_seeds else ' per cell and replication'}",
                      highlight=False)
        print_tier_changes(console, plan)
        print_warnings(f"{c.id} ({c.label}): {w}" for c in plan.cells for w in c.warnings)  # before any run
        folder = out or default_folder(plan)
        progress, advance = _progress(plan, console, quiet)
        with progress:
            record = run(plan, out=folder, workers=workers, ray_address=ray, on_done=advance, report=not no_report,
                         source_text=experiment.read_text(encoding="utf-8"), max_cost=max_cost)
    except BAD_INPUT as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print(f"interrupted; continue with the same command and --out {folder}", highlight=False)
        raise typer.Exit(130) from None
    console.print(f"{len(record['runs'])} runs ({record['skipped']} already done) in {record['wall_seconds']:.1f} s "
                  f"({record['workers']} worker(s), {record['executor']})", highlight=False)
    print_unfinished(record["failed"], record["stopped"], folder)
    if (folder / "cells.parquet").is_file():
        _print_headline(console, pl.read_parquet(folder / "cells.parquet"), record)
    for name in ("runs.parquet", "cells.parquet", "report.html"):
        if (folder / name).is_file():
            console.print(f"{name}: {folder / name}", highlight=False)
    print(f"experiment folder: {folder}")
    if not record["complete"]:
        raise typer.Exit(1)


def print_tier_changes(console: Console, plan: Design) -> None:
    """Per cell, the markets whose tiers differ from the base scenario's (a control market made mixed, say)."""
    changed = [c for c in plan.cells if c.tier_changes]
    if not changed:
        return
    console.print(f"[yellow]changes tiers:[/yellow] {len(changed)} of {len(plan.cells)} cell(s) change which tiers "
                  f"a market holds (against {plan.base_path.name}):", highlight=False, soft_wrap=True)
    for cell in changed:
        console.print(f"  {cell.id} {cell.label}: " + "; ".join(c.text() for c in cell.tier_changes),
                      highlight=False, soft_wrap=True)


def _print_headline(console: Console, cells: pl.DataFrame, record: Mapping[str, Any]) -> None:
    """The first headline effect per cell, with its interval (the estimates the after-experiment plugin wrote)."""
    if cells.is_empty() or not {"name", "estimate", "low", "high", "unit", "cell"} <= set(cells.columns):
        return
    first = cells["name"][0]
    labels = {c["id"]: c["label"] for c in record["cells"]}
    console.print(f"{first} (mean over replications, 95% interval):", highlight=False)
    for row in cells.filter(pl.col("name") == first).iter_rows(named=True):
        money = row["unit"] == "cents"
        shown = [None if v is None else (v / 100 if money else v) for v in (row["estimate"], row["low"], row["high"])]
        text = ["n/a" if v is None else (f"{'-' if v < 0 else ''}${abs(v):,.2f}" if money else f"{v:,.2f}")
                for v in shown]
        console.print(f"  {row['cell']} {labels.get(row['cell'], '')}: {text[0]} [{text[1]}, {text[2]}]"
                      f"{'' if money else ' ' + row['unit']}", highlight=False)


def cli() -> None:
    """Run ``app`` as ``python -m market.experiment``; exits the process with the command's exit code."""
    app(prog_name="python -m market.experiment")


if __name__ == "__main__":
    sys.exit(cli())
