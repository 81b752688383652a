"""Watching a run while the engine runs it: the live run's snapshots (``running.live``), paced by the controls.

The engine calls the run hook after each batch of turns, once that batch is in
the ledger; ``running.live.watch_hook`` hands this watcher the run's
``Snapshot`` (its markets, hourly rows and clock: the live-run port, nothing of
the engine's own). Here the page's controls hold the engine (pause, step,
speed) and a snapshot is published. Nothing here changes market state or any
random draw, so the ledger is the same, byte for byte, with or without a
watcher.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from running.hooks import OnBatch, compose
from running.live import MarketView, Snapshot, watch_hook
from watch.controls import MAX_SPEED, Controls, parse_speed
from watch.hub import Hub
from watch.server import WatchServer
from watch.session import Session


class LiveWatch(Session):
    """A run the engine is running in this process, seen through its latest :class:`Snapshot`."""

    seen: Snapshot | None = None

    def show(self, snapshot: Snapshot, at: int) -> None:
        """After a batch at simulated second ``at``: publish, then hold the run as the controls say (pause,
        step, speed) unless the run is stopping."""
        if self.seen is None:
            self.tiers = list(snapshot.tiers)
            self.controls.apply_markets(tuple(m.name for m in snapshot.markets()))
        self.seen = snapshot
        self.status = "running"
        self.publish(force=self.controls.paused)  # a step is always shown
        self.controls.gate(at, idle=lambda: self.publish(force=True), released=lambda: snapshot.stopping)

    def chain(self, other: OnBatch | None, run: str) -> OnBatch:
        """The run hook showing the run named ``run`` on this page, after ``other`` (e.g. the progress bar)."""
        self.run = run
        hook = compose(other, watch_hook(self.show))
        assert hook is not None
        return hook

    def finish(self, status: str) -> None:
        """The run ended (``complete``, ``stopped``, ``interrupted``): show its last state."""
        self.status = status
        if self.seen is not None:
            self.publish(force=True)

    def has_listing(self, market: str, listing_id: str) -> bool:
        """Whether the run's ``market`` has (or had) the listing; False before the first batch."""
        return self.seen is not None and super().has_listing(market, listing_id)

    def markets(self) -> Sequence[MarketView]:
        """The run's markets as they stand now."""
        assert self.seen is not None
        return self.seen.markets()

    def hourly_rows(self, market: str) -> list[dict[str, Any]]:
        """``market``'s hourly rows so far."""
        assert self.seen is not None
        return self.seen.hourly(market)

    @property
    def clock(self) -> int:
        """The run's simulated second (0 before its first batch)."""
        return self.seen.clock if self.seen is not None else 0

    def week_end(self) -> tuple[int, int] | None:
        """(the week's length, the hour its days close), once the run is seen."""
        return self.seen.week_end if self.seen is not None else None


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
        """The page's address, e.g. ``http://127.0.0.1:8000/``."""
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
                if self.controls.version != seen and self.watch.seen is not None:
                    self.watch.publish(force=True)
        except KeyboardInterrupt:
            return

    def close(self) -> None:
        """Stop serving: the page's event streams end; connections still open after a few seconds are cut
        (``watch.server.STOP_TIMEOUT``)."""
        self.server.stop()


def serve(host: str, port: int, *, speed: str, paused: bool) -> LiveServer:
    """The live page's server for ``market run --watch`` (its ``market.run_hooks`` entry point ``watch``).

    ``speed`` is the command line's text (``max``, ``1 h/s`` ...); raises ``ValueError`` for a speed it cannot read
    and ``OSError`` for an address it cannot serve on.
    """
    return LiveServer(host, port, speed=parse_speed(speed), paused=paused)
