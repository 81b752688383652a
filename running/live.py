"""A live week: the run folder, the ledger and the engine on a real-time clock, in one thread.

``LiveRun`` creates the run folder (or opens an existing one, which resumes the week from
its ledger), owns the engine thread and its ledger connection, and is the port the edges
(the Slack bot, the live page) use: :class:`LiveMarket` declares it. ``follow`` receives every
event (the history first, then each batch as it is written to the ledger), ``join`` and
``submit`` queue people's actions for the next tick under the exchange's rules, ``set_policy``
gives a person's agent (or none) before their next turn, ``snapshot`` is what the live page draws.
``resume``/``pause`` move the clock, ``finish`` ends the week and ``close`` stops. Nothing else of
the engine is reached from outside: a run the offline runner drives is shown through the same
:class:`Snapshot` (:func:`watch_hook`).
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import simpy.rt

from market import exchange
from market.actions import Action
from market.backends import BackendContext, Policy, build_policies
from market.clock import HOUR
from market.domain import Participant
from market.engine import Entry, MarketModel
from market.events import Event
from market.ledger import Ledger
from market.scenario import CatalogEntry, Scenario, build_participants, dump_scenario, load_catalog, load_scenario
from market.state import MarketState
from running.hooks import OnBatch
from running.runfolder import RunFolder

log = logging.getLogger("running.live")
Follower = Callable[[int, str, Event, bool], None]
"""(ledger seq, market, event, replayed from an earlier start) -> None; called on the engine thread."""


@dataclass(frozen=True)
class MarketView:
    """One market as the live page draws it: its ``state`` (the projection of its events) and each
    participant's tier (participant id -> tier). Read-only for whoever is handed it."""

    name: str
    state: MarketState = field(default_factory=MarketState)
    tiers: dict[str, str] = field(default_factory=dict)


class Snapshot:
    """What the live page draws of a run the engine is running: its markets, their hourly rows, the clock.

    It reads the run as it stands when asked: on the engine thread (a follower, a run hook) or while
    the clock is paused it is consistent; the hourly rows are those of the engine's own collector
    (the columns of ``market.hourly``).
    """

    def __init__(self, model: MarketModel) -> None:
        self._model = model

    @property
    def clock(self) -> int:
        """The simulated second."""
        return self._model.now

    @property
    def tiers(self) -> tuple[str, ...]:
        """The scenario's tiers, in order (the hourly rows have a money column for each)."""
        return tuple(self._model.scenario.tiers)

    @property
    def week_end(self) -> tuple[int, int]:
        """(the week's length in simulated seconds, the hour its working days close)."""
        scenario = self._model.scenario
        return scenario.duration, scenario.working_hours.end

    @property
    def stopping(self) -> bool:
        """True once something asked the run to stop (a cost cap, Ctrl-C): it ends after this batch."""
        return self._model.stop_requested is not None

    def markets(self) -> list[MarketView]:
        """Every market, in the scenario's order."""
        return [MarketView(m.name, m.state, m.tiers) for m in self._model.markets]

    def hourly(self, market: str) -> list[dict[str, Any]]:
        """``market``'s hourly rows so far, oldest first (no rows for a market the run does not have)."""
        table = self._model.datacollector.tables["hourly"]
        keep = [i for i, name in enumerate(table["market"]) if name == market]
        return [{column: values[i] for column, values in table.items()} for i in keep]


def watch_hook(show: Callable[[Snapshot, int], None]) -> OnBatch:
    """A run hook (``running.hooks``) handing ``show`` the run's :class:`Snapshot` and the simulated second
    after each batch: how a page watches a run the offline runner drives without reaching into the engine."""

    def on_batch(model: MarketModel, at: int) -> None:
        show(Snapshot(model), at)

    return on_batch


class LiveMarket(ABC):
    """The live-run port: all an edge (Slack, the live page) does with a running week.

    Every method may be called from any thread; none blocks on the clock. People's actions go
    through the same exchange rules as every agent's, applied at the next tick.
    """

    @abstractmethod
    def follow(self, follower: Follower) -> None:
        """Hear every event: ``follower(seq, market, event, replayed)`` on the engine thread, the ledger's
        history first (``replayed`` True), then each batch once it is in the ledger. Register before the
        run starts; returns nothing."""

    @abstractmethod
    def join(self, market: str, person: Participant, policy: Policy | None) -> Future[exchange.Outcome]:
        """Queue a newcomer to ``market`` with their agent (``policy=None``: a person trading by hand).

        The future's result, at the next tick, is the ``ParticipantJoined`` event or the exchange's
        ``Rejection`` (already joined). Raises ``RuntimeError`` before the run started."""

    @abstractmethod
    def submit(self, market: str, participant_id: str, action: Action) -> Future[exchange.Outcome]:
        """Queue ``participant_id``'s ``action`` in ``market``; the future's result, at the next tick, is the
        events it caused or the exchange's ``Rejection`` with its reason. Raises ``RuntimeError`` before the
        run started."""

    @abstractmethod
    def set_policy(self, market: str, participant_id: str, policy: Policy | None) -> None:
        """Give a participant their agent (``None``: they trade by hand), from their next turn on.

        Called before the run's clock first moves (e.g. from a follower replaying the history) it holds
        from the start. A participant the market does not have when it applies is left as is (logged)."""

    @abstractmethod
    def agent(self, tier: str) -> Policy:
        """The agent of ``tier`` (what ``set_policy`` may wrap); ``KeyError`` for a tier the scenario lacks."""

    @abstractmethod
    def snapshot(self) -> Snapshot:
        """What the live page draws now (markets, hourly rows, clock); ``RuntimeError`` before the run started."""


class LiveRun(LiveMarket):
    """One week on a real-time clock (``speed`` simulated seconds per real second): the :class:`LiveMarket`
    port, and the clock (``resume``, ``pause``, ``finish``, ``close``) for whoever hosts the week."""

    def __init__(self, scenario_path: Path | str, *, out: Path | None = None, root: Path = Path("runs"),
                 speed: float = 1.0) -> None:
        self.speed = speed
        self.resumed = out is not None and (Path(out) / "ledger.sqlite").is_file()
        if self.resumed:
            self.folder = RunFolder.open(out)  # type: ignore[arg-type]
            self.scenario: Scenario = load_scenario(self.folder.scenario)[0]
            self.catalog: list[CatalogEntry] = load_catalog(self.folder.catalog)
        else:
            self.scenario, self.catalog = load_scenario(scenario_path)
            self.folder = RunFolder.create(root, self.scenario.name, exact=Path(out) if out else None)
            resolved = self.scenario.model_copy(update={"catalog": "catalog.csv"})
            self.folder.scenario.write_text(dump_scenario(resolved), encoding="utf-8")
            src = Path(scenario_path).parent / self.scenario.catalog
            self.folder.catalog.write_bytes(src.read_bytes())
        self.policies: dict[str, Policy] = build_policies(
            BackendContext(scenario=self.scenario, run_dir=self.folder.path))
        self.model: MarketModel | None = None  # the engine's; the edges use the port's methods, never this
        self.running = threading.Event()  # the clock moves only while set
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self._followers: list[Follower] = []
        self._policies: dict[tuple[str, str], Policy | None] = {}  # set_policy's, until the engine applies them
        self._policies_lock = threading.Lock()
        self._ready = threading.Event()
        self._quit = False
        self._ledger: Ledger | None = None
        self._thread: threading.Thread | None = None

    # --- the port -------------------------------------------------------------------------------
    def follow(self, follower: Follower) -> None:
        """Receive every event; register before ``start``."""
        self._followers.append(follower)

    def join(self, market: str, person: Participant, policy: Policy | None) -> Future[exchange.Outcome]:
        """Queue a newcomer (``policy=None``: a person trading by hand)."""
        return self._started().join(market, person, policy)

    def submit(self, market: str, participant_id: str, action: Action) -> Future[exchange.Outcome]:
        """Queue a person's action for the next tick."""
        return self._started().submit(market, participant_id, action)

    def set_policy(self, market: str, participant_id: str, policy: Policy | None) -> None:
        """Give a participant their agent from their next turn on (applied on the engine thread: after the
        model is built and before the clock first moves, then before each step of the clock)."""
        with self._policies_lock:
            self._policies[(market, participant_id)] = policy

    def agent(self, tier: str) -> Policy:
        """The agent of ``tier``, as the scenario's backends built it."""
        return self.policies[tier]

    def snapshot(self) -> Snapshot:
        """What the live page draws now."""
        return Snapshot(self._started())

    def _started(self) -> MarketModel:
        if self.model is None:
            raise RuntimeError("the live run has not started: call start() first")
        return self.model

    @property
    def now(self) -> int:
        """The simulated second."""
        return self.model.now if self.model is not None else 0

    # --- the clock ----------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> None:
        """Start the engine thread and wait up to ``timeout`` seconds for it to be ready (the history told
        to the followers, the policies set so far applied); the clock stands still until ``resume``.
        ``RuntimeError`` when the engine did not start."""
        self._thread = threading.Thread(target=self._engine, name="market-engine", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the engine did not start")
        if self.error:
            raise RuntimeError(f"the engine failed to start: {self.error}")

    def resume(self) -> None:
        """Let the clock move (again)."""
        self.running.set()

    def pause(self) -> None:
        """Hold the clock; actions queue until ``resume``."""
        self.running.clear()

    def finish(self, timeout: float = 30) -> bool:
        """End the week now: the clock stops for good; True once the engine thread is done."""
        self.running.clear()
        self._quit = True
        return self.finished.wait(timeout)

    def close(self, timeout: float = 30) -> None:
        """Stop the engine thread (the ledger has every event)."""
        self.finish(timeout)
        if self._thread is not None:
            self._thread.join(timeout)

    def export(self) -> list[str]:
        """The ledger as JSON lines (a read-only connection of its own)."""
        with Ledger(self.folder.ledger) as ledger:
            return list(ledger.export_lines())

    # --- the engine thread ---------------------------------------------------------------------
    def _engine(self) -> None:
        try:
            with Ledger(self.folder.ledger, create=True) as ledger:
                self._ledger = ledger
                history = [(r.market, r.event) for r in ledger.records()]
                for seq, (market, event) in enumerate(history, start=1):
                    self._tell(seq, market, event, True)
                last = max((e.at for _, e in history), default=0)
                # resume at the next whole simulated hour: the engine's hourly collector assumes it
                start = -(-last // HOUR) * HOUR
                env = simpy.rt.RealtimeEnvironment(initial_time=start, factor=1 / self.speed, strict=False)
                people = build_participants(self.scenario, self.catalog) if not history else []
                self.model = MarketModel(self.scenario, people, self.policies, self._sink, env=env,
                                         history=history or None)
                self._apply_policies(self.model)
                self.model.start_live()
                if not history:
                    ledger.set_status("state", "live")
                self._ready.set()
                duration = self.scenario.duration
                while not self._quit and self.model.now < duration:
                    if not self.running.wait(0.2):
                        continue
                    env.sync()  # after a pause, real time restarts from now
                    while self.running.is_set() and not self._quit and self.model.now < duration:
                        self._apply_policies(self.model)
                        # small steps (about 0.2 s of real time) so pause and finish answer at once
                        step = max(1, min(self.model.tick, int(self.speed / 5)))
                        self.model.run(until=self.model.now + step)
                if self.model.now >= duration:
                    self.model.apply_submitted()  # actions queued in the last tick
                    ledger.set_status("state", "complete")
        except BaseException as exc:  # reported by the front end and the log, never silently
            self.error = exc
            log.exception("the market engine stopped")
        finally:
            self.finished.set()
            self._ready.set()

    def _apply_policies(self, model: MarketModel) -> None:
        """Hand the traders the policies ``set_policy`` was given (on the engine thread, between steps)."""
        with self._policies_lock:
            pending, self._policies = self._policies, {}
        for (market, pid), policy in pending.items():
            trader = next((m.traders.get(pid) for m in model.markets if m.name == market), None)
            if trader is None:
                log.warning("set_policy: market %s has no participant %s", market, pid)
                continue
            trader.policy = policy

    def _sink(self, entries: Sequence[Entry]) -> None:
        assert self._ledger is not None
        first = self._ledger.last_seq + 1
        self._ledger.append_many(entries)
        for offset, (market, event) in enumerate(entries):
            self._tell(first + offset, market, event, False)

    def _tell(self, seq: int, market: str, event: Event, replay: bool) -> None:
        for follower in self._followers:
            follower(seq, market, event, replay)
