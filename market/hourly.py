"""The hourly table, declared once: its columns as reporters of a market's state (Mesa's DataCollector habit).

The engine's DataCollector takes a row per market as each simulated hour ends, while it runs;
:func:`rows_from_events` takes the same rows from a ledger's events afterwards (the analysis
tables, the live page replaying a ledger). Row ``hour`` = h is the market after every event
before second ``h * HOUR``: at the end of the h-th hour (an event at exactly ``h * HOUR`` falls
in the next hour). Money per tier is settled money in cents (budgets, plus sales, minus purchases).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType

from market.clock import HOUR
from market.events import Event
from market.state import MarketState

Reporter = Callable[[MarketState], int]
"""One column of the hourly table: a figure of a market's state."""

REPORTERS: Mapping[str, Reporter] = MappingProxyType({
    "open_listings": lambda state: len(state.open_listing_of_item),
    "open_offers": lambda state: len(state.open_offers),
    "deals": lambda state: len(state.deals),
    "volume": lambda state: state.volume,
})
"""The market-wide columns (cumulative ``deals`` and ``volume`` in cents), in table order."""

KEYS = ("market", "hour")
"""The columns that say whose row and which hour, first in every row."""


def money_column(tier: str) -> str:
    """The column of ``tier``'s settled money (cents)."""
    return f"money_{tier}"


def columns(tiers: Sequence[str]) -> list[str]:
    """Every column of the hourly table, in order: the keys, the reporters, money per tier in ``tiers``' order."""
    return [*KEYS, *REPORTERS, *(money_column(t) for t in tiers)]


def hourly_row(market: str, hour: int, state: MarketState, tiers: Sequence[str]) -> dict[str, str | int]:
    """The row of ``market`` for ``hour``: each reporter over ``state``, then money per tier (0 for a tier
    with no one in the market; the tier of each participant is the one they joined with)."""
    money = state.money_by_tier
    return {"market": market, "hour": hour, **{name: report(state) for name, report in REPORTERS.items()},
            **{money_column(t): money.get(t, 0) for t in tiers}}


def rows_from_events(
    entries: Iterable[tuple[str, Event]], tiers: Sequence[str], duration: int
) -> list[dict[str, str | int]]:
    """The hourly rows of hours 1 to ``duration // HOUR``, from ``(market, event)`` pairs in ledger order.

    Rows come hour by hour, each hour's markets in the order they opened; after the last event
    the markets stay as they are to the end of ``duration``.
    """
    states: dict[str, MarketState] = {}
    rows: list[dict[str, str | int]] = []
    hour, last = 1, duration // HOUR
    for market, event in entries:
        while hour <= last and hour * HOUR <= event.at:
            rows += [hourly_row(name, hour, state, tiers) for name, state in states.items()]
            hour += 1
        state = states.get(market)
        if state is None:
            state = states[market] = MarketState()
        state.evolve(event)
    for later in range(hour, last + 1):
        rows += [hourly_row(name, later, state, tiers) for name, state in states.items()]
    return rows
