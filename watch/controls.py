"""The viewer's controls: pause, resume, step, speed, and which market and listing are shown.

Shared between the page's HTTP handlers (which change them) and the thread that
advances the simulated clock (which obeys them). ``gate`` paces that thread:
it blocks while paused, lets one batch through per step, and sleeps so that
simulated time runs at ``speed`` simulated seconds per wall second (``0``: as
fast as the run goes). Controls never touch market state, so they cannot
change what a run does, only when it does it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from market.scenario import quoted

MAX_SPEED = 0.0
SPEEDS = {"max": MAX_SPEED, "1 day/s": 86_400.0, "1 h/s": 3_600.0, "10 min/s": 600.0, "1 min/s": 60.0}
ACTIONS = ("pause", "resume", "step", "speed", "market", "listing")
MAX_LISTING_ID = 200


class ControlError(ValueError):
    """A control request the page sent that cannot be obeyed."""


def parse_speed(value: str) -> float:
    """A speed by its name, spaces and case aside (``"1 h/s"``, ``1h/s``, ``MAX``), or as its number of simulated
    seconds per second (``3600``, as ``python -m slackbot watch --speed`` takes it)."""
    wanted = value.replace(" ", "").lower()
    try:
        number: float | None = float(wanted)
    except ValueError:
        number = None
    for name, speed in SPEEDS.items():
        if name.replace(" ", "") == wanted or number == speed:
            return speed
    raise ControlError(f"unknown speed {value!r}; choose one of {', '.join(SPEEDS)} "
                       f"(or in simulated seconds per second: {', '.join(f'{s:g}' for s in SPEEDS.values())})")


@dataclass
class Controls:
    """Thread-safe viewer state; ``version`` grows on every change.

    ``has_listing(market, listing_id)``, set by the watched run, says whether a listing the page asks for exists;
    without it a listing id is only checked for type and length.
    """

    market: str
    speed: float = MAX_SPEED
    paused: bool = False
    listing: str | None = None
    steps: int = 0
    version: int = 0
    markets: tuple[str, ...] = ()
    has_listing: Callable[[str, str], bool] | None = field(default=None, repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _anchor: tuple[float, int] | None = field(default=None, repr=False)

    def apply(self, request: dict[str, object]) -> None:
        """Obey one request from the page, e.g. ``{"action": "pause"}`` or ``{"action": "market", "value": "B"}``."""
        action, value = request.get("action"), request.get("value")
        if action not in ACTIONS:  # ACTIONS holds only strings: 1 and [1] are refused here, not hashed
            raise ControlError(f"unknown action {quoted(action)}; choose one of {', '.join(ACTIONS)}")
        if action in ("speed", "market", "listing") and not (isinstance(value, str) or
                                                             (action == "listing" and value is None)):
            raise ControlError(f"{action}: the value must be a string, not {quoted(value)}")
        if action == "listing" and value:
            self._check_listing(str(value))
        with self._cond:
            match action:
                case "pause":
                    self.paused = True
                case "resume":
                    self.paused, self.steps = False, 0
                case "step":
                    self.paused = True
                    self.steps += 1
                case "speed":
                    if value not in SPEEDS:
                        raise ControlError(f"unknown speed {quoted(value)}; choose one of {', '.join(SPEEDS)}")
                    self.speed = SPEEDS[str(value)]
                case "market":
                    if value not in self.markets:
                        raise ControlError(f"unknown market {quoted(value)}; this run has "
                                           f"{', '.join(self.markets) or 'no markets yet'}")
                    self.market, self.listing = str(value), None
                case "listing":
                    self.listing = str(value) if value else None
            self._anchor = None
            self.version += 1
            self._cond.notify_all()

    def _check_listing(self, listing: str) -> None:
        if len(listing) > MAX_LISTING_ID:
            raise ControlError(f"listing: an id is at most {MAX_LISTING_ID} characters, not {len(listing):,}")
        market = self.market
        if self.has_listing is not None and not self.has_listing(market, listing):
            raise ControlError(f"unknown listing {quoted(listing)}; market {quoted(market, str)} has no such listing")

    def apply_markets(self, names: tuple[str, ...]) -> None:
        """The run's markets, known once it starts; show the first unless one is chosen."""
        with self._cond:
            self.markets = names
            if self.market not in names:
                self.market = names[0]
            self.version += 1

    def wait_change(self, seen: int, timeout: float) -> bool:
        """Wait until ``version`` moves past ``seen``; True if it did."""
        with self._cond:
            return self._cond.wait_for(lambda: self.version != seen, timeout)

    @property
    def speed_name(self) -> str:
        """The name of the current speed in ``SPEEDS`` (``StopIteration`` if the speed is none of them)."""
        return next(name for name, s in SPEEDS.items() if s == self.speed)

    def gate(self, at: int, idle: Callable[[], None], *, poll: float = 0.2,
             released: Callable[[], bool] = lambda: False) -> None:
        """Hold the clock at simulated second ``at`` as the controls say; call ``idle`` while held.

        ``released()`` true lets the clock go at once, paused or not (the run was asked to stop: a Ctrl-C
        on a paused run must not wait for Step or Resume)."""
        with self._cond:
            shown = -1
            while self.paused and self.steps == 0 and not released():
                if self.version != shown:  # show the pause itself, and any market or listing chosen meanwhile
                    shown = self.version
                    self._cond.release()
                    try:
                        idle()
                    finally:
                        self._cond.acquire()
                self._cond.wait(poll)
            if released():
                return
            if self.paused:
                self.steps -= 1
                self._anchor = None
                return
            if self.speed == MAX_SPEED:
                return
            if self._anchor is None:
                self._anchor = (time.monotonic(), at)
                return
            wall0, sim0 = self._anchor
            speed, seen = self.speed, self.version
        due = wall0 + (at - sim0) / speed
        while (left := due - time.monotonic()) > 0:
            with self._cond:
                if self.version != seen or released():  # paused, stepped, re-timed or stopped: start again
                    break
                self._cond.wait(min(left, poll))
        else:
            return
        self.gate(at, idle, poll=poll, released=released)
