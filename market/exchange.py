"""The rules of the market, as pure functions.

``decide`` checks an action against the state and returns the events it
causes or a ``Rejection`` whose reason a trader can act on. It reads the
state and never changes it; there is no clock, IO or randomness here.
``apply`` is ``decide`` followed by ``state.evolve`` for each event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from market.actions import (
    Accept,
    Action,
    Counter,
    Delist,
    ListItem,
    MakeOffer,
    Pass,
    Reject,
    Reprice,
    SendMessage,
    Withdraw,
)
from market.domain import Deal, Frozen, Listing, ListingStatus, Message, Offer, OfferStatus
from market.events import (
    DealClosed,
    Event,
    ItemListed,
    ListingDelisted,
    ListingRepriced,
    MessageSent,
    OfferEnded,
    OfferMade,
    RejectionCode,
)
from market.money import format_money
from market.state import MarketState


class Rejection(Frozen):
    """Why the exchange refused an action: a stable code for programs, a sentence for traders."""

    code: RejectionCode
    reason: str


Outcome = list[Event] | Rejection


def apply(state: MarketState, actor: str, action: Action, at: int) -> Outcome:
    """Decide ``action`` and, if allowed, evolve ``state`` by its events."""
    outcome = decide(state, actor, action, at)
    if not isinstance(outcome, Rejection):
        for event in outcome:
            state.evolve(event)
    return outcome


def decide(state: MarketState, actor: str, action: Action, at: int) -> Outcome:
    """The events ``action`` by ``actor`` at ``at`` would cause, or why not."""
    if actor not in state.participants:
        return Rejection(code=RejectionCode.NOT_PARTICIPANT, reason=f"{actor} is not a participant in this market.")
    rule = _RULES.get(type(action))
    if rule is None:  # pragma: no cover
        return Rejection(code=RejectionCode.UNKNOWN_ACTION, reason=f"unknown action {action!r}.")
    return rule(state, actor, action, at)


def expire(state: MarketState, at: int) -> list[Event]:
    """Events ending every open offer whose time ran out by ``at``."""
    events: list[Event] = []
    for oid in state.open_offers:  # insertion order == expiry order (one TTL per market)
        offer = state.offers[oid]
        if offer.expires_at > at:
            break
        events.append(OfferEnded(at=at, offer_id=oid, listing_id=offer.listing_id, status=OfferStatus.EXPIRED))
    return events


# --- rules ---------------------------------------------------------------


def _list_item(state: MarketState, actor: str, action: ListItem, at: int) -> Outcome:
    item = state.items.get(action.item_id)
    if item is None:
        return Rejection(code=RejectionCode.NO_SUCH_ITEM, reason=f"There is no item {action.item_id}.")
    if state.owner[item.id] != actor:
        return Rejection(
            code=RejectionCode.NOT_OWNER,
            reason=f"You do not own {item.title} ({item.id}); only its owner can list it.",
        )
    if item.id in state.sold_items:
        return Rejection(
            code=RejectionCode.ITEM_SOLD,
            reason=f"{item.title} ({item.id}) has already been sold once; it cannot be listed again.",
        )
    if item.id in state.open_listing_of_item:
        lid = state.open_listing_of_item[item.id]
        return Rejection(
            code=RejectionCode.ALREADY_LISTED,
            reason=f"{item.title} is already listed as {lid}; delist it first.",
        )
    if action.ask <= 0:
        return Rejection(code=RejectionCode.NOT_POSITIVE, reason="The asking price must be more than $0.00.")
    reserve = _reserve(state, actor, item.id)
    if reserve is not None and action.ask < reserve:
        return Rejection(
            code=RejectionCode.BELOW_RESERVE,
            reason=f"An ask of {format_money(action.ask)} is below your principal's reserve price "
            f"of {format_money(reserve)} for {item.title}."
        )
    listing = Listing(
        id=state.next_id("L"), item_id=item.id, seller=actor, ask=action.ask,
        description=action.description or item.title, opened_at=at,
    )
    return [ItemListed(at=at, listing=listing)]


def _delist(state: MarketState, actor: str, action: Delist, at: int) -> Outcome:
    listing = state.listings.get(action.listing_id)
    if listing is None:
        return Rejection(code=RejectionCode.NO_SUCH_LISTING, reason=f"There is no listing {action.listing_id}.")
    if listing.seller != actor:
        return Rejection(code=RejectionCode.NOT_OWNER, reason=f"Listing {listing.id} is not yours to delist.")
    if listing.status is not ListingStatus.OPEN:
        return Rejection(
            code=RejectionCode.LISTING_CLOSED,
            reason=f"Listing {listing.id} is already {listing.status.value}.",
        )
    closed = _close_offers(state, listing.id, at)
    return [*closed, ListingDelisted(at=at, listing_id=listing.id)]


def _reprice(state: MarketState, actor: str, action: Reprice, at: int) -> Outcome:
    listing = _open_listing(state, action.listing_id)
    if isinstance(listing, Rejection):
        return listing
    if listing.seller != actor:
        return Rejection(code=RejectionCode.NOT_OWNER, reason=f"Listing {listing.id} is not yours to reprice.")
    if action.ask == listing.ask:
        return Rejection(
            code=RejectionCode.SAME_PRICE,
            reason=f"Listing {listing.id} already asks {format_money(listing.ask)}.",
        )
    problem = _check_seller_accepts(state, actor, listing.item_id, action.ask)
    if problem:
        return problem
    return [ListingRepriced(at=at, listing_id=listing.id, ask=action.ask)]


def _make_offer(state: MarketState, actor: str, action: MakeOffer, at: int) -> Outcome:
    listing = _open_listing(state, action.listing_id)
    if isinstance(listing, Rejection):
        return listing
    if listing.seller == actor:
        return Rejection(
            code=RejectionCode.OWN_LISTING,
            reason=f"Listing {listing.id} is your own; you cannot buy from yourself.",
        )
    problem = _check_buyer_can_pay(state, actor, listing, action.amount) or _check_wanted(state, actor, listing, at)
    if problem:
        return problem
    offer = Offer(
        id=state.next_id("O"), listing_id=listing.id, proposer=actor, recipient=listing.seller,
        buyer=actor, seller=listing.seller, amount=action.amount, message=action.message,
        made_at=at, expires_at=at + state.rules.offer_ttl,
    )
    return [OfferMade(at=at, offer=offer)]


def _counter(state: MarketState, actor: str, action: Counter, at: int) -> Outcome:
    offer = _open_offer_to(state, actor, action.offer_id, at)
    if isinstance(offer, Rejection):
        return offer
    listing = state.listings[offer.listing_id]
    if action.amount == offer.amount:
        return Rejection(
            code=RejectionCode.SAME_PRICE,
            reason=f"Your counter equals the offer ({format_money(offer.amount)}); accept it instead.",
        )
    if actor == offer.buyer:
        # the buyer's own escrow is freed by the counter, so check against it
        problem = _check_buyer_can_pay(state, actor, listing, action.amount, freed=offer.escrowed) or _check_wanted(
            state, actor, listing, at
        )
    else:
        problem = _check_seller_accepts(state, actor, listing.item_id, action.amount)
    if problem:
        return problem
    ended = OfferEnded(
        at=at, offer_id=offer.id, listing_id=offer.listing_id, status=OfferStatus.COUNTERED,
        message=action.message,
    )
    counter = Offer(
        id=state.next_id("O"), listing_id=listing.id, proposer=actor, recipient=offer.proposer,
        buyer=offer.buyer, seller=offer.seller, amount=action.amount, message=action.message,
        made_at=at, expires_at=at + state.rules.offer_ttl, counter_of=offer.id, round=offer.round + 1,
    )
    return [ended, OfferMade(at=at, offer=counter)]


def _accept(state: MarketState, actor: str, action: Accept, at: int) -> Outcome:
    offer = _open_offer_to(state, actor, action.offer_id, at)
    if isinstance(offer, Rejection):
        return offer
    listing = state.listings[offer.listing_id]
    if actor == offer.seller:
        problem = _check_seller_accepts(state, actor, listing.item_id, offer.amount)
    else:
        problem = _check_buyer_can_pay(state, actor, listing, offer.amount)
    problem = problem or _check_wanted(state, offer.buyer, listing, at, by=actor)
    if problem:
        return problem
    deal = Deal(
        id=state.next_id("D"), listing_id=listing.id, offer_id=offer.id, item_id=listing.item_id,
        seller=offer.seller, buyer=offer.buyer, price=offer.amount, at=at,
    )
    others = [e for e in _close_offers(state, listing.id, at) if e.offer_id != offer.id]
    return [DealClosed(at=at, deal=deal, message=action.message), *others]


def _end(state: MarketState, actor: str, offer_id: str, at: int, status: OfferStatus, message: str) -> Outcome:
    offer = _open_offer(state, offer_id, at)
    if isinstance(offer, Rejection):
        return offer
    if status is OfferStatus.WITHDRAWN and offer.proposer != actor:
        return Rejection(
            code=RejectionCode.NOT_PROPOSER,
            reason=f"Only the one who made offer {offer_id} can withdraw it.",
        )
    if status is OfferStatus.REJECTED and offer.recipient != actor:
        return Rejection(
            code=RejectionCode.NOT_RECIPIENT,
            reason=f"Offer {offer_id} is not addressed to you; only {offer.recipient} can reject it.",
        )
    return [OfferEnded(at=at, offer_id=offer_id, listing_id=offer.listing_id, status=status, message=message)]


def _send_message(state: MarketState, actor: str, action: SendMessage, at: int) -> Outcome:
    listing = _open_listing(state, action.listing_id)
    if isinstance(listing, Rejection):
        return listing
    if action.to is not None and action.to not in state.participants:
        return Rejection(
            code=RejectionCode.NO_SUCH_PARTICIPANT,
            reason=f"{action.to} is not a participant in this market.",
        )
    if action.to == actor:
        return Rejection(code=RejectionCode.MESSAGE_TO_SELF, reason="You cannot send a message to yourself.")
    message = Message(listing_id=listing.id, sender=actor, to=action.to, text=action.text, at=at)
    return [MessageSent(at=at, message=message)]


def _pass(state: MarketState, actor: str, action: Pass, at: int) -> Outcome:
    return []


def _reject(state: MarketState, actor: str, action: Reject, at: int) -> Outcome:
    return _end(state, actor, action.offer_id, at, OfferStatus.REJECTED, action.message)


def _withdraw(state: MarketState, actor: str, action: Withdraw, at: int) -> Outcome:
    return _end(state, actor, action.offer_id, at, OfferStatus.WITHDRAWN, "")


_RULES: Mapping[type[Frozen], Callable[[MarketState, str, Any, int], Outcome]] = {  # (a dict: looked up per action)
    Pass: _pass, ListItem: _list_item, Delist: _delist, Reprice: _reprice, MakeOffer: _make_offer,
    Counter: _counter, Accept: _accept, Reject: _reject, Withdraw: _withdraw, SendMessage: _send_message,
}
"""The rule for each kind of action, found by its class (one lookup instead of a match arm per kind)."""


# --- helpers ---------------------------------------------------------------


def _open_listing(state: MarketState, listing_id: str) -> Listing | Rejection:
    listing = state.listings.get(listing_id)
    if listing is None:
        return Rejection(code=RejectionCode.NO_SUCH_LISTING, reason=f"There is no listing {listing_id}.")
    if listing.status is not ListingStatus.OPEN:
        return Rejection(
            code=RejectionCode.LISTING_CLOSED,
            reason=f"Listing {listing_id} is closed ({listing.status.value}).",
        )
    return listing


def _open_offer(state: MarketState, offer_id: str, at: int) -> Offer | Rejection:
    offer = state.offers.get(offer_id)
    if offer is None:
        return Rejection(code=RejectionCode.NO_SUCH_OFFER, reason=f"There is no offer {offer_id}.")
    if offer.status is not OfferStatus.OPEN or offer.expires_at <= at:
        return Rejection(
            code=RejectionCode.OFFER_CLOSED,
            reason=f"Offer {offer_id} is no longer open ({_status(offer, at)}).",
        )
    return offer


def _open_offer_to(state: MarketState, actor: str, offer_id: str, at: int) -> Offer | Rejection:
    offer = _open_offer(state, offer_id, at)
    if isinstance(offer, Rejection):
        return offer
    if offer.recipient != actor:
        return Rejection(
            code=RejectionCode.NOT_RECIPIENT,
            reason=f"Offer {offer_id} is addressed to {offer.recipient}, not you; only they can answer it."
        )
    return offer


def _status(offer: Offer, at: int) -> str:
    if offer.status is OfferStatus.OPEN and offer.expires_at <= at:
        return "expired"
    return offer.status.value


def _check_buyer_can_pay(
    state: MarketState, buyer: str, listing: Listing, amount: int, freed: int = 0
) -> Rejection | None:
    if amount <= 0:
        return Rejection(code=RejectionCode.NOT_POSITIVE, reason="An offer must be more than $0.00.")
    available = state.available(buyer) + freed
    if amount > available:
        return Rejection(
            code=RejectionCode.INSUFFICIENT_FUNDS,
            reason=f"You cannot pay {format_money(amount)}: you have {format_money(available)} "
            f"available (balance {format_money(state.balance[buyer])} minus money held for open offers)."
        )
    if state.rules.enforce_mandate:
        want = state.participants[buyer].want_for(state.items[listing.item_id].kind)
        if want is not None and amount > want.max_price:
            return Rejection(
                code=RejectionCode.ABOVE_MAX_PRICE,
                reason=f"{format_money(amount)} is above the most your principal would pay for "
                f"{want.title} ({format_money(want.max_price)})."
            )
    return None


def _check_wanted(state: MarketState, buyer: str, listing: Listing, at: int, by: str | None = None) -> Rejection | None:
    """The principal's mandate covers quantity: only kinds they asked for, no more units than they asked for.

    A unit is taken by each item of the kind already bought and by each other listing of the kind with an
    offer in flight to or from ``buyer``; another offer on this same listing is the same unit.
    """
    if not state.rules.enforce_mandate:
        return None
    item = state.items[listing.item_id]
    kind = item.kind
    wanted = state.wanted_units[buyer][kind]
    if wanted == 0:
        return Rejection(
            code=RejectionCode.NOT_WANTED,
            reason=f"{_whose(buyer, by)} did not ask for {item.title} ({item.kind}); "
            f"only what they want can be bought for them."
        )
    bought = state.bought_units(buyer, item.kind)
    if bought >= wanted:
        return Rejection(
            code=RejectionCode.WANT_FILLED,
            reason=f"{_whose(buyer, by)} asked for {_units(wanted)} of {item.kind} and already has {_units(bought)}; "
            f"no more can be bought."
        )
    offers = state.offers
    in_flight = {
        offer.listing_id
        for oid in state.open_offers_by_want.get((buyer, kind), ())
        if (offer := offers[oid]).listing_id != listing.id and offer.expires_at > at
    }
    if bought + len(in_flight) >= wanted:
        return Rejection(
            code=RejectionCode.WANT_IN_FLIGHT,
            reason=f"{_whose(buyer, by)} asked for {_units(wanted)} of {item.kind}: {_units(bought)} bought and "
            f"{_units(len(in_flight))} in flight ({', '.join(sorted(in_flight))}) already cover it; "
            f"let that offer end first."
        )
    return None


def _whose(buyer: str, by: str | None) -> str:
    return "Your principal" if by is None or by == buyer else f"The principal of {buyer}"


def _units(count: int) -> str:
    return f"{count} unit" if count == 1 else f"{count} units"


def _check_seller_accepts(state: MarketState, seller: str, item_id: str, amount: int) -> Rejection | None:
    if amount <= 0:
        return Rejection(code=RejectionCode.NOT_POSITIVE, reason="A price must be more than $0.00.")
    reserve = _reserve(state, seller, item_id)
    if reserve is not None and amount < reserve:
        title = state.items[item_id].title
        return Rejection(
            code=RejectionCode.BELOW_RESERVE,
            reason=f"{format_money(amount)} is below your principal's reserve price of "
            f"{format_money(reserve)} for {title}."
        )
    return None


def _reserve(state: MarketState, seller: str, item_id: str) -> int | None:
    if not state.rules.enforce_mandate:
        return None
    return state.participants[seller].reserves.get(item_id)


def _close_offers(state: MarketState, listing_id: str, at: int) -> list[OfferEnded]:
    return [
        OfferEnded(at=at, offer_id=oid, listing_id=listing_id, status=OfferStatus.CLOSED)
        for oid in state.open_offers_by_listing.get(listing_id, {})
    ]
