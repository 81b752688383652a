"""``python -m market.calibrate SCENARIO TARGETS [--param PATH=LOW:HIGH]``: fit offline profiles to published figures.

A targets file (:class:`Targets`) lists the figures a simulated week should
reproduce, each with its source, how sure it is (``tolerance``: the size of a
miss that counts as one unit of distance) and its weight. The parameters to fit
and their bounds are scenario field paths (see :mod:`market.factors`), declared in the
scenario under ``calibration: {parameters: {PATH: [LOW, HIGH]}}`` or given on the command
line, e.g. ``--param tiers.small.options.attention=1:6`` (integers when both bounds are
integers) or ``--param profiles.medium.concession=0.2:0.8``; the command adds to the
scenario's or replaces one of them.

Each trial sets the parameters, runs the scenario over ``--seeds K`` seeds (the
same seeds in every trial: common random numbers) and scores the mean simulated
moments against the targets with the declared distance
``sum(weight * ((simulated - target) / tolerance) ** 2)``. The search is
Optuna's TPE sampler, seeded (so a study is deterministic for a given ``--seed``
when it is not interrupted), stored in SQLite in the output folder (so an
interrupted study continues where it stopped). Optuna was chosen because it is
well kept, handles integer and real parameters together, resumes from its own
storage and ships parameter-importance estimates (fANOVA) for the sensitivity.

The best parameters are then run on ``--holdout H`` fresh seeds never used in
the fit; every moment is reported as simulated (mean, 95% t interval over the
held-out seeds) against its target, with the moments the fit cannot reach.
Nothing is clamped: a moment the profiles cannot produce is reported as missed.

Output folder: ``calibration.json`` (everything above, with each trial's distance),
``calibrated.yaml`` (the scenario with the best parameters, its header saying so),
``report.html`` (the fit, written by the command through ``analysis.calibration_report``:
the engine writes no HTML; ``python -m analysis.calibration_report FOLDER`` writes it again),
``study.db`` (the Optuna study), ``trials/tNNNN/`` and ``holdout/tNNNN/`` (ordinary experiment
folders with their runs).
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from analysis.moments import interval, run_moments
from market.scenario import dump_scenario, load_scenario, quoted
from market.targets import NOT_SIMULATED, SIMULATED, Targets, read_targets
from studies.experiment import ExperimentError, design, run, validate_spec
from studies.factors import FactorError, apply, parse_path
from studies.sweep import BAD_INPUT

MAX_TRIALS = 100_000
MAX_SEEDS = 1_000
"""The most seeds per trial, and held-out seeds, a study runs."""
MAX_SAMPLER_SEED = 2**32 - 1


@dataclass(frozen=True)
class Parameter:
    """A free parameter: a scenario field path and its bounds."""

    path: str
    low: float
    high: float
    integer: bool

    @classmethod
    def parse(cls, text: str) -> Parameter:
        """``PATH=LOW:HIGH``; integers when both bounds are written as integers."""
        path, sep, bounds = text.partition("=")
        low, colon, high = bounds.partition(":")
        if not sep or not colon:
            raise FactorError(f"--param {quoted(text)}: expected PATH=LOW:HIGH, e.g. "
                              "tiers.small.options.attention=1:6")
        parse_path(path)
        try:
            integer = all(part.strip().lstrip("-").isdigit() for part in (low, high))
            lo, hi = (int(low), int(high)) if integer else (float(low), float(high))
        except ValueError:
            raise FactorError(f"--param {quoted(text)}: bounds must be numbers") from None
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise FactorError(f"--param {quoted(text)}: bounds must be finite numbers")
        if not lo < hi:
            raise FactorError(f"--param {quoted(text)}: LOW must be below HIGH")
        return cls(path.strip(), lo, hi, integer)

    @classmethod
    def declared(cls, path: str, bounds: tuple[float, float]) -> Parameter:
        """One of the scenario's ``calibration.parameters`` (already validated by the schema)."""
        parse_path(path)
        low, high = bounds
        return cls(path, low, high, isinstance(low, int) and isinstance(high, int))


def distance(simulated: dict[str, float], targets: Targets) -> float:
    """The declared distance: sum of weight * ((simulated - target) / tolerance)^2 over fitted moments."""
    total = 0.0
    for m in targets.moments:
        if not m.fit or m.weight == 0:
            continue
        value = simulated.get(m.name, math.nan)
        if math.isnan(value):
            return math.inf  # a run that has no units for a fitted moment cannot be scored
        total += m.weight * ((value - m.target) / m.tolerance) ** 2
    return total


# --- the study --------------------------------------------------------------------------------


@dataclass
class Calibration:
    """Everything a calibration needs, validated; nothing written yet."""

    scenario_path: Path
    targets_path: Path
    targets: Targets
    parameters: list[Parameter]
    seeds: int
    holdout: int
    seed: int

    def values(self, params: dict[str, Any]) -> dict[str, Any]:
        return {p.path: params[p.path] for p in self.parameters}

    def simulate(self, values: dict[str, Any], folder: Path, first_seed: int, count: int,
                 workers: int, ray: str | None) -> dict[str, list[float]]:
        """Run the scenario with ``values`` over seeds ``first_seed ..`` into ``folder``; moments per run."""
        spec = validate_spec({"scenario": str(self.scenario_path), "replications": count, "seed": first_seed,
                              "common_seeds": True, "set": values}, "calibrate")
        plan = design(spec, None, self.scenario_path.parent, name=folder.name)
        record = run(plan, out=folder, workers=workers, ray_address=ray, report=False)
        if not record["complete"]:
            raise RuntimeError(f"{folder}: some runs did not complete")
        per_run: dict[str, list[float]] = {m.name: [] for m in self.targets.moments if m.statistic in SIMULATED}
        for entry in record["runs"]:
            for name, value in run_moments(folder / entry["run_dir"], self.targets.moments).items():
                per_run[name].append(value)
        return per_run


def prepare(scenario: Path, targets: Path, params: Sequence[str], seeds: int, holdout: int, seed: int) -> Calibration:
    """Check the scenario, targets and parameters (bounds applied to the scenario) before running anything."""
    if not (1 <= seeds <= MAX_SEEDS and 2 <= holdout <= MAX_SEEDS):
        raise ValueError(f"--seeds must be 1 to {MAX_SEEDS} and --holdout 2 to {MAX_SEEDS} (an interval needs "
                         f"two runs), got {seeds} and {holdout}")
    if not 0 <= seed <= MAX_SAMPLER_SEED:
        raise ValueError(f"--seed must be 0 to 2**32 - 1 (it seeds Optuna's sampler, which seeds NumPy), got {seed}")
    base, catalog = load_scenario(scenario)
    chosen = {path: Parameter.declared(path, bounds) for path, bounds in base.calibration.parameters.items()}
    chosen |= {p.path: p for p in map(Parameter.parse, params)}  # the command adds to or replaces the file's
    parsed = list(chosen.values())
    if not parsed:
        raise FactorError("name the parameters to fit: under calibration.parameters in the scenario "
                          "(PATH: [LOW, HIGH]) or --param PATH=LOW:HIGH (repeatable), e.g. "
                          "--param tiers.small.options.concession=0.3:0.9")
    for bound in ("low", "high"):
        apply(base, catalog, {p.path: getattr(p, bound) for p in parsed}, f"--param ({bound} bounds)")
    return Calibration(scenario.resolve(), targets.resolve(), read_targets(targets), parsed, seeds, holdout, seed)


def calibrate(cal: Calibration, trials: int, out: Path, workers: int = 1, ray: str | None = None,
              on_trial: Any = None) -> dict[str, Any]:
    """Run (or continue) the study in ``out``; then the held-out check. Returns calibration.json's record."""
    if not 1 <= trials <= MAX_TRIALS:
        raise ValueError(f"--trials must be 1 to {MAX_TRIALS:,}, got {trials}")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{out / 'study.db'}"
    sampler = optuna.samplers.TPESampler(seed=cal.seed, n_startup_trials=min(10, max(2, trials // 3)))
    study = optuna.create_study(study_name="calibrate", storage=storage, sampler=sampler, direction="minimize",
                                load_if_exists=True)
    for stale in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(stale.number, state=optuna.trial.TrialState.FAIL)  # interrupted: asked again afresh
    fit_seed = cal.seed

    def objective(trial: optuna.Trial) -> float:
        params = {p.path: (trial.suggest_int(p.path, int(p.low), int(p.high)) if p.integer
                           else trial.suggest_float(p.path, p.low, p.high)) for p in cal.parameters}
        per_run = cal.simulate(params, out / "trials" / f"t{trial.number:04d}", fit_seed, cal.seeds, workers, ray)
        means = {k: interval(v)[0] for k, v in per_run.items()}
        for name, value in means.items():
            trial.set_user_attr(name, value)
        return distance(means, cal.targets)

    done = len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE])
    for _ in range(max(0, trials - done)):
        study.optimize(objective, n_trials=1)
        if on_trial:
            on_trial(study)
    best = study.best_trial
    held_seed = cal.seed + 1_000_003  # fresh seeds, never among the fit's
    held_dir = out / "holdout" / f"t{best.number:04d}"  # the best trial's check (kept if a later study improves)
    held = cal.simulate(cal.values(best.params), held_dir, held_seed, cal.holdout, workers, ray)
    table = []
    for m in cal.targets.moments:
        mean, low, high, n = interval(held.get(m.name, []))
        reached = None if m.statistic in NOT_SIMULATED else (
            not math.isnan(mean) and (low <= m.target <= high or abs(mean - m.target) <= m.tolerance))
        table.append({"moment": m.name, "statistic": m.statistic, "target": m.target, "tolerance": m.tolerance,
                      "weight": m.weight, "fitted": m.fit, "simulated": mean, "low": low, "high": high, "runs": n,
                      "reached": reached, "source": m.source, "certainty": m.certainty,
                      "why_not_simulated": NOT_SIMULATED.get(m.statistic)})
    try:
        importance = {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except (RuntimeError, ValueError) as exc:
        importance = {"note": f"not estimated ({exc})"}
    record = {
        "scenario": str(cal.scenario_path), "targets": str(cal.targets_path), "targets_name": cal.targets.name,
        "distance": "sum(weight * ((simulated - target) / tolerance)^2) over fitted moments",
        "parameters": [{"path": p.path, "low": p.low, "high": p.high, "integer": p.integer} for p in cal.parameters],
        "sampler": f"optuna TPE (seed {cal.seed})",
        "trials": len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))),
        "seeds_per_trial": cal.seeds, "fit_seeds": [fit_seed + i for i in range(cal.seeds)],
        "holdout_seeds": [held_seed + i for i in range(cal.holdout)],
        "best": {"trial": best.number, "distance": best.value, "params": best.params},
        "history": [{"trial": t.number, "distance": t.value} for t in study.trials if t.value is not None],
        "fit": table, "sensitivity": importance, "unreached": [r["moment"] for r in table if r["reached"] is False],
        "written": datetime.now().isoformat(timespec="seconds"),
    }
    (out / "calibration.json").write_text(json.dumps(record, indent=2, default=_json) + "\n", encoding="utf-8")
    write_scenario(cal, best.params, record, out / "calibrated.yaml")
    return record


def _json(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else str(value)


def write_scenario(cal: Calibration, params: dict[str, Any], record: dict[str, Any], target: Path) -> None:
    """The scenario with the best parameters, its header saying it was calibrated, to what and how well."""
    base, catalog = load_scenario(cal.scenario_path)
    fitted = apply(base, catalog, cal.values(params), "calibrated")
    lines = [f"# Calibrated by python -m market.calibrate against {cal.targets_path.name} ({cal.targets.name}):",
             f"# {record['trials']} trials x {cal.seeds} seeds; distance {record['best']['distance']:.3g} "
             f"({record['distance']}).",
             "# Fitted parameters (value, within its bounds):",
             *(f"#   {p.path} = {_fmt(params[p.path])}  [{_fmt(p.low)}, {_fmt(p.high)}]" for p in cal.parameters),
             "# Held-out fit (mean over seeds " + f"{record['holdout_seeds'][0]}..{record['holdout_seeds'][-1]}):"]
    for row in record["fit"]:
        if row["why_not_simulated"]:
            lines.append(f"#   {row['moment']}: target {_fmt(row['target'])}, not simulated")
        else:
            lines.append(f"#   {row['moment']}: target {_fmt(row['target'])}, simulated {_fmt(row['simulated'])} "
                         f"[{_fmt(row['low'])}, {_fmt(row['high'])}]{'' if row['reached'] else ' (not reached)'}")
    lines.append("# The offline profiles remain modelling assumptions; calibration fits them to the figures above.")
    catalog_path = os.path.relpath(cal.scenario_path.parent / base.catalog, target.parent)
    targets = {"targets": os.path.relpath(cal.scenario_path.parent / base.targets, target.parent)} \
        if base.targets else {}
    body = dump_scenario(fitted.model_copy(update={"catalog": catalog_path, **targets}))
    target.write_text("\n".join(lines) + "\n" + body, encoding="utf-8")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})


@app.command()
def main(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    targets: Annotated[Path, typer.Argument(help="targets YAML file (e.g. scenarios/targets/project_deal.yaml)")],
    param: Annotated[list[str] | None, typer.Option("--param", help=(
        "PATH=LOW:HIGH to fit (repeatable); adds to or replaces the scenario's calibration.parameters"))] = None,
    trials: Annotated[int, typer.Option(help="trials in the study (an interrupted study continues)")] = 40,
    seeds: Annotated[int, typer.Option(help="seeds per trial (the same in every trial)")] = 4,
    holdout: Annotated[int, typer.Option(help="fresh seeds for the final check")] = 8,
    seed: Annotated[int, typer.Option(help="seed of the sampler and first fit seed")] = 1,
    workers: Annotated[int, typer.Option(help="local worker processes")] = 1,
    ray: Annotated[str | None, typer.Option("--ray", help="run on Ray: local, auto, or HOST:PORT")] = None,
    out: Annotated[Path | None, typer.Option(help="study folder (default runs/calibrate/<targets>-<time>)")] = None,
) -> None:
    """Fit offline profile parameters to published figures by simulation (Optuna TPE)."""
    console = Console()
    try:
        cal = prepare(scenario, targets, param or [], seeds, holdout, seed)
        folder = out or Path("runs/calibrate") / f"{cal.targets.name}-{datetime.now():%Y%m%d-%H%M%S}"
        record = calibrate(cal, trials, folder, workers, ray, on_trial=lambda s: console.print(
            f"trial {s.trials[-1].number}: distance {_fmt(s.trials[-1].value)} (best {_fmt(s.best_value)})",
            highlight=False))
        from analysis.calibration_report import write_page  # the page is the analysis's; the engine writes no HTML

        page = write_page(folder)
    except (*BAD_INPUT, ExperimentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        print("interrupted; run the same command with --out of the study folder to continue", file=sys.stderr)
        raise typer.Exit(130) from None
    for row in record["fit"]:
        note = "not simulated" if row["why_not_simulated"] else (
            f"{_fmt(row['simulated'])} [{_fmt(row['low'])}, {_fmt(row['high'])}]"
            + ("" if row["reached"] else "  NOT REACHED"))
        console.print(f"{row['moment']:>28}: target {_fmt(row['target']):>8}  simulated {note}", highlight=False)
    print(f"calibrated scenario: {folder / 'calibrated.yaml'}\nreport: {page}")


if __name__ == "__main__":
    app(prog_name="python -m market.calibrate")

