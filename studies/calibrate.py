"""``python -m market.calibrate SCENARIO TARGETS [--param PATH=LOW:HIGH]``: fit offline profiles to published figures.

A targets file (:class:`Targets`) lists the figures a simulated week should
reproduce, each with its source, how sure it is (``tolerance``: the size of a
miss that counts as one unit of distance) and its weight. The parameters to fit
and their bounds are scenario field paths (see :mod:`market.factors`), declared in the
scenario under ``calibration: {parameters: {PATH: [LOW, HIGH]}}`` or given on the command
line, e.g. ``--param tiers.small.options.attention=1:6`` (integers when both bounds are
integers) or ``--param profiles.medium.concession=0.2:0.8``; the command adds to the
scenario's or replaces one of them.

Every capability of the offline profiles the scenario's tiers use (see
:data:`agents.offline.CAPABILITIES`) is either fitted (``calibration.parameters``) or held at its value
with the reason (``calibration.fixed: {PATH: why}``); the record and the calibrated file's header list
each with its status, and name any that is neither.

Each trial sets the parameters, runs the scenario over ``--seeds K`` seeds (the
same seeds in every trial: common random numbers, so two trials differ by their
parameters and not by their people and items) and scores the mean simulated
moments against the targets with the declared distance
``sum(weight * ((simulated - published) / u) ** 2)``, ``u`` the published standard error
where the targets give one, else the declared tolerance. The search is Optuna's TPE
sampler, seeded (so a study is deterministic for a given ``--seed`` when it is not
interrupted), stored in SQLite in the output folder (so an interrupted study continues
where it stopped). TPE is not noise-aware: the noise of a trial's mean is held down by
its seeds (at least 8 recommended) and by common random numbers instead. Optuna was chosen
because it is well kept, handles integer and real parameters together, resumes from its
own storage and ships parameter-importance estimates (fANOVA) for the sensitivity.

The best parameters are then run on ``--holdout H`` fresh seeds never used in
the fit; every moment is reported as published (with its interval) against simulated
(mean, 95% t interval over the held-out seeds) and judged inside or not by the rule of
:func:`market.targets.compare`: with a published standard error, the z of the difference
(published and simulated errors combined) under 1.96; otherwise the declared tolerance.
Nothing is clamped: a moment the profiles do not produce is reported as missed.

The ablation (on unless ``--no-ablation``) then takes the calibrated week and sets each
capability of the second compared tier's profile (``small``) to the first's (``frontier``)
in turn, and all of them at once, each on the same held-out seeds, and reports what that
does to each tier gap (seller premium, buyer savings, extra deals per person), as the
change from the calibrated week paired by seed.

Output folder: ``calibration.json`` (everything above, with each trial's distance),
``calibrated.yaml`` (the scenario with the best parameters, its header saying so),
``report.html`` (the fit, written by the command through ``analysis.calibration_report``:
the engine writes no HTML; ``python -m analysis.calibration_report FOLDER`` writes it again),
``study.db`` (the Optuna study), ``trials/tNNNN/``, ``holdout/tNNNN/`` and ``ablation/NAME/``
(ordinary experiment folders with their runs). ``--write PATH`` also writes the calibrated scenario
there (its catalog and targets paths relative to it): that is how ``scenarios/deal.yaml`` is made.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from agents.offline import CAPABILITIES, NO_LIMIT, PROFILES, Profile, resolve_profile
from analysis.moments import interval, over_runs, run_moments
from market.files import write_whole
from market.scenario import Scenario, dump_scenario, load_scenario, quoted
from market.targets import NOT_SIMULATED, SIMULATED, Moment, Targets, read_targets
from running.run import BAD_INPUT
from studies.experiment import ExperimentError, design, run, validate_spec
from studies.factors import FactorError, apply, parse_path
from studies.sweep import Workers, open_workers

MAX_TRIALS = 100_000
MAX_SEEDS = 1_000
"""The most seeds per trial, and held-out seeds, a study runs."""
MAX_SAMPLER_SEED = 2**32 - 1
GAPS = ("seller_premium_cents", "buyer_savings_cents", "extra_deals_per_person")
"""The tier gaps the ablation reports (statistics of the targets' moments)."""
DISTANCE = ("sum(weight * ((simulated - published) / u)^2) over fitted moments, u the published standard error "
            "where there is one, else the declared tolerance")


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


def unit(moment: Moment) -> float:
    """The miss that counts as one unit of distance: the published standard error, else the declared tolerance."""
    return moment.se if moment.se is not None else moment.tolerance


def distance(simulated: dict[str, float], targets: Targets) -> float:
    """The declared distance (:data:`DISTANCE`) over the fitted moments."""
    total = 0.0
    for m in targets.moments:
        if not m.fit or m.weight == 0:
            continue
        value = simulated.get(m.name, math.nan)
        if math.isnan(value):
            return math.inf  # a run that has no units for a fitted moment cannot be scored
        total += m.weight * ((value - m.target) / unit(m)) ** 2
    return total


def settings(scenario: Scenario, fitted: Sequence[str], fixed: dict[str, str]) -> list[dict[str, Any]]:
    """Each capability of each offline tier's profile: fitted (with its path), fixed (with the reason) or
    neither (``undeclared``: it keeps its base's value and the scenario does not say why)."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for tier, tier_settings in scenario.tiers.items():
        name = tier_settings.profile or tier
        if tier_settings.backend != "offline" or name in seen:
            continue
        seen.add(name)
        if name not in scenario.profiles:
            rows.append({"profile": name, "tiers": [tier], "setting": "*", "status": "undeclared",
                         "detail": "a built-in profile: its settings are the code's, not declared in the scenario"})
            continue
        for setting, meaning in CAPABILITIES.items():
            path = f"profiles.{name}.{setting}"
            # a pair (a range) is covered element by element, or as a whole
            parts = [path] if not isinstance(getattr(PROFILES["frontier"], setting), tuple) else \
                [f"{path}[0]", f"{path}[1]"]
            fit = [p for p in (path, *parts) if p in fitted]
            held = {p: fixed[p] for p in (path, *parts) if p in fixed}
            covered = [p for p in parts if path in fitted or path in fixed or p in fitted or p in fixed]
            status = "undeclared" if len(covered) < len(parts) else "fitted" if not held else "fixed" if not fit \
                else "fitted in part, fixed in part"
            rows.append({"profile": name, "setting": setting, "meaning": meaning, "status": status,
                         "fitted": fit, "fixed": held})
    return rows


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
    fixed: dict[str, str] = field(default_factory=dict)  # path -> why it is held at its value
    command: str = ""  # how the study was asked for (the calibrated file's header repeats it)

    def values(self, params: dict[str, Any]) -> dict[str, Any]:
        """The scenario changes of one trial's parameters (path -> value)."""
        return {p.path: params[p.path] for p in self.parameters}

    def simulate(self, values: dict[str, Any], folder: Path, first_seed: int, count: int,
                 on: Workers) -> dict[str, list[float]]:
        """Run the scenario with ``values`` over seeds ``first_seed ..`` into ``folder`` on the study's
        workers; moments per run, in seed order (NaN where a run has no units for a moment)."""
        spec = validate_spec({"scenario": str(self.scenario_path), "replications": count, "seed": first_seed,
                              "common_seeds": True, "set": values}, "calibrate")
        plan = design(spec, None, self.scenario_path.parent, name=folder.name)
        record = run(plan, out=folder, on=on, report=False)
        if not record["complete"]:
            raise RuntimeError(f"{folder}: some runs did not complete")
        per_run: dict[str, list[float]] = {m.name: [] for m in self.targets.moments if m.statistic in SIMULATED}
        for entry in sorted(record["runs"], key=lambda e: e["seed"]):
            found = run_moments(folder / entry["run_dir"], self.targets.moments)
            for name, values_ in per_run.items():
                values_.append(found.get(name, math.nan))
        return per_run


def prepare(scenario: Path, targets: Path, params: Sequence[str], seeds: int, holdout: int, seed: int,
            command: str = "") -> Calibration:
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
    fixed = {path: why for path, why in base.calibration.fixed.items() if path not in chosen}
    for path in fixed:
        parse_path(path)
    return Calibration(scenario.resolve(), targets.resolve(), read_targets(targets), parsed, seeds, holdout, seed,
                       fixed, command)


def _paired(base: Sequence[float], other: Sequence[float]) -> tuple[float, float, float, int]:
    """Mean change from ``base`` to ``other`` over the seeds where both have a value, with its 95% t interval."""
    diffs = [o - b for b, o in zip(base, other, strict=True) if not (math.isnan(b) or math.isnan(o))]
    return interval(diffs)


def _scenario_value(setting: str, value: Any) -> Any:
    """A profile's value as a scenario's ``profiles:`` writes it (``None`` as all/never/any, pairs as lists)."""
    if value is None:
        return NO_LIMIT[setting]
    return list(value) if isinstance(value, tuple) else value


def ablation_plan(cal: Calibration, params: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The ablation's changes: each capability in which the second compared tier's profile differs from the
    first's, set to the first's value (a path under ``profiles:``), then all of them at once; or why none."""
    gaps = [m for m in cal.targets.moments if m.statistic in GAPS]
    if not gaps:
        return [], "the targets have no tier gap"
    first, second = gaps[0].compare
    base, catalog = load_scenario(cal.scenario_path)
    fitted = apply(base, catalog, cal.values(params), "ablation")
    names = {}
    for tier in (first, second):
        if tier not in fitted.tiers or fitted.tiers[tier].backend != "offline":
            return [], f"tier {tier!r} is not an offline tier of the scenario"
        names[tier] = fitted.tiers[tier].profile or tier
    if names[second] not in fitted.profiles:
        return [], f"the {second} tier's profile {names[second]!r} is built in; declare it under profiles: to ablate"
    strong: Profile = resolve_profile(names[first], fitted.profiles, first)
    weak: Profile = resolve_profile(names[second], fitted.profiles, second)
    changes = []
    for setting in CAPABILITIES:
        mine, theirs = getattr(weak, setting), getattr(strong, setting)
        if mine != theirs:
            changes.append({"name": setting, "meaning": CAPABILITIES[setting], "small": _scenario_value(setting, mine),
                            "frontier": _scenario_value(setting, theirs),
                            "set": {f"profiles.{names[second]}.{setting}": _scenario_value(setting, theirs)}})
    if len(changes) > 1:
        changes.append({"name": "all", "meaning": "every capability above at once (the two tiers' profiles equal)",
                        "small": None, "frontier": None,
                        "set": {k: v for c in changes for k, v in c["set"].items()}})
    return changes, ""


def run_ablation(cal: Calibration, params: dict[str, Any], held: dict[str, list[float]], held_seed: int, out: Path,
                 on: Workers, on_step: Any = None, seeds: int | None = None) -> dict[str, Any]:
    """Run each ablation change on the first ``seeds`` held-out seeds (all by default); each tier gap's value
    and change from the calibrated week on the same seeds."""
    count = min(seeds or cal.holdout, cal.holdout)
    changes, why = ablation_plan(cal, params)
    gaps = [m for m in cal.targets.moments if m.statistic in GAPS]
    held = {name: values[:count] for name, values in held.items()}  # in seed order: the first ``count`` seeds
    baseline = {m.name: dict(zip(("mean", "low", "high", "runs"), interval(held[m.name]), strict=True))
                for m in gaps}
    rows = []
    for change in changes:
        folder = out / "ablation" / change["name"]
        per_run = cal.simulate(cal.values(params) | change["set"], folder, held_seed, count, on)
        effects = {}
        for m in gaps:
            mean, low, high, n = interval(per_run[m.name])
            d_mean, d_low, d_high, d_n = _paired(held[m.name], per_run[m.name])
            effects[m.name] = {"statistic": m.statistic, "mean": mean, "low": low, "high": high, "runs": n,
                               "change": d_mean, "change_low": d_low, "change_high": d_high, "paired_runs": d_n}
        rows.append({k: change[k] for k in ("name", "meaning", "small", "frontier", "set")} | {"gaps": effects})
        if on_step:
            on_step(change["name"])
    which = "the" if count == cal.holdout else f"the first {count} of the"
    return {"seeds": f"{which} {cal.holdout} held-out seeds ({held_seed}..{held_seed + count - 1})",
            "seed_count": count, "baseline": baseline, "rows": rows,
            "note": why or "each row sets one capability of the small tier's profile to the frontier's value on "
            "the calibrated week (all: every one at once); change: paired by seed against the calibrated week"}


def calibrate(cal: Calibration, trials: int, out: Path, workers: int = 1, ray: str | None = None,
              on_trial: Any = None, ablation: bool = True, on_step: Any = None,
              ablation_seeds: int | None = None) -> dict[str, Any]:
    """Run (or continue) the study in ``out``; then the held-out check and the ablation. Returns
    calibration.json's record."""
    if not 1 <= trials <= MAX_TRIALS:
        raise ValueError(f"--trials must be 1 to {MAX_TRIALS:,}, got {trials}")
    with open_workers(workers, ray) as on:  # one set of workers for every trial, the check and the ablation
        return _study(cal, trials, out, on, on_trial, ablation, on_step, ablation_seeds)


def _study(cal: Calibration, trials: int, out: Path, on: Workers, on_trial: Any, ablation: bool, on_step: Any,
           ablation_seeds: int | None) -> dict[str, Any]:
    import optuna

    started = time.monotonic()
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
        per_run = cal.simulate(params, out / "trials" / f"t{trial.number:04d}", fit_seed, cal.seeds, on)
        means = {k: interval(v)[0] for k, v in per_run.items()}
        for name, value in means.items():
            trial.set_user_attr(name, value)
        return distance(means, cal.targets)

    done = len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE])
    for _ in range(max(0, trials - done)):
        study.optimize(objective, n_trials=1)
        if on_trial:
            on_trial(study)
    fit_seconds = time.monotonic() - started
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    # the search's wall time over every sitting of a resumed study: each trial's own time, as Optuna stored it
    search_seconds = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in complete
                         if t.datetime_complete and t.datetime_start)
    best = study.best_trial
    held_seed = cal.seed + 1_000_003  # fresh seeds, never among the fit's
    held_dir = out / "holdout" / f"t{best.number:04d}"  # the best trial's check (kept if a later study improves)
    held = cal.simulate(cal.values(best.params), held_dir, held_seed, cal.holdout, on)
    table = []
    for m in cal.targets.moments:
        values = held.get(m.name, [])
        row = over_runs(m, values)
        mean, low, high, n = interval(values)
        spread = unit(m)
        table.append({"moment": m.name, "statistic": m.statistic, "target": m.target, "tolerance": m.tolerance,
                      "se": m.se, "published_low": m.target - 1.96 * m.se if m.se is not None else m.target - spread,
                      "published_high": m.target + 1.96 * m.se if m.se is not None else m.target + spread,
                      "weight": m.weight, "fitted": m.fit, "simulated": mean, "low": low, "high": high, "runs": n,
                      "fit_mean": best.user_attrs.get(m.name),
                      "inside": row.inside, "rule": row.rule or ("" if row.inside is None else
                                                                 "within the declared tolerance" if row.inside
                                                                 else "beyond the declared tolerance"),
                      "source": m.source, "certainty": m.certainty,
                      "why_not_simulated": NOT_SIMULATED.get(m.statistic)})
    held_seconds = time.monotonic() - started - fit_seconds
    try:
        importance = {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except (RuntimeError, ValueError) as exc:
        importance = {"note": f"not estimated ({exc})"}
    base, _ = load_scenario(cal.scenario_path)
    record: dict[str, Any] = {
        "scenario": str(cal.scenario_path), "targets": str(cal.targets_path), "targets_name": cal.targets.name,
        "command": cal.command, "distance": DISTANCE,
        "parameters": [{"path": p.path, "low": p.low, "high": p.high, "integer": p.integer} for p in cal.parameters],
        "fixed": cal.fixed, "settings": settings(base, [p.path for p in cal.parameters], cal.fixed),
        "sampler": f"optuna TPE (seed {cal.seed}; not noise-aware: {cal.seeds} common seeds per trial)",
        "trials": len(complete), "seeds_per_trial": cal.seeds, "fit_seeds": [fit_seed + i for i in range(cal.seeds)],
        "holdout_seeds": [held_seed + i for i in range(cal.holdout)], "workers": on.workers,
        "best": {"trial": best.number, "distance": best.value, "params": best.params},
        "history": [{"trial": t.number, "distance": t.value} for t in study.trials if t.value is not None],
        "fit": table, "sensitivity": importance,
        "unreached": [r["moment"] for r in table if r["inside"] is False],
        "wall_seconds": {"search": round(search_seconds, 1), "holdout": round(held_seconds, 1)},
    }
    if ablation:
        ablation_started = time.monotonic()
        record["ablation"] = run_ablation(cal, best.params, held, held_seed, out, on, on_step,
                                          ablation_seeds)
        record["wall_seconds"]["ablation"] = round(time.monotonic() - ablation_started, 1)
    record["wall_seconds"]["total"] = round(search_seconds + time.monotonic() - started - fit_seconds, 1)
    record["written"] = datetime.now().isoformat(timespec="seconds")
    (out / "calibration.json").write_text(json.dumps(record, indent=2, default=_json) + "\n", encoding="utf-8")
    write_scenario(cal, best.params, record, out / "calibrated.yaml")
    return record


def _json(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else str(value)


def header(cal: Calibration, params: dict[str, Any], record: dict[str, Any]) -> list[str]:
    """The calibrated scenario's header: how it was made, each setting fitted or fixed and why, the fit."""
    base, _ = load_scenario(cal.scenario_path)
    seconds = record["wall_seconds"]
    lines = [f"# {base.description}" if base.description else f"# {base.name}",
             "# This file is written by the calibration; do not edit it by hand. Made by:",
             f"#   {cal.command or 'python -m market.calibrate (arguments not recorded)'}",
             f"# against {cal.targets_path.name} ({cal.targets.name}): {record['trials']} trials x {cal.seeds} seeds "
             f"({record['sampler']}), checked on {cal.holdout} held-out seeds "
             f"({record['holdout_seeds'][0]}..{record['holdout_seeds'][-1]}); wall time "
             f"{seconds['total'] / 60:.0f} min on {record['workers']} worker(s) ("
             + ", ".join(f"{k} {v / 60:.0f} min" for k, v in seconds.items() if k != "total") + ").",
             f"# Best distance {record['best']['distance']:.3g}: {record['distance']}.",
             "# Fitted (value, bounds):",
             *(f"#   {p.path} = {_fmt(params[p.path])}  [{_fmt(p.low)}, {_fmt(p.high)}]" for p in cal.parameters),
             "# Held at their value, with the reason (calibration.fixed):",
             *(f"#   {path}: {why}" for path, why in cal.fixed.items())]
    undeclared = [r for r in record["settings"] if r["status"] == "undeclared"]
    if undeclared:
        lines += ["# Neither fitted nor fixed with a reason (the base's value):",
                  *(f"#   {r['profile']}.{r['setting']}: {r['status']}" for r in undeclared)]
    lines.append("# Held-out fit: published (95% interval) -> simulated mean [95% t interval], inside by "
                 "market.targets.compare:")
    for row in record["fit"]:
        published = f"{_fmt(row['target'])} ({_fmt(row['published_low'])} to {_fmt(row['published_high'])})"
        if row["why_not_simulated"]:
            lines.append(f"#   {row['moment']}: {published}, not simulated")
        else:
            lines.append(f"#   {row['moment']}: {published} -> {_fmt(row['simulated'])} [{_fmt(row['low'])}, "
                         f"{_fmt(row['high'])}] {'inside' if row['inside'] else 'NOT inside'} ({row['rule']})")
    ablation = record.get("ablation")
    if ablation and ablation["rows"]:
        lines.append(f"# Ablation (small tier's capability set to the frontier's; change of each gap on "
                     f"{ablation['seeds']}, paired by seed):")
        for row in ablation["rows"]:
            parts = [f"{name} {_signed(g['change'])} [{_signed(g['change_low'])}, {_signed(g['change_high'])}]"
                     for name, g in row["gaps"].items()]
            lines.append(f"#   {row['name']}: " + "; ".join(parts))
    elif ablation:
        lines.append(f"# Ablation not run: {ablation['note']}")
    lines.append("# The offline profiles remain modelling assumptions; calibration fits them to the figures above.")
    return lines


def _signed(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:+,.3g}" if abs(value) < 1000 else f"{value:+,.0f}"


def write_scenario(cal: Calibration, params: dict[str, Any], record: dict[str, Any], target: Path) -> None:
    """The scenario with the best parameters, its header saying it was calibrated, to what and how well."""
    base, catalog = load_scenario(cal.scenario_path)
    fitted = apply(base, catalog, cal.values(params), "calibrated")
    lines = header(cal, params, record)
    catalog_path = os.path.relpath(cal.scenario_path.parent / base.catalog, target.parent)
    targets = {"targets": os.path.relpath(cal.scenario_path.parent / base.targets, target.parent)} \
        if base.targets else {}
    body = dump_scenario(fitted.model_copy(update={"catalog": catalog_path, **targets}))
    text = "\n".join(lines) + "\n" + body
    write_whole(target, text)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
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
    trials: Annotated[int, typer.Option(help="trials in the study (an interrupted study continues)")] = 30,
    seeds: Annotated[int, typer.Option(help="seeds per trial (the same in every trial)")] = 8,
    holdout: Annotated[int, typer.Option(help="fresh seeds for the final check and the ablation")] = 20,
    seed: Annotated[int, typer.Option(help="seed of the sampler and first fit seed")] = 1,
    workers: Annotated[int, typer.Option(help="local worker processes")] = 1,
    ray: Annotated[str | None, typer.Option("--ray", help="run on Ray: local, auto, or HOST:PORT")] = None,
    no_ablation: Annotated[bool, typer.Option("--no-ablation", help=(
        "skip the ablation (by default, after the fit, each capability of the small tier is set to the frontier's "
        "in turn on the held-out seeds)"))] = False,
    ablation_seeds: Annotated[int | None, typer.Option(min=2, help=(
        "run the ablation on the first N held-out seeds only (default: all of them), to fit a time budget"))] = None,
    write: Annotated[Path | None, typer.Option(help=(
        "also write the calibrated scenario here (e.g. scenarios/deal.yaml), its paths relative to it"))] = None,
    out: Annotated[Path | None, typer.Option(help="study folder (default runs/calibrate/<targets>-<time>)")] = None,
) -> None:
    """Fit offline profile parameters to published figures by simulation (Optuna TPE), check them on held-out
    seeds and say what drives each tier gap (ablation)."""
    console = Console()
    command = " ".join(["python -m market.calibrate", *map(shlex.quote, sys.argv[1:])]) if sys.argv[1:] else ""
    try:
        cal = prepare(scenario, targets, param or [], seeds, holdout, seed, command)
        folder = out or Path("runs/calibrate") / f"{cal.targets.name}-{datetime.now():%Y%m%d-%H%M%S}"
        record = calibrate(cal, trials, folder, workers, ray, on_trial=lambda s: console.print(
            f"trial {s.trials[-1].number}: distance {_fmt(s.trials[-1].value)} (best {_fmt(s.best_value)})",
            highlight=False), ablation=not no_ablation,
            on_step=lambda name: console.print(f"ablation: {name} done", highlight=False),
            ablation_seeds=ablation_seeds)
        if write is not None:
            write_scenario(cal, record["best"]["params"], record, write)
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
            + ("  inside" if row["inside"] else "  NOT inside") + f" ({row['rule']})")
        console.print(f"{row['moment']:>28}: published {_fmt(row['target']):>8}  simulated {note}", highlight=False)
    print(f"calibrated scenario: {folder / 'calibrated.yaml'}" + (f" and {write}" if write else "")
          + f"\nreport: {page}")


if __name__ == "__main__":
    app(prog_name="python -m market.calibrate")

