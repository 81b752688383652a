"""A watched run: whatever advances the clock, this turns its markets into snapshots for the page.

Two kinds of run are watched: one the engine is running right now (``LiveWatch``,
in ``live.py``) and one read back from its ledger (``LedgerWatch``, in
``replay.py``). Both hold the live-run port's ``MarketView``s and hourly rows of
one schema (``market.hourly``), so the page and the figures cannot tell them apart.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from running.live import MarketView
from watch import figures
from watch.controls import SPEEDS, Controls
from watch.hub import Hub
from watch.snapshot import clock_label, market_view


class Session:
    """Publishes what the controls ask for, at most every ``interval`` seconds (figures every ``figure_interval``)."""

    def __init__(self, run: str, tiers: Sequence[str], controls: Controls, hub: Hub, *,
                 interval: float = 0.5, figure_interval: float = 2.0) -> None:
        self.run = run
        self.tiers = list(tiers)
        self.controls = controls
        controls.has_listing = self.has_listing
        self.hub = hub
        self.interval = interval
        self.figure_interval = figure_interval
        self.status = "starting"
        self._last = 0.0
        self._figures: tuple[tuple[Any, ...], float, dict[str, Any]] | None = None

    # what a kind of run provides
    def markets(self) -> Sequence[MarketView]:
        """The run's markets as they stand now."""
        raise NotImplementedError

    def hourly_rows(self, market: str) -> list[dict[str, Any]]:
        """``market``'s hourly rows so far (the columns of ``market.hourly``)."""
        raise NotImplementedError

    @property
    def clock(self) -> int:
        """The simulated time shown, in seconds since the run began."""
        raise NotImplementedError

    def week_end(self) -> tuple[int, int] | None:
        """(the week's length in simulated seconds, the hour its working days close), once known."""
        raise NotImplementedError

    def has_listing(self, market: str, listing_id: str) -> bool:
        """Whether ``market`` has (or had) the listing ``listing_id``: the page may show only those."""
        return any(m.name == market and listing_id in m.state.listings for m in self.markets())

    # publishing
    def publish(self, *, force: bool = False) -> None:
        """Hand the hub a new snapshot (the server streams it to every page), unless one went out less than
        ``interval`` seconds ago and not ``force``."""
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        self.hub.publish(json.dumps(self.snapshot(force_figures=force), separators=(",", ":")))

    def snapshot(self, *, force_figures: bool = False) -> dict[str, Any]:
        """What the page shows now (plain JSON data): the run's status and clock, the controls, the chosen
        market's view and its figures (rebuilt at most every ``figure_interval`` seconds unless forced)."""
        controls = self.controls
        market = next(m for m in self.markets() if m.name == controls.market)
        view = market_view(market, controls.listing)
        return {
            "run": self.run, "status": self.status, "clock": self.clock, "clock_label": self.clock_label(),
            "paused": controls.paused, "speed": controls.speed_name, "speeds": list(SPEEDS),
            "markets": list(controls.markets), **view, "figures": self._figures_for(market, force_figures),
        }

    def clock_label(self) -> str:
        """The page's clock: the simulated time, or the week's real end once it is over."""
        week = self.week_end()
        if week is None:
            return clock_label(self.clock)
        return clock_label(self.clock, end=week[0], closes=week[1])

    def _figures_for(self, market: MarketView, force: bool) -> dict[str, Any]:
        rows = self.hourly_rows(market.name)
        key = (market.name, len(rows), len(market.state.deals))
        now = time.monotonic()
        if self._figures is not None:
            old_key, built, figs = self._figures
            fresh = old_key == key or (not force and old_key[0] == key[0] and now - built < self.figure_interval)
            if fresh:
                return figs
        figs = figures.build(market, rows, self.tiers, self.run)
        figs["key"] = "/".join(map(str, key))
        self._figures = (key, now, figs)
        return figs
