"""The state of one market, and how each event changes it.

``MarketState`` is a projection of the ledger: it changes only through
``evolve(event)``, so replaying a market's events rebuilds it exactly. It
keeps the indexes agents need (open listings by kind, open offers by
participant) so an observation never scans the whole market.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from market.domain import (
    Deal,
    Item,
    Listing,
    ListingStatus,
    Message,
    Offer,
    OfferStatus,
    Participant,
)
from market.events import (
    ActionRejected,
    AgentFailed,
    DealClosed,
    Event,
    ItemListed,
    ListingDelisted,
    ListingRepriced,
    MarketOpened,
    MessageSent,
    OfferEnded,
    OfferMade,
    ParticipantJoined,
    Rules,
)

R = TypeVar("R", Listing, Offer)


@dataclass
class MarketState:
    """Everything the exchange knows about one market."""

    rules: Rules = field(default_factory=Rules)
    participants: dict[str, Participant] = field(default_factory=dict)
    items: dict[str, Item] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)
    balance: dict[str, int] = field(default_factory=dict)
    escrow: dict[str, int] = field(default_factory=dict)
    listings: dict[str, Listing] = field(default_factory=dict)
    offers: dict[str, Offer] = field(default_factory=dict)
    deals: list[Deal] = field(default_factory=list)
    messages: dict[str, list[Message]] = field(default_factory=dict)
    # indexes (insertion-ordered dicts used as ordered sets)
    open_listing_of_item: dict[str, str] = field(default_factory=dict)
    open_listings_by_kind: dict[str, dict[str, None]] = field(default_factory=dict)
    open_offers: dict[str, None] = field(default_factory=dict)
    open_offers_by_listing: dict[str, dict[str, None]] = field(default_factory=dict)
    open_offers_by_party: dict[str, dict[str, None]] = field(default_factory=dict)
    listings_by_seller: dict[str, dict[str, None]] = field(default_factory=dict)
    open_listings_by_seller: dict[str, dict[str, None]] = field(default_factory=dict)
    items_by_owner: dict[str, dict[str, None]] = field(default_factory=dict)
    sold_items: set[str] = field(default_factory=set)
    bought: dict[str, dict[str, int]] = field(default_factory=dict)
    """Units bought per buyer and kind: how much of each want is filled."""
    money_in: int = 0
    money_by_tier: dict[str, int] = field(default_factory=dict)
    """Settled money per tier (budgets, plus sales, minus purchases), each participant in the tier they joined with."""
    volume: int = 0
    """Money paid in the market's deals so far."""
    last_at: int = 0
    # counts of changes, per participant, of what an observation shows of their own things (the
    # observation's parts are kept by them, market.observation); derived from the events like the rest
    holding_changes: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int), repr=False, compare=False)
    """Per participant, how many times what they hold changed (they joined, bought or sold)."""
    listing_changes: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int), repr=False, compare=False)
    """Per seller, how many times one of their listings opened, closed or was repriced."""
    offer_changes: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int), repr=False, compare=False)
    """Per participant, how many times an open offer of theirs was made or ended, or the listing of
    one was repriced or closed."""
    open_offers_by_want: dict[tuple[str, str], dict[str, None]] = field(default_factory=dict, repr=False, compare=False)
    """Open offers per (buyer, kind): the units of a want in flight (an offer to or from the buyer)."""
    wanted_units: dict[str, Counter[str]] = field(default_factory=dict, repr=False, compare=False)
    """Per participant, how many units of each kind they want."""
    kind_changes: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int), repr=False, compare=False)
    """Per kind, how many times its open listings changed (one opened, closed or was repriced)."""
    cache: dict[str, object] = field(default_factory=dict, repr=False, compare=False)
    """Derived values keyed by whoever derives them; never part of the market's truth."""

    @classmethod
    def replay(cls, events: Iterable[Event]) -> MarketState:
        """A market's state built from its events, in order, by :meth:`evolve`."""
        state = cls()
        for event in events:
            state.evolve(event)
        return state

    # --- queries -----------------------------------------------------------
    def available(self, participant_id: str) -> int:
        """Money a participant can still commit: balance minus escrow."""
        return self.balance.get(participant_id, 0) - self.escrow.get(participant_id, 0)

    def holdings(self, participant_id: str) -> list[Item]:
        """The items the participant owns now (listed or not), in the order they came to it."""
        return [self.items[i] for i in self.items_by_owner.get(participant_id, {})]

    def bought_units(self, participant_id: str, kind: str) -> int:
        """How many items of ``kind`` the participant has bought in this market."""
        return self.bought.get(participant_id, {}).get(kind, 0)

    def next_id(self, prefix: str) -> str:
        """The id the next listing (``L``), offer (``O``) or deal (``D``) of this market gets; ``KeyError`` for any
        other prefix."""
        count = {"L": len(self.listings), "O": len(self.offers), "D": len(self.deals)}[prefix]
        return f"{prefix}{count + 1}"

    # --- the only way state changes ---------------------------------------
    def evolve(self, event: Event) -> None:
        """Change the state by ``event`` (each kind of event has its own step below)."""
        if event.at > self.last_at:
            self.last_at = event.at
        _EVOLVE[type(event)](self, event)

    def _opened(self, event: MarketOpened) -> None:
        self.rules = event.rules

    def _joined(self, event: ParticipantJoined) -> None:
        p = event.participant
        self.participants[p.id] = p
        self.balance[p.id] = self.balance.get(p.id, 0) + p.budget
        self.escrow.setdefault(p.id, 0)
        self.money_in += p.budget
        self.money_by_tier[p.tier] = self.money_by_tier.get(p.tier, 0) + p.budget
        self.wanted_units[p.id] = Counter(want.kind for want in p.wants)
        self.holding_changes[p.id] += 1
        owned = self.items_by_owner.setdefault(p.id, {})
        for item in p.items:
            self.items[item.id] = item
            self.owner[item.id] = p.id
            owned[item.id] = None

    def _listed(self, event: ItemListed) -> None:
        listing = event.listing
        self.listings[listing.id] = listing
        self.open_listing_of_item[listing.item_id] = listing.id
        kind = self.items[listing.item_id].kind
        self.open_listings_by_kind.setdefault(kind, {})[listing.id] = None
        self.listings_by_seller.setdefault(listing.seller, {})[listing.id] = None
        self.open_listings_by_seller.setdefault(listing.seller, {})[listing.id] = None
        self.listing_changes[listing.seller] += 1
        self.kind_changes[kind] += 1

    def _delisted(self, event: ListingDelisted) -> None:
        self._close_listing(event.listing_id, ListingStatus.DELISTED)

    def _repriced(self, event: ListingRepriced) -> None:
        listing = self.listings[event.listing_id] = changed(self.listings[event.listing_id], ask=event.ask)
        self._listing_changed(listing, self.items[listing.item_id].kind)

    def _offer_made(self, event: OfferMade) -> None:
        offer = event.offer
        oid = offer.id
        self.offers[oid] = offer
        self.open_offers[oid] = None
        self.open_offers_by_listing.setdefault(offer.listing_id, {})[oid] = None
        self.open_offers_by_party.setdefault(offer.buyer, {})[oid] = None
        self.open_offers_by_party.setdefault(offer.seller, {})[oid] = None
        self.open_offers_by_want.setdefault((offer.buyer, self._kind_of(offer)), {})[oid] = None
        self.escrow[offer.buyer] += offer.escrowed
        self.offer_changes[offer.buyer] += 1
        self.offer_changes[offer.seller] += 1

    def _offer_ended(self, event: OfferEnded) -> None:
        self._end_offer(event.offer_id, event.status)

    def _deal_closed(self, event: DealClosed) -> None:
        deal = event.deal
        self._end_offer(deal.offer_id, OfferStatus.ACCEPTED)  # releases escrow
        self.balance[deal.buyer] -= deal.price
        self.balance[deal.seller] += deal.price
        by_tier, participants = self.money_by_tier, self.participants
        by_tier[participants[deal.buyer].tier] -= deal.price
        by_tier[participants[deal.seller].tier] += deal.price
        self.holding_changes[deal.buyer] += 1
        self.holding_changes[deal.seller] += 1
        self.owner[deal.item_id] = deal.buyer
        del self.items_by_owner[deal.seller][deal.item_id]
        self.items_by_owner.setdefault(deal.buyer, {})[deal.item_id] = None
        self.sold_items.add(deal.item_id)
        units = self.bought.setdefault(deal.buyer, {})
        kind = self.items[deal.item_id].kind
        units[kind] = units.get(kind, 0) + 1
        self.deals.append(deal)
        self.volume += deal.price
        self._close_listing(deal.listing_id, ListingStatus.SOLD)

    def _message_sent(self, event: MessageSent) -> None:
        message = event.message
        self.messages.setdefault(message.listing_id, []).append(message)

    def _unchanged(self, event: ActionRejected | AgentFailed) -> None:
        """A refused action or a failed turn is recorded but changes nothing."""

    def _kind_of(self, offer: Offer) -> str:
        return self.items[self.listings[offer.listing_id].item_id].kind

    def _listing_changed(self, listing: Listing, kind: str) -> None:
        """Count a change of an open ``listing`` (of ``kind``) for its seller, every party to an open
        offer on it, and its kind."""
        self.listing_changes[listing.seller] += 1
        for oid in self.open_offers_by_listing.get(listing.id, ()):
            offer = self.offers[oid]
            self.offer_changes[offer.buyer] += 1
            self.offer_changes[offer.seller] += 1
        self.kind_changes[kind] += 1

    def _end_offer(self, offer_id: str, status: OfferStatus) -> None:
        offer = self.offers[offer_id]
        self.offers[offer_id] = changed(offer, status=status)
        self.escrow[offer.buyer] -= offer.escrowed
        self.offer_changes[offer.buyer] += 1
        self.offer_changes[offer.seller] += 1
        if self.open_offers.pop(offer_id, 0) is None:  # (it was open: an ended offer is in no index)
            del self.open_offers_by_listing[offer.listing_id][offer_id]
            for party in (offer.buyer, offer.seller):
                self.open_offers_by_party[party].pop(offer_id, None)
            want = (offer.buyer, self._kind_of(offer))
            in_flight = self.open_offers_by_want[want]
            del in_flight[offer_id]
            if not in_flight:
                del self.open_offers_by_want[want]

    def _close_listing(self, listing_id: str, status: ListingStatus) -> None:
        listing = self.listings[listing_id] = changed(self.listings[listing_id], status=status)
        kind = self.items[listing.item_id].kind
        self._listing_changed(listing, kind)
        self.open_listing_of_item.pop(listing.item_id, None)
        self.open_listings_by_seller.get(listing.seller, {}).pop(listing_id, None)
        self.open_listings_by_kind.get(kind, {}).pop(listing_id, None)


_EVOLVE: Mapping[type, Callable[[MarketState, Any], None]] = {  # (a dict: looked up for every event)
    MarketOpened: MarketState._opened, ParticipantJoined: MarketState._joined, ItemListed: MarketState._listed,
    ListingDelisted: MarketState._delisted, ListingRepriced: MarketState._repriced,
    OfferMade: MarketState._offer_made, OfferEnded: MarketState._offer_ended, DealClosed: MarketState._deal_closed,
    MessageSent: MarketState._message_sent, ActionRejected: MarketState._unchanged, AgentFailed: MarketState._unchanged,
}
"""How each kind of event changes the state, found by its class (one lookup instead of a match arm per kind)."""


def changed(record: R, **values: object) -> R:
    """A copy of a frozen record with ``values`` changed (``msgspec.structs.replace``).

    For the state's own updates only (a status, an ask), whose values come from events already validated.
    """
    return msgspec.structs.replace(record, **values)


def check_invariants(state: MarketState) -> list[str]:
    """Return every broken invariant (an empty list means all hold)."""
    problems: list[str] = []
    if sum(state.balance.values()) != state.money_in:
        problems.append(f"money not conserved: {sum(state.balance.values())} != {state.money_in}")
    by_tier: dict[str, int] = {}
    for pid, person in state.participants.items():
        by_tier[person.tier] = by_tier.get(person.tier, 0) + state.balance[pid]
    if by_tier != state.money_by_tier:
        problems.append(f"money per tier {state.money_by_tier} is not the balances' {by_tier}")
    held: dict[str, int] = {}
    for oid in state.open_offers:
        offer = state.offers[oid]
        held[offer.buyer] = held.get(offer.buyer, 0) + offer.escrowed
    for pid, amount in state.escrow.items():
        if amount < 0:
            problems.append(f"{pid} has negative escrow {amount}")
        if amount != held.get(pid, 0):
            problems.append(f"{pid} escrow {amount} != open offers {held.get(pid, 0)}")
        if state.balance[pid] < 0:
            problems.append(f"{pid} has negative balance {state.balance[pid]}")
        if amount > state.balance[pid]:
            problems.append(f"{pid} escrow {amount} exceeds balance {state.balance[pid]}")
    if set(state.owner) != set(state.items):
        problems.append("some item has no owner")
    sold = [d.item_id for d in state.deals]
    if len(sold) != len(set(sold)):
        problems.append("an item was sold twice")
    by_want: dict[tuple[str, str], dict[str, None]] = {}
    for oid in state.open_offers:
        offer = state.offers[oid]
        by_want.setdefault((offer.buyer, state.items[state.listings[offer.listing_id].item_id].kind), {})[oid] = None
    if by_want != state.open_offers_by_want:
        problems.append("the open offers per buyer and kind are not the open offers")
    for lid in state.open_listing_of_item.values():
        listing = state.listings[lid]
        if state.owner[listing.item_id] != listing.seller:
            problems.append(f"open listing {lid} is not its owner's")
    return problems
