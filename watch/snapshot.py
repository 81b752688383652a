"""What the page shows of one market at one moment, as plain JSON-ready data.

Built from a market's ``MarketState`` (the projection of its events), so a
live engine and a replayed ledger give the same picture. Money stays integer
cents in the state; dollars appear here only as display strings.
"""

from __future__ import annotations

from typing import Any

from market.clock import DAY, HOUR
from market.domain import Listing, Offer
from market.money import format_money
from running.live import MarketView

ROWS = 40


def clock_label(at: int, *, end: int | None = None, closes: int = 24) -> str:
    """Simulated seconds as ``day 2 · 14:05``.

    At or past ``end`` (the week's length in seconds, whole days) the week is over and shows its last
    day at the close of working hours (``closes``, an hour): ``day 5 · 17:00 · week over``, not the
    midnight after it (``day 6 · 00:00``).
    """
    if end is not None and at >= end:
        return f"day {max(1, -(-end // DAY))} · {closes:02d}:00 · week over"
    day, second = divmod(at, DAY)
    return f"day {day + 1} · {second // HOUR:02d}:{second % HOUR // 60:02d}"


def market_view(market: MarketView, listing_id: str | None) -> dict[str, Any]:
    """Counts, open listings, offers in flight, recent deals and one listing's thread."""
    state, tiers = market.state, market.tiers
    offers_on: dict[str, int] = {}
    for oid in state.open_offers:
        lid = state.offers[oid].listing_id
        offers_on[lid] = offers_on.get(lid, 0) + 1
    listings = [state.listings[lid] for lid in reversed(state.open_listing_of_item.values())]
    in_flight = [state.offers[oid] for oid in reversed(state.open_offers)]
    deals = state.deals[::-1]
    if listing_id not in state.listings:
        listing_id = _latest_listing(market)
    return {
        "market": market.name,
        "counts": {
            "open_listings": len(state.open_listing_of_item), "open_offers": len(state.open_offers),
            "deals": len(state.deals), "volume": format_money(state.volume),
            "participants": len(state.participants),
        },
        "listings": [_listing_row(market, li, offers_on.get(li.id, 0)) for li in listings[:ROWS]],
        "offers": [_offer_row(market, o) for o in in_flight[:ROWS]],
        "deals": [
            {"id": d.id, "at": clock_label(d.at), "listing": d.listing_id, "item": state.items[d.item_id].title,
             "price": format_money(d.price), "seller_tier": tiers.get(d.seller, "?"),
             "buyer_tier": tiers.get(d.buyer, "?")}
            for d in deals[:ROWS]
        ],
        "thread": thread(market, listing_id) if listing_id else None,
    }


def thread(market: MarketView, listing_id: str) -> dict[str, Any]:
    """The haggling on one listing, oldest first: offers, counters, messages and how it ended."""
    state, tiers = market.state, market.tiers
    listing = state.listings[listing_id]
    who = lambda pid: f"{pid} ({tiers.get(pid, '?')})"  # noqa: E731
    feed: list[tuple[int, int, dict[str, str]]] = [
        (listing.opened_at, 0, {"at": clock_label(listing.opened_at), "who": who(listing.seller), "kind": "listed",
                                "text": listing.description})
    ]
    for offer in state.offers.values():
        if offer.listing_id == listing_id:
            kind = "offer" if offer.round == 1 else "counter"
            text = f"{format_money(offer.amount)}" + (f": {offer.message}" if offer.message else "")
            feed.append((offer.made_at, 1, {"at": clock_label(offer.made_at), "who": who(offer.proposer),
                                            "kind": f"{kind} ({offer.status.value})", "text": text}))
    for message in state.messages.get(listing_id, []):
        feed.append((message.at, 2, {"at": clock_label(message.at), "who": who(message.sender), "kind": "message",
                                     "text": message.text}))
    for deal in state.deals:
        if deal.listing_id == listing_id:
            feed.append((deal.at, 3, {"at": clock_label(deal.at), "who": who(deal.buyer), "kind": "deal",
                                      "text": f"sold for {format_money(deal.price)}"}))
    feed.sort(key=lambda entry: entry[:2])
    item = state.items[listing.item_id]
    return {"listing": listing_id, "item": item.title, "ask": format_money(listing.ask),
            "status": listing.status.value, "messages": [entry[2] for entry in feed]}


def _latest_listing(market: MarketView) -> str | None:
    """The listing with the newest activity: the latest deal's, else the latest offer's, else the newest."""
    state = market.state
    candidates = [(d.at, d.listing_id) for d in state.deals[-1:]]
    candidates += [(o.made_at, o.listing_id) for o in list(state.offers.values())[-1:]]
    if not candidates and state.listings:
        return next(reversed(state.listings))
    return max(candidates)[1] if candidates else None


def _listing_row(market: MarketView, listing: Listing, offers: int) -> dict[str, Any]:
    return {"id": listing.id, "item": market.state.items[listing.item_id].title, "ask": format_money(listing.ask),
            "seller_tier": market.tiers.get(listing.seller, "?"), "offers": offers,
            "since": clock_label(listing.opened_at)}


def _offer_row(market: MarketView, offer: Offer) -> dict[str, Any]:
    item = market.state.items[market.state.listings[offer.listing_id].item_id]
    return {"id": offer.id, "listing": offer.listing_id, "item": item.title, "amount": format_money(offer.amount),
            "from_tier": market.tiers.get(offer.proposer, "?"), "round": offer.round}
