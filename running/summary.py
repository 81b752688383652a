"""Headline figures per market and per tier, computed from a market's state."""

from __future__ import annotations

from collections.abc import Iterable
from statistics import fmean
from typing import Any

from market.clock import DAY
from market.state import MarketState


def summarize(name: str, state: MarketState, days: int) -> dict[str, Any]:
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
        per_tier[tier] = {
            "participants": len(members),
            "deals_as_seller": len(sold),
            "deals_as_buyer": len(bought),
            "deals_per_participant": _per(len(sold) + len(bought), len(members)),
            "volume_sold_cents": sum(d.price for d in sold),
            "volume_bought_cents": sum(d.price for d in bought),
            "price_ratio_as_seller": _mean(d.price / state.items[d.item_id].value for d in sold),
            "price_ratio_as_buyer": _mean(d.price / state.items[d.item_id].value for d in bought),
            "money_cents": sum(state.balance[p] for p in members),
        }
    return {
        "market": name,
        "participants": len(state.participants),
        "listings": len(state.listings),
        "offers": len(state.offers),
        "deals": len(deals),
        "volume_cents": state.volume,
        "deals_per_participant": _per(2 * len(deals), len(state.participants)),
        "mean_price_ratio": _mean(ratios),
        "money_conserved": sum(state.balance.values()) == state.money_in,
        "tiers": per_tier,
        "by_day": by_day(state, days),
    }


def by_day(state: MarketState, days: int) -> dict[str, list[int]]:
    """New listings, deals and volume (cents) on each of ``days`` simulated days (index 0: the first day)."""
    listings, deals, volume = [0] * days, [0] * days, [0] * days
    for listing in state.listings.values():
        listings[min(listing.opened_at // DAY, days - 1)] += 1
    for deal in state.deals:
        day = min(deal.at // DAY, days - 1)
        deals[day] += 1
        volume[day] += deal.price
    return {"listings": listings, "deals": deals, "volume_cents": volume}


def _per(count: int, people: int) -> float:
    return round(count / people, 4) if people else 0.0


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(fmean(values), 4) if values else None
