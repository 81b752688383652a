"""Ledger events: what happened in a market. Events are the truth.

One pydantic discriminated union. Every event carries ``at``, the simulated
second it happened; the ledger adds the sequence number and the market name.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from market.domain import Deal, Frozen, Listing, Message, Offer, OfferStatus, Participant
from market.money import Money


class Rules(Frozen):
    """The rules one market runs under."""

    offer_ttl: int = Field(24 * 3600, gt=0, description="seconds an offer stays open")
    enforce_mandate: bool = Field(
        True, description="refuse actions beyond a principal's budget, max price or reserve"
    )


class MarketOpened(Frozen):
    type: Literal["market_opened"] = "market_opened"
    at: int
    rules: Rules


class ParticipantJoined(Frozen):
    type: Literal["participant_joined"] = "participant_joined"
    at: int
    participant: Participant


class ItemListed(Frozen):
    type: Literal["item_listed"] = "item_listed"
    at: int
    listing: Listing


class ListingDelisted(Frozen):
    type: Literal["listing_delisted"] = "listing_delisted"
    at: int
    listing_id: str


class ListingRepriced(Frozen):
    type: Literal["listing_repriced"] = "listing_repriced"
    at: int
    listing_id: str
    ask: Money


class OfferMade(Frozen):
    type: Literal["offer_made"] = "offer_made"
    at: int
    offer: Offer


class OfferEnded(Frozen):
    """An offer stopped being open without a deal (rejected, withdrawn, ...)."""

    type: Literal["offer_ended"] = "offer_ended"
    at: int
    offer_id: str
    listing_id: str
    status: OfferStatus
    message: str = ""


class MessageSent(Frozen):
    type: Literal["message_sent"] = "message_sent"
    at: int
    message: Message


class DealClosed(Frozen):
    """An offer was accepted: money and the item moved in one step."""

    type: Literal["deal_closed"] = "deal_closed"
    at: int
    deal: Deal
    message: str = ""


class ActionRejected(Frozen):
    """An action the exchange refused, kept so agents and analysts see why."""

    type: Literal["action_rejected"] = "action_rejected"
    at: int
    actor: str
    action: dict[str, Any]
    reason: str


class AgentFailed(Frozen):
    """A trader's turn that failed (its policy or model call), recorded so the week goes on and
    the failure is counted: ``kind`` is a short stable code, ``reason`` a short sentence."""

    type: Literal["agent_failed"] = "agent_failed"
    at: int
    actor: str
    tier: str
    kind: str = Field(max_length=64)
    reason: str = Field(max_length=500)


Event = Annotated[
    MarketOpened
    | ParticipantJoined
    | ItemListed
    | ListingDelisted
    | ListingRepriced
    | OfferMade
    | OfferEnded
    | MessageSent
    | DealClosed
    | ActionRejected
    | AgentFailed,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: str | bytes | dict[str, Any]) -> Event:
    if isinstance(data, dict):
        return EVENT_ADAPTER.validate_python(data)
    return EVENT_ADAPTER.validate_json(data)


def event_json(event: Event) -> str:
    """Canonical JSON of an event (stable key order, no spaces)."""
    return event.model_dump_json()


__all__ = [
    "ActionRejected", "AgentFailed", "DealClosed", "Event", "ItemListed", "ListingDelisted", "ListingRepriced",
    "MarketOpened", "MessageSent", "OfferEnded", "OfferMade", "ParticipantJoined",
    "Rules", "event_json", "parse_event",
]
