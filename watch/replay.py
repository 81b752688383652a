"""Watching a run from its ledger: its events replayed into market state on the viewer's clock.

Works for a finished run and for one still running in another process (the
ledger is SQLite in WAL mode, so reading never blocks the writer): new events
are read as they land, and the clock never runs ahead of them. Hourly rows are
taken as the clock crosses each hour, with the engine's own reporters (``market.hourly``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

from market.clock import HOUR
from market.events import ParticipantJoined
from market.hourly import hourly_row
from market.ledger import Ledger, LedgerError, Record
from market.scenario import ScenarioError, validate_scenario
from running.live import MarketView
from running.runfolder import RunFolder, RunFolderError
from watch.controls import Controls
from watch.hub import Hub
from watch.session import Session

POLL = 0.2


class LedgerWatch(Session):
    """A run read back from ``folder``'s ledger, advanced by its own thread."""

    def __init__(self, folder: RunFolder, controls: Controls | None = None, hub: Hub | None = None) -> None:
        try:
            scenario = validate_scenario(folder.read_scenario(), str(folder.scenario))
        except (RunFolderError, ScenarioError) as exc:
            raise LedgerError(str(exc)) from None
        self.folder = folder
        self.duration = scenario.duration
        self.closes = scenario.working_hours.end
        with Ledger(folder.ledger) as ledger:  # sqlite connections stay in their thread: the player opens its own
            names = ledger.markets() or [m.name for m in scenario.markets]
        controls = controls or Controls(market="", speed=3_600.0)
        controls.apply_markets(tuple(names))
        super().__init__(folder.path.name, list(scenario.tiers), controls, hub or Hub())
        self._markets = {name: MarketView(name=name) for name in names}
        self._hourly: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        self._pending: deque[Record] = deque()
        self._seq = 0
        self._clock = 0
        self._complete = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- Session ----------------------------------------------------------
    def markets(self) -> Sequence[MarketView]:
        """The markets as replayed up to the viewer's clock."""
        return list(self._markets.values())

    def hourly_rows(self, market: str) -> list[dict[str, Any]]:
        """``market``'s hourly rows for the hours the clock has crossed; ``KeyError`` for an unknown market."""
        return self._hourly[market]

    @property
    def clock(self) -> int:
        """The viewer's simulated second: never past the last event read until the run is complete."""
        return self._clock

    def week_end(self) -> tuple[int, int] | None:
        """(the run's length in simulated seconds, the hour its working days close), from the scenario."""
        return self.duration, self.closes

    # --- the clock's thread -------------------------------------------------
    def start(self) -> None:
        """Start replaying on a daemon thread of its own (it opens its own ledger connection)."""
        self._thread = threading.Thread(target=self._play, name="watch-replay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the replay thread to stop and wait up to 5 seconds for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _play(self) -> None:
        with Ledger(self.folder.ledger) as self.ledger:
            self._loop()

    def _loop(self) -> None:
        self._pull()
        self._advance_to(0)  # markets open and participants join at second 0
        self.status = "paused" if self.controls.paused else "playing"
        self.publish(force=True)
        shown = -1
        while not self._stop.is_set():
            self._pull()
            if self._pending:
                at = self._pending[0].event.at
            elif self._complete and self._clock < self.duration:
                at = self.duration
            else:
                status, seen = ("complete" if self._complete else "waiting for the run"), self.controls.version
                if status != self.status or seen != shown:
                    self.status, shown = status, seen
                    self.publish(force=True)
                self._stop.wait(POLL)
                continue
            self.status = "playing"
            self.controls.gate(at, idle=lambda: self.publish(force=True))
            self._advance_to(at)
            self.publish(force=self.controls.paused)  # a step is always shown

    def _pull(self) -> None:
        if self._complete:
            return  # everything was read after the run said it was complete
        complete = self.ledger.status("state") == "complete"
        for record in self.ledger.records(after=self._seq):
            self._pending.append(record)
            self._seq = record.seq
        self._complete = complete

    def _advance_to(self, at: int) -> None:
        """Apply every pending event up to ``at``, taking hourly rows at each hour crossed."""
        while True:
            next_hour = (self._clock // HOUR + 1) * HOUR
            upto = min(at, next_hour - 1) if next_hour <= at else at
            while self._pending and self._pending[0].event.at <= upto:
                record = self._pending.popleft()
                market = self._markets.setdefault(record.market, MarketView(name=record.market))
                event = record.event
                market.state.evolve(event)
                if isinstance(event, ParticipantJoined):
                    market.tiers[event.participant.id] = event.participant.tier
            self._clock = max(self._clock, upto)
            if next_hour > at or next_hour > self.duration:
                self._clock = max(self._clock, at)
                return
            for market in self._markets.values():
                row = hourly_row(market.name, next_hour // HOUR, market.state, self.tiers)
                self._hourly[market.name].append(row)
            self._clock = next_hour

