"""A live week: the run folder, the ledger and the engine on a real-time clock, in one thread.

``LiveRun`` creates the run folder (or opens an existing one, which resumes the week from
its ledger), owns the engine thread and its ledger connection, and offers front ends (the
Slack bot) a public surface: ``follow`` to receive every event (the history first, then each
batch as it is written to the ledger), ``join`` and ``submit`` to queue people's actions for
the next tick under the exchange's rules, ``resume``/``pause`` for the clock, ``finish`` to end
the week and ``close`` to stop. Nothing else of the engine is reached from outside.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path

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
from running.runfolder import RunFolder

log = logging.getLogger("running.live")
Follower = Callable[[int, str, Event, bool], None]
"""(ledger seq, market, event, replayed from an earlier start) -> None; called on the engine thread."""


class LiveRun:
    """One week on a real-time clock (``speed`` simulated seconds per real second)."""

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
        self.model: MarketModel | None = None
        self.running = threading.Event()  # the clock moves only while set
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self._followers: list[Follower] = []
        self._ready = threading.Event()
        self._quit = False
        self._ledger: Ledger | None = None
        self._thread: threading.Thread | None = None

    def follow(self, follower: Follower) -> None:
        """Receive every event; register before ``start``."""
        self._followers.append(follower)

    def start(self, prepare: Callable[[MarketModel], None] | None = None, timeout: float = 60) -> None:
        """Start the engine thread; ``prepare`` sees the model before the clock can move (restore policies)."""
        self._thread = threading.Thread(target=self._engine, args=(prepare,), name="market-engine", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the engine did not start")
        if self.error:
            raise RuntimeError(f"the engine failed to start: {self.error}")

    # --- people -------------------------------------------------------------------------------
    def join(self, market: str, person: Participant, policy: Policy | None) -> Future[exchange.Outcome]:
        """Queue a newcomer (``policy=None``: a person trading by hand)."""
        assert self.model is not None, "start() first"
        return self.model.join(market, person, policy)

    def submit(self, market: str, participant_id: str, action: Action) -> Future[exchange.Outcome]:
        """Queue a person's action for the next tick."""
        assert self.model is not None, "start() first"
        return self.model.submit(market, participant_id, action)

    @property
    def now(self) -> int:
        """The simulated second."""
        return self.model.now if self.model is not None else 0

    # --- the clock ----------------------------------------------------------------------------
    def resume(self) -> None:
        self.running.set()

    def pause(self) -> None:
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
    def _engine(self, prepare: Callable[[MarketModel], None] | None) -> None:
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
                if prepare is not None:
                    prepare(self.model)
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

    def _sink(self, entries: Sequence[Entry]) -> None:
        assert self._ledger is not None
        first = self._ledger.last_seq + 1
        self._ledger.append_many(entries)
        for offset, (market, event) in enumerate(entries):
            self._tell(first + offset, market, event, False)

    def _tell(self, seq: int, market: str, event: Event, replay: bool) -> None:
        for follower in self._followers:
            follower(seq, market, event, replay)
