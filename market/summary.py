"""Headline figures per market and per tier, computed from a market's state."""

from __future__ import annotations

from collections.abc import Iterable
from statistics import fmean
from typing import Any

from market.state import MarketState


def summarize(name: str, state: MarketState) -> dict[str, Any]:
    """Participants, listings, deals, volume and price ratios, overall and per tier."""
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
        "volume_cents": sum(d.price for d in deals),
        "deals_per_participant": _per(2 * len(deals), len(state.participants)),
        "mean_price_ratio": _mean(ratios),
        "money_conserved": sum(state.balance.values()) == state.money_in,
        "tiers": per_tier,
    }


def _per(count: int, people: int) -> float:
    return round(count / people, 4) if people else 0.0


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(fmean(values), 4) if values else None
