"""What a trader sees (``Observation``) and what it answers (``Decision``).

These are the contract between the engine and any policy, rule-based or
model-backed. The engine builds observations from the state's indexes, never
by scanning every listing.
"""

from __future__ import annotations

from itertools import chain, islice
from operator import attrgetter
from typing import Any, TypeVar

from pydantic import Field

from market.actions import Action
from market.domain import Frozen, Item, Listing, Offer, Participant, Want
from market.events import Event
from market.state import MarketState


class ListingView(Frozen):
    """An open listing as a buyer sees it."""

    listing: Listing
    item: Item
    seller_name: str


class Observation(Frozen):
    """One trader's view of its market at one moment."""

    market: str
    trader: str
    tier: str
    at: int = Field(description="simulated seconds since the start")
    step: int = Field(description="how many times this trader has woken before")
    principal: Participant
    balance: int
    escrow: int
    holdings: tuple[Item, ...]
    open_wants: tuple[Want, ...]
    my_listings: tuple[Listing, ...]
    unlisted: tuple[Item, ...] = Field(description="items of the principal's to sell, not yet listed")
    market_listings: tuple[ListingView, ...] = Field(description="open listings matching open wants")
    thread_listings: tuple[ListingView, ...] = Field(description="listings this trader's open offers are on")
    incoming: tuple[Offer, ...] = Field(description="open offers addressed to this trader")
    outgoing: tuple[Offer, ...] = Field(description="open offers this trader made")
    news: tuple[Event, ...] = Field(description="what happened to this trader since its last turn")

    @property
    def available(self) -> int:
        return self.balance - self.escrow


class Decision(Frozen):
    """A trader's answer: actions, in order, and an optional private note."""

    actions: tuple[Action, ...] = ()
    note: str | None = Field(None, max_length=2000)


def observe(
    state: MarketState,
    market: str,
    trader: str,
    tier: str,
    at: int,
    step: int,
    news: list[Event],
    listings_per_want: int = 12,
) -> Observation:
    """Build ``trader``'s observation from the state's indexes."""
    principal = state.participants[trader]
    items, listings, offers = state.items, state.listings, state.offers
    holdings = tuple(map(items.__getitem__, state.items_by_owner.get(trader, ())))
    owned_kinds = set(map(_kind, holdings))
    open_wants = tuple(w for w in principal.wants if w.kind not in owned_kinds)
    my_listings = tuple(map(listings.__getitem__, state.open_listings_by_seller.get(trader, ())))
    owners: dict[str, frozenset[str]] = state.cache.setdefault("own_items", {})  # type: ignore[assignment]
    own_items = owners.get(trader)
    if own_items is None:  # a principal never changes: what they came to sell is known once
        own_items = owners[trader] = frozenset(item.id for item in principal.items)
    listed = state.open_listing_of_item
    unlisted = tuple(item for item in holdings if item.id in own_items and item.id not in listed)
    # none of these is the trader's own: what it lists it owns, and it wants no kind it owns
    shown = [_newest_views(state, want.kind, listings_per_want) for want in open_wants]
    live = [o for o in map(offers.__getitem__, state.open_offers_by_party.get(trader, ())) if o.expires_at > at]
    threads = {o.listing_id: None for o in live}
    return _assemble(
        Observation,
        market=market, trader=trader, tier=tier, at=at, step=step, principal=principal,
        balance=state.balance[trader], escrow=state.escrow[trader], holdings=holdings,
        open_wants=open_wants, my_listings=my_listings, unlisted=unlisted,
        market_listings=shown[0] if len(shown) == 1 else tuple(chain.from_iterable(shown)),
        thread_listings=tuple(_view(state, lid) for lid in threads),
        incoming=tuple(o for o in live if o.recipient == trader),
        outgoing=tuple(o for o in live if o.proposer == trader),
        news=tuple(news),
    )


_kind = attrgetter("kind")


def _newest_views(state: MarketState, kind: str, count: int) -> tuple[ListingView, ...]:
    """The views of the ``count`` newest open listings of ``kind``, newest first; built again only
    when those listings change (one opens or closes, or one of them is repriced)."""
    newest = tuple(map(state.listings.__getitem__, islice(reversed(state.open_listings_by_kind.get(kind, {})), count)))
    shown: dict[tuple[str, int], tuple[tuple[Listing, ...], tuple[ListingView, ...]]]
    shown = state.cache.setdefault("newest_views", {})  # type: ignore[assignment]
    known = shown.get((kind, count))
    if known is not None and known[0] == newest:
        return known[1]
    views = tuple(_view(state, listing.id) for listing in newest)
    shown[kind, count] = (newest, views)
    return views


M = TypeVar("M", Observation, ListingView)


def _assemble(model: type[M], **values: Any) -> M:
    """``model.model_construct(**values)`` for values that give every field, in field order, without
    its per-field bookkeeping (an observation is built for every trader's every turn)."""
    record = object.__new__(model)
    object.__setattr__(record, "__dict__", values)
    object.__setattr__(record, "__pydantic_fields_set__", set(values))
    object.__setattr__(record, "__pydantic_extra__", None)
    object.__setattr__(record, "__pydantic_private__", None)
    return record


def _view(state: MarketState, listing_id: str) -> ListingView:
    """The listing's view, built once per version of the listing."""
    listing = state.listings[listing_id]
    views: dict[str, ListingView] = state.cache.setdefault("views", {})  # type: ignore[assignment]
    view = views.get(listing_id)
    if view is None or view.listing is not listing:
        view = views[listing_id] = _assemble(
            ListingView,
            listing=listing, item=state.items[listing.item_id],
            seller_name=state.participants[listing.seller].name,
        )
    return view
