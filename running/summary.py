"""summary.json, typed: :class:`RunSummary`, the headline figures of a run per market and tier.

One writer (:meth:`RunSummary.write`, by the runner at the end of a run and by after-run steps that add
their section) and one reader (:meth:`RunSummary.read`, behind ``RunFolder.read_summary``). The figures
per market are computed from a market's state by :func:`summarize`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from statistics import fmean
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from market.clock import DAY
from market.files import write_whole
from market.state import MarketState


class SummaryError(ValueError):
    """A summary.json that cannot be read as a :class:`RunSummary`; the message names the file and the field."""


class _Figures(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TierFigures(_Figures):
    """One tier's figures in one market (deals counted on each side; ratios: price over the item's value)."""

    participants: int
    deals_as_seller: int
    deals_as_buyer: int
    deals_per_participant: float
    volume_sold_cents: int
    volume_bought_cents: int
    price_ratio_as_seller: float | None
    price_ratio_as_buyer: float | None
    money_cents: int


class ByDay(_Figures):
    """The week over time: new listings, deals and volume (cents) on each simulated day, the first day first."""

    listings: list[int]
    deals: list[int]
    volume_cents: list[int]


class MarketSummary(_Figures):
    """One market's headline figures, overall and per tier."""

    market: str
    participants: int
    listings: int
    offers: int
    deals: int
    volume_cents: int
    deals_per_participant: float
    mean_price_ratio: float | None
    money_conserved: bool
    tiers: dict[str, TierFigures]
    by_day: ByDay


class TierFaults(_Figures):
    """A tier's turns, failed turns, and failed turns by kind (``agent_failed`` events)."""

    turns: int
    failed: int
    kinds: dict[str, int]


class Failures(_Figures):
    """The scenario's circuit breaker (``failures:``) and each tier's failed turns."""

    max_share: float
    window: int
    tiers: dict[str, TierFaults]


class RunSummary(BaseModel):
    """summary.json: how a run ended, its figures per market and tier, its failed turns, and the sections its
    policies and after-run steps add (``llm``: model calls, tokens, cost and faults; ``survey``: the fairness
    survey's; a custom backend's under its own name, kept as given).

    ``status`` is ``complete``, ``stopped`` (``stopped`` says why, ``stop_cause`` is a short code) or
    ``incomplete`` (run until a time before the end). Written as JSON with two-space indents, keys in this order.
    """

    model_config = ConfigDict(extra="allow")

    scenario: str
    seed: int
    status: Literal["complete", "stopped", "incomplete"]
    complete: bool
    stopped: str | None
    stop_cause: str | None
    simulated_seconds: int
    events: int
    markets: list[MarketSummary]
    failures: Failures
    llm: dict[str, Any] | None = None
    survey: dict[str, Any] | None = None

    def sections(self) -> dict[str, Any]:
        """The sections added by policies and after-run steps, by name (``llm``, ``survey``, others)."""
        added = {"llm": self.llm, "survey": self.survey, **(self.model_extra or {})}
        return {name: value for name, value in added.items() if value is not None}

    def with_sections(self, sections: dict[str, Any]) -> RunSummary:
        """This summary with ``sections`` added (or replaced), e.g. a policy's figures or the survey's."""
        return RunSummary.model_validate({**self.as_json(), **sections})

    def as_json(self) -> dict[str, Any]:
        """The summary as JSON data: every field in order, then the sections that are there."""
        data = self.model_dump(mode="json", exclude={"llm", "survey"})
        base = {name: data[name] for name in type(self).model_fields if name in data}
        return {**base, **self.sections()}

    def write(self, path: Path) -> None:
        """Write summary.json at ``path`` whole or not at all (a kill or a full disk never leaves half a file)."""
        write_whole(path, json.dumps(self.as_json(), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> RunSummary:
        """summary.json at ``path``; ``SummaryError`` naming the file and what is wrong (not JSON, a field)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SummaryError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise SummaryError(f"{path}: not a JSON object")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise SummaryError(f"{path}: {where}: {first['msg']} ({exc.error_count()} problem(s))") from None


def summarize(name: str, state: MarketState, days: int) -> MarketSummary:
    """Participants, listings, deals, volume and price ratios, overall and per tier; and the ``days``-day week
    over time (``by_day``: new listings, deals and volume on each simulated day, the first day first)."""
    tiers: dict[str, list[str]] = {}
    for pid, person in state.participants.items():
        tiers.setdefault(person.tier, []).append(pid)
    deals = state.deals
    ratios = [d.price / state.items[d.item_id].value for d in deals]
    tier_of = {pid: p.tier for pid, p in state.participants.items()}
    per_tier = {}
    for tier, members in sorted(tiers.items()):
        sold = [d for d in deals if tier_of[d.seller] == tier]
        bought = [d for d in deals if tier_of[d.buyer] == tier]
        per_tier[tier] = TierFigures(
            participants=len(members),
            deals_as_seller=len(sold),
            deals_as_buyer=len(bought),
            deals_per_participant=_per(len(sold) + len(bought), len(members)),
            volume_sold_cents=sum(d.price for d in sold),
            volume_bought_cents=sum(d.price for d in bought),
            price_ratio_as_seller=_mean(d.price / state.items[d.item_id].value for d in sold),
            price_ratio_as_buyer=_mean(d.price / state.items[d.item_id].value for d in bought),
            money_cents=sum(state.balance[p] for p in members),
        )
    return MarketSummary(
        market=name,
        participants=len(state.participants),
        listings=len(state.listings),
        offers=len(state.offers),
        deals=len(deals),
        volume_cents=state.volume,
        deals_per_participant=_per(2 * len(deals), len(state.participants)),
        mean_price_ratio=_mean(ratios),
        money_conserved=sum(state.balance.values()) == state.money_in,
        tiers=per_tier,
        by_day=by_day(state, days),
    )


def by_day(state: MarketState, days: int) -> ByDay:
    """New listings, deals and volume (cents) on each of ``days`` simulated days (index 0: the first day)."""
    listings, deals, volume = [0] * days, [0] * days, [0] * days
    for listing in state.listings.values():
        listings[min(listing.opened_at // DAY, days - 1)] += 1
    for deal in state.deals:
        day = min(deal.at // DAY, days - 1)
        deals[day] += 1
        volume[day] += deal.price
    return ByDay(listings=listings, deals=deals, volume_cents=volume)


def _per(count: int, people: int) -> float:
    return round(count / people, 4) if people else 0.0


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(fmean(values), 4) if values else None
