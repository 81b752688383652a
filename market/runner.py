"""Running a scenario into a run folder, and resuming one from its ledger.

This is the programmatic API behind ``python -m market.run``: validate
everything first (nothing is written before the scenario, its catalog and its
backends check out), then create the folder, run the engine into the ledger,
and write the summary. A resumed run replays the same seeded simulation,
checks every event against its ledger, and appends only what is new.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from market.backends import BackendContext, Policy, build_policies, distinct
from market.engine import Entry, MarketModel
from market.ledger import Ledger
from market.runfolder import RunFolder
from market.scenario import Scenario, build_participants, dump_scenario, load_scenario
from market.summary import summarize

AFTER_RUN_GROUP = "market.after_run"


class ResumeError(RuntimeError):
    """A resumed run that does not match its ledger."""


@dataclass
class Plan:
    """A validated scenario, ready to run: nothing written yet."""

    scenario: Scenario
    catalog_path: Path
    participants: list[Any]
    policies: dict[str, Policy]


@dataclass
class RunResult:
    folder: RunFolder
    summary: dict[str, Any]
    complete: bool
    stopped: str | None = None
    model: MarketModel | None = field(default=None, repr=False)


def plan(
    scenario_path: Path | str,
    *,
    seed: int | None = None,
    days: int | None = None,
    markets: Sequence[str] | None = None,
    tiers: dict[str, dict[str, Any]] | None = None,
    run_dir: Path | None = None,
    options: dict[str, Any] | None = None,
) -> Plan:
    """Load and check a scenario with command-line overrides; writes nothing."""
    overrides: dict[str, Any] = {}
    if seed is not None:
        overrides["seed"] = seed
    if days is not None:
        overrides["days"] = days
    scenario, catalog = load_scenario(scenario_path, overrides)
    if markets:
        known = [m.name for m in scenario.markets]
        unknown = [m for m in markets if m not in known]
        if unknown:
            raise ValueError(f"--markets: unknown market {', '.join(unknown)} (scenario has {', '.join(known)})")
        scenario = scenario.model_copy(update={"markets": [m for m in scenario.markets if m.name in markets]})
    if tiers:
        merged = {
            name: settings.model_copy(update=tiers.get(name, {})) for name, settings in scenario.tiers.items()
        }
        scenario = scenario.model_copy(update={"tiers": merged})
    catalog_path = Path(scenario_path).parent / scenario.catalog
    people = build_participants(scenario, catalog)
    policies = build_policies(BackendContext(scenario=scenario, run_dir=run_dir, options=dict(options or {})))
    return Plan(scenario=scenario, catalog_path=catalog_path, participants=people, policies=policies)


def start(
    prepared: Plan,
    folder: RunFolder,
    on_batch: Callable[[MarketModel, int], None] | None = None,
    until: int | None = None,
    after_run: bool = True,
) -> RunResult:
    """Write the resolved scenario into ``folder`` and run it (then the after-run plugins)."""
    resolved = prepared.scenario.model_copy(update={"catalog": "catalog.csv"})
    folder.scenario.write_text(dump_scenario(resolved), encoding="utf-8")
    shutil.copyfile(prepared.catalog_path, folder.catalog)
    with Ledger(folder.ledger, create=True) as ledger:
        ledger.set_status("state", "running")
        return _run(prepared, folder, ledger, ledger.append_many, on_batch, until, after_run)


def resume(
    folder: RunFolder,
    on_batch: Callable[[MarketModel, int], None] | None = None,
    tiers: dict[str, dict[str, Any]] | None = None,
    until: int | None = None,
    options: dict[str, Any] | None = None,
) -> RunResult:
    """Continue a run from its ledger; byte-identical to an uninterrupted run."""
    prepared = plan(folder.scenario, tiers=tiers, run_dir=folder.path, options=options)
    with Ledger(folder.ledger) as ledger:
        if ledger.status("state") == "complete":
            summary = json.loads(folder.summary.read_text()) if folder.summary.exists() else {}
            return RunResult(folder=folder, summary=summary, complete=True)
        checker = _Verifier(ledger)
        return _run(prepared, folder, ledger, checker, on_batch, until, after_run=True)


def _run(
    prepared: Plan,
    folder: RunFolder,
    ledger: Ledger,
    sink: Callable[[Sequence[Entry]], None],
    on_batch: Callable[[MarketModel, int], None] | None,
    until: int | None,
    after_run: bool,
) -> RunResult:
    with _opened(prepared.policies, folder.path):
        model = MarketModel(prepared.scenario, prepared.participants, prepared.policies, sink, on_batch)
        model.run(until)
        complete = model.stop_requested is None and model.now >= prepared.scenario.duration - 1
        summary = {
            "scenario": prepared.scenario.name,
            "seed": prepared.scenario.seed,
            "complete": complete,
            "stopped": model.stop_requested,
            "simulated_seconds": model.now,
            "events": ledger.last_seq,
            "markets": [summarize(m.name, m.state) for m in model.markets],
        }
        for extra in _extras(prepared.policies):
            summary.update(extra)
        folder.summary.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        if complete:
            ledger.set_status("state", "complete")
            if after_run:
                _after_run(folder)
        return RunResult(folder=folder, summary=summary, complete=complete, stopped=model.stop_requested, model=model)


@contextmanager
def _opened(policies: dict[str, Policy], run_dir: Path) -> Iterator[None]:
    """Each shared policy told the run folder first (``open_run``: e.g. where model calls are
    recorded) and closed at the end (``close``: e.g. model clients and their event loop)."""
    try:
        for policy in distinct(policies):
            opener = getattr(policy, "open_run", None)
            if opener is not None:
                opener(run_dir)
        yield
    finally:
        for policy in distinct(policies):
            closer = getattr(policy, "close", None)
            if closer is not None:
                closer()


def _extras(policies: dict[str, Policy]) -> list[dict[str, Any]]:
    """Figures a backend adds to the summary (tokens, cost, faults), if it has any."""
    return [p.summary() for p in distinct(policies) if hasattr(p, "summary")]


def _after_run(folder: RunFolder) -> None:
    """Plugins that act on a finished run (e.g. the analysis report)."""
    for ep in sorted(entry_points(group=AFTER_RUN_GROUP), key=lambda e: e.name):
        ep.load()(folder.path)


class _Verifier:
    """A sink that checks replayed events against the ledger, then appends new ones."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.recorded = list(ledger.export_lines())
        self.position = 0
        self.total = len(self.recorded)

    def __call__(self, entries: Sequence[Entry]) -> None:
        fresh = []
        for market, event in entries:
            if self.position < self.total:
                expected = self.recorded[self.position]
                self.position += 1
                line = f'{{"seq":{self.position},"market":{json.dumps(market)},"event":{event.model_dump_json()}}}'
                if line != expected:
                    raise ResumeError(
                        f"the resumed run diverged from its ledger at event {self.position}: "
                        f"recorded {expected[:200]}, now {line[:200]}"
                    )
            else:
                fresh.append((market, event))
        self.ledger.append_many(fresh)
