"""Watching a run while the engine runs it: the engine's own markets and DataCollector, paced by the controls.

The engine calls ``on_batch`` after each batch of turns, once that batch is in
the ledger. Here the page's controls hold the engine (pause, step, speed) and
a snapshot is taken. Nothing here changes market state or any random draw, so
the ledger is the same, byte for byte, with or without a watcher.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from market.engine import Market, MarketModel
from watch.controls import MAX_SPEED, Controls, parse_speed
from watch.hub import Hub
from watch.server import WatchServer
from watch.session import Session

OnBatch = Callable[[MarketModel, int], None]


class LiveWatch(Session):
    """A run the engine is running in this process."""

    model: MarketModel | None = None

    def on_batch(self, model: MarketModel, at: int) -> None:
        if self.model is None:
            self.tiers = list(model.scenario.tiers)
            names = tuple(m.name for m in model.markets)
            self.controls.apply_markets(names)
        self.model = model
        self.status = "running"
        self.publish(force=self.controls.paused)  # a step is always shown
        self.controls.gate(at, idle=lambda: self.publish(force=True),
                           released=lambda: model.stop_requested is not None)

    def chain(self, other: OnBatch | None, run: str) -> OnBatch:
        """This watcher's ``on_batch`` (for the run named ``run``) after ``other`` (e.g. the progress bar)."""
        self.run = run
        if other is None:
            return self.on_batch

        def both(model: MarketModel, at: int) -> None:
            other(model, at)
            self.on_batch(model, at)

        return both

    def finish(self, status: str) -> None:
        """The run ended (``complete``, ``stopped``, ``interrupted``): show its last state."""
        self.status = status
        if self.model is not None:
            self.publish(force=True)

    def has_listing(self, market: str, listing_id: str) -> bool:
        return self.model is not None and super().has_listing(market, listing_id)

    def markets(self) -> Sequence[Market]:
        assert self.model is not None
        return self.model.markets

    def hourly_rows(self, market: str) -> list[dict[str, Any]]:
        assert self.model is not None
        table = self.model.datacollector.tables["hourly"]
        keep = [i for i, name in enumerate(table["market"]) if name == market]
        return [{column: values[i] for column, values in table.items()} for i in keep]

    @property
    def clock(self) -> int:
        return self.model.now if self.model is not None else 0

    def week_end(self) -> tuple[int, int] | None:
        if self.model is None:
            return None
        scenario = self.model.scenario
        return scenario.duration, scenario.working_hours.end


class LiveServer:
    """``--watch``: a page for the run this process is about to run, served from a thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, speed: float = MAX_SPEED,
                 paused: bool = False) -> None:
        """Serve on ``host:port``; the run goes at ``speed`` (simulated s per s) and, if ``paused``, waits for Step
        or Resume after its first batch."""
        self.controls = Controls(market="", speed=speed, paused=paused)
        self.hub = Hub()
        self.watch = LiveWatch("", [], self.controls, self.hub)
        self.server = WatchServer(self.hub, self.controls, host, port).start()

    @property
    def url(self) -> str:
        return self.server.url

    def linger(self) -> None:
        """After the run: keep serving (the page still switches market and listing) until Ctrl-C.

        The line saying so is printed inside the ``try``: whoever reads it may press Ctrl-C at once.
        """
        try:
            print(f"the run is over; the page stays up at {self.url} until Ctrl-C", flush=True)
            while True:
                seen = self.controls.version
                self.controls.wait_change(seen, 1.0)
                if self.controls.version != seen and self.watch.model is not None:
                    self.watch.publish(force=True)
        except KeyboardInterrupt:
            return

    def close(self) -> None:
        self.server.stop()


def serve(host: str, port: int, *, speed: str, paused: bool) -> LiveServer:
    """The live page's server for ``market run --watch`` (its ``market.run_hooks`` entry point ``watch``).

    ``speed`` is the command line's text (``max``, ``1 h/s`` ...); raises ``ValueError`` for a speed it cannot read
    and ``OSError`` for an address it cannot serve on.
    """
    return LiveServer(host, port, speed=parse_speed(speed), paused=paused)
