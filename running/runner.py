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
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from market.backends import BackendContext, Policy, build_policies, distinct
from market.engine import Entry, MarketModel
from market.events import event_json
from market.files import write_whole
from market.ledger import Ledger
from market.scenario import Scenario, budget_warnings, build_participants, clipped, dump_scenario, load_scenario
from market.targets import TARGETS_FILE, read_targets
from running.runfolder import RunFolder, RunFolderError
from running.summary import Failures, RunSummary, summarize

AFTER_RUN_GROUP = "market.after_run"
INTERRUPTED = "interrupted (Ctrl-C)"


class ResumeError(RuntimeError):
    """A resumed run that does not match its ledger."""


@dataclass
class Plan:
    """A validated scenario, ready to run: nothing written yet."""

    scenario: Scenario
    catalog_path: Path
    participants: list[Any]
    policies: dict[str, Policy]
    targets_path: Path | None = None  # the published figures the scenario names (checked), copied into the run
    warnings: list[str] = field(default_factory=list)  # doubtful settings (a budget that buys nothing), shown first


@dataclass
class RunResult:
    """What a run (or a resumed run) produced: its folder, its summary, how it ended.

    ``status`` is ``complete``, ``stopped`` (``stopped`` says why, ``cause`` is a short
    code: ``interrupted``, ``fatal``, ``circuit_breaker``, ``max_cost``, ``requested``)
    or ``incomplete`` (run ``until`` a time before the end). ``policies`` are the run's
    own policies, still open while the after-run plugins get this result.
    """

    folder: RunFolder
    summary: RunSummary | None  # None only for a complete run whose summary.json was removed
    complete: bool
    stopped: str | None = None
    cause: str | None = None
    policies: dict[str, Policy] = field(default_factory=dict, repr=False)
    model: MarketModel | None = field(default=None, repr=False)

    @property
    def status(self) -> str:
        """``complete``, ``stopped`` or ``incomplete`` (summary.json's ``status``)."""
        return "complete" if self.complete else "stopped" if self.stopped else "incomplete"


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
            raise ValueError(f"--markets: unknown market {clipped(', '.join(unknown))} "
                             f"(scenario has {', '.join(known)})")
        scenario = scenario.model_copy(update={"markets": [m for m in scenario.markets if m.name in markets]})
    if tiers:
        unknown = [name for name in tiers if name not in scenario.tiers]
        if unknown:
            raise ValueError(f"--backend: unknown tier {clipped(', '.join(unknown))} "
                             f"(scenario has {', '.join(scenario.tiers)})")
        merged = {
            name: settings.model_copy(update=tiers.get(name, {})) for name, settings in scenario.tiers.items()
        }
        scenario = scenario.model_copy(update={"tiers": merged})
    catalog_path = Path(scenario_path).parent / scenario.catalog
    targets_path = Path(scenario_path).parent / scenario.targets if scenario.targets else None
    if targets_path is not None:
        read_targets(targets_path)  # a bad targets file is bad input before anything runs
    people = build_participants(scenario, catalog)
    policies = build_policies(BackendContext(scenario=scenario, run_dir=run_dir, options=dict(options or {})))
    return Plan(scenario=scenario, catalog_path=catalog_path, participants=people, policies=policies,
                targets_path=targets_path, warnings=budget_warnings(scenario, people))


def start(
    prepared: Plan,
    folder: RunFolder,
    on_batch: Callable[[MarketModel, int], None] | None = None,
    until: int | None = None,
    after_run: bool = True,
) -> RunResult:
    """Write the resolved scenario into ``folder`` and run it (then the after-run plugins).

    In the main thread, Ctrl-C during the run asks it to stop after the current batch
    (the result's ``cause`` is ``interrupted``); a second Ctrl-C raises ``KeyboardInterrupt``.
    """
    targets = {"targets": TARGETS_FILE} if prepared.targets_path is not None else {}
    resolved = prepared.scenario.model_copy(update={"catalog": "catalog.csv", **targets})
    if prepared.targets_path is not None:
        write_whole(folder.path / TARGETS_FILE, prepared.targets_path.read_text(encoding="utf-8"))
    write_whole(folder.scenario, dump_scenario(resolved))
    partial = folder.catalog.with_name(folder.catalog.name + ".partial")
    shutil.copyfile(prepared.catalog_path, partial)
    partial.replace(folder.catalog)
    with Ledger(folder.ledger, create=True) as ledger:
        ledger.set_status("state", "running")
        return _run(prepared, folder, ledger, ledger.append_many, on_batch, until, after_run)


def resume(
    folder: RunFolder,
    on_batch: Callable[[MarketModel, int], None] | None = None,
    tiers: dict[str, dict[str, Any]] | None = None,
    until: int | None = None,
    options: dict[str, Any] | None = None,
    after_run: bool = True,
) -> RunResult:
    """Continue a run from its ledger; byte-identical to an uninterrupted run.

    A run that was stopped (Ctrl-C, a fatal model error, the circuit breaker, a cost cap)
    goes on from where it stopped; a complete run only finishes the after-run steps it has
    not done yet; a folder whose ledger was never created starts the run from its beginning.
    """
    prepared = plan(folder.scenario, tiers=tiers, run_dir=folder.path, options=options)
    if not folder.ledger.is_file():  # stopped while it was being created: nothing ran yet
        with Ledger(folder.ledger, create=True) as ledger:
            ledger.set_status("state", "running")
            return _run(prepared, folder, ledger, ledger.append_many, on_batch, until, after_run)
    with Ledger(folder.ledger) as ledger:
        if ledger.status("state") == "complete":
            summary = _read_summary(folder)
            result = RunResult(folder=folder, summary=summary, complete=True, policies=prepared.policies)
            if after_run:
                with _opened(prepared.policies, folder.path), _CtrlC() as ctrl_c:
                    _after_run(result, ledger, ctrl_c)
            return result
        ledger.set_status("state", "running")
        checker = _Verifier(ledger)
        return _run(prepared, folder, ledger, checker, on_batch, until, after_run)


def _read_summary(folder: RunFolder) -> RunSummary | None:
    """A complete run's summary.json (None if there is none); ``RunFolderError`` saying the run is safe."""
    try:
        return folder.read_summary()
    except RunFolderError as exc:
        raise RunFolderError(f"{exc}; the run is complete and its ledger holds every event "
                             "(market report reads it)") from None


def _run(
    prepared: Plan,
    folder: RunFolder,
    ledger: Ledger,
    sink: Callable[[Sequence[Entry]], None],
    on_batch: Callable[[MarketModel, int], None] | None,
    until: int | None,
    after_run: bool,
) -> RunResult:
    with _opened(prepared.policies, folder.path), _CtrlC() as ctrl_c:
        model = MarketModel(prepared.scenario, prepared.participants, prepared.policies, sink, on_batch)
        ctrl_c.watch(model)
        model.run(until)
        complete = model.stopped is None and model.now >= prepared.scenario.duration - 1
        # a stop asked after the last batch stopped nothing, but a Ctrl-C then still skips the after-run steps
        result = RunResult(
            folder=folder, summary=None, complete=complete,
            stopped=None if complete else model.stopped or model.stop_requested,
            cause=model.stop_cause if not complete or model.stop_cause == "interrupted" else None,
            policies=prepared.policies, model=model,
        )
        result.summary = _summary(prepared, model, ledger, result)
        result.summary.write(folder.summary)
        if complete:
            ledger.set_status("state", "complete")
            if after_run and result.cause != "interrupted":
                _after_run(result, ledger, ctrl_c)
        elif result.stopped:
            ledger.set_status("state", "stopped")
        return result


def _summary(prepared: Plan, model: MarketModel, ledger: Ledger, result: RunResult) -> RunSummary:
    """summary.json: how the run ended, its figures per market and tier, its faults, its policies' figures."""
    limits = prepared.scenario.failures
    summary = RunSummary(
        scenario=prepared.scenario.name,
        seed=prepared.scenario.seed,
        status=result.status,
        complete=result.complete,
        stopped=result.stopped,
        stop_cause=result.cause,
        simulated_seconds=model.now,
        events=ledger.last_seq,
        markets=[summarize(m.name, m.state, prepared.scenario.days) for m in model.markets],
        failures=Failures.model_validate(
            {"max_share": limits.max_share, "window": limits.window, "tiers": model.fault_counts()}),
    )
    sections: dict[str, Any] = {}
    for policy in distinct(prepared.policies):
        sections.update(policy.summary())
    return summary.with_sections(sections) if sections else summary


@contextmanager
def _opened(policies: dict[str, Policy], run_dir: Path) -> Iterator[None]:
    """Each shared policy told the run folder first (``open_run``: e.g. where model calls are
    recorded) and closed at the end (``close``: e.g. model clients and their event loop)."""
    try:
        for policy in distinct(policies):
            policy.open_run(run_dir)
        yield
    finally:
        for policy in distinct(policies):
            policy.close()


class _CtrlC:
    """Ctrl-C while a run is under way (main thread only), never lost and never cutting a step in half.

    The first Ctrl-C asks the clock to stop after the current batch, or, in the after-run
    phase, stops before the next step; a second one raises ``KeyboardInterrupt`` at once.
    """

    def __init__(self) -> None:
        self.pressed = False
        self.model: MarketModel | None = None
        self._installed = False
        self._previous: Any = None

    def __enter__(self) -> _CtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._press)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous if self._previous is not None else signal.SIG_DFL)

    def watch(self, model: MarketModel) -> None:
        """The run's clock, told of a Ctrl-C pressed from now on (or already, while it was being set up)."""
        self.model = model
        if self.pressed:
            model.stop(INTERRUPTED, cause="interrupted")

    def _press(self, _signum: int, _frame: object) -> None:
        self.pressed = True
        if self.model is not None:
            self.model.stop(INTERRUPTED, cause="interrupted")
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _after_run(result: RunResult, ledger: Ledger, ctrl_c: _CtrlC) -> None:
    """Plugins that act on a finished run (e.g. the fairness survey, then the report), in name order.

    Each step is marked done in the ledger (``after_run.<name>``) once it returns, so a
    run killed during this phase and resumed does the remaining steps only. After a
    Ctrl-C no further step starts (the result's ``cause`` becomes ``interrupted``).
    """
    for ep in sorted(entry_points(group=AFTER_RUN_GROUP), key=lambda e: e.name):
        key = f"after_run.{ep.name}"
        if ledger.status(key) == "done":
            continue
        if ctrl_c.pressed:
            result.cause = "interrupted"
            return
        ep.load()(result)
        ledger.set_status(key, "done")


def after_run_steps(ledger: Ledger) -> dict[str, bool]:
    """Each after-run plugin and whether it is done for the run of ``ledger``."""
    names = sorted(ep.name for ep in entry_points(group=AFTER_RUN_GROUP))
    return {name: ledger.status(f"after_run.{name}") == "done" for name in names}


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
                line = f'{{"seq":{self.position},"market":{json.dumps(market)},"event":{event_json(event)}}}'
                if line != expected:
                    raise ResumeError(
                        f"the resumed run diverged from its ledger at event {self.position}: "
                        f"recorded {expected[:200]}, now {line[:200]}"
                    )
            else:
                fresh.append((market, event))
        self.ledger.append_many(fresh)
