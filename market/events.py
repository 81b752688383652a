"""Ledger events: what happened in a market. Events are the truth.

One tagged union of msgspec records (``type`` says which event; it is the first key of an event's
JSON). Every event carries ``at``, the simulated second it happened; the ledger adds the sequence
number and the market name. An event's JSON is encoded and read back (validated) here: the rules of a
market and a refused action are pydantic records (people write the rules in a scenario; the actions'
schema is the model tools'), which the encoder and decoder hand to pydantic.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from pydantic import BaseModel, Field

from market.actions import ActionBase, parse_action
from market.clock import DAY
from market.domain import Deal, Frozen, Listing, Message, Offer, OfferStatus, Participant, Record
from market.money import Money


class Rules(Frozen):
    """The rules one market runs under."""

    offer_ttl: int = Field(DAY, gt=0, description="seconds an offer stays open")
    enforce_mandate: bool = Field(
        True, description="refuse actions beyond a principal's budget, max price or reserve"
    )


class _Tagged(Record, tag_field="type"):
    """Base of the events: each names its kind in ``type`` (a class attribute, written first in its JSON)."""


class MarketOpened(_Tagged, tag="market_opened", kw_only=True):
    """A market began, under ``rules``; always the first event of a market, at second 0."""

    type: ClassVar[Literal["market_opened"]] = "market_opened"
    at: int
    rules: Rules


class ParticipantJoined(_Tagged, tag="participant_joined", kw_only=True):
    """A participant entered the market with their budget, items, wants and tier (at 0, or later in a live run)."""

    type: ClassVar[Literal["participant_joined"]] = "participant_joined"
    at: int
    participant: Participant


class ItemListed(_Tagged, tag="item_listed", kw_only=True):
    """A seller put one of their items up for sale: the new open ``listing`` with its asking price."""

    type: ClassVar[Literal["item_listed"]] = "item_listed"
    at: int
    listing: Listing


class ListingDelisted(_Tagged, tag="listing_delisted", kw_only=True):
    """A seller took an open listing down; the offers still open on it ended just before (``closed``)."""

    type: ClassVar[Literal["listing_delisted"]] = "listing_delisted"
    at: int
    listing_id: str


class ListingRepriced(_Tagged, tag="listing_repriced", kw_only=True):
    """A seller changed the asking price of an open listing to ``ask``; open offers on it stay open."""

    type: ClassVar[Literal["listing_repriced"]] = "listing_repriced"
    at: int
    listing_id: str
    ask: Money


class OfferMade(_Tagged, tag="offer_made", kw_only=True):
    """An offer (or a counter-offer) was made on an open listing; a buyer's own offer puts its amount in escrow."""

    type: ClassVar[Literal["offer_made"]] = "offer_made"
    at: int
    offer: Offer


class OfferEnded(_Tagged, tag="offer_ended", kw_only=True):
    """An offer stopped being open without a deal: rejected, withdrawn, countered, expired, or closed because
    its listing sold to someone else or was delisted (``status`` says which); any escrow it held is released."""

    type: ClassVar[Literal["offer_ended"]] = "offer_ended"
    at: int
    offer_id: str
    listing_id: str
    status: OfferStatus
    message: str = ""


class MessageSent(_Tagged, tag="message_sent", kw_only=True):
    """A participant wrote in a listing's thread (to one participant, or to all when ``to`` is None)."""

    type: ClassVar[Literal["message_sent"]] = "message_sent"
    at: int
    message: Message


class DealClosed(_Tagged, tag="deal_closed", kw_only=True):
    """An offer was accepted: money and the item moved in one step."""

    type: ClassVar[Literal["deal_closed"]] = "deal_closed"
    at: int
    deal: Deal
    message: str = ""


class RejectionCode(StrEnum):
    """Why an action was refused, as a stable machine-readable code (the sentence beside it is for people).

    Programs branch on these, never on the sentence. Codes are only ever added, never renamed.
    """

    NOT_PARTICIPANT = "not_participant"  # the actor is not in this market
    ALREADY_JOINED = "already_joined"  # a participant joined twice
    NO_SUCH_ITEM = "no_such_item"
    NO_SUCH_LISTING = "no_such_listing"
    NO_SUCH_OFFER = "no_such_offer"
    NO_SUCH_PARTICIPANT = "no_such_participant"  # a message to someone not in the market
    NOT_OWNER = "not_owner"  # listing, delisting or repricing what is not yours
    ITEM_SOLD = "item_sold"  # an item sells once
    ALREADY_LISTED = "already_listed"
    LISTING_CLOSED = "listing_closed"  # sold or delisted
    OFFER_CLOSED = "offer_closed"  # accepted, rejected, withdrawn, countered, closed or expired
    OWN_LISTING = "own_listing"  # buying from yourself
    NOT_RECIPIENT = "not_recipient"  # answering an offer addressed to someone else
    NOT_PROPOSER = "not_proposer"  # withdrawing someone else's offer
    MESSAGE_TO_SELF = "message_to_self"
    NOT_POSITIVE = "not_positive"  # a price of $0.00 or less
    SAME_PRICE = "same_price"  # a reprice to the same ask, a counter equal to the offer
    INSUFFICIENT_FUNDS = "insufficient_funds"  # more than the balance minus escrow
    ABOVE_MAX_PRICE = "above_max_price"  # the mandate: more than the principal would pay
    BELOW_RESERVE = "below_reserve"  # the mandate: less than the principal's reserve price
    NOT_WANTED = "not_wanted"  # the mandate: a kind the principal did not ask for
    WANT_FILLED = "want_filled"  # the mandate: every unit asked for is bought
    WANT_IN_FLIGHT = "want_in_flight"  # the mandate: the units asked for are bought or in flight elsewhere
    DECLINED_BY_PRINCIPAL = "declined_by_principal"  # a person said no to their agent's action (Slack approvals)
    UNKNOWN_ACTION = "unknown_action"
    UNSPECIFIED = "unspecified"  # read from a ledger written before refusals carried codes

    @property
    def mandate(self) -> bool:
        """Whether this refusal is the principal's mandate holding (price, reserve, kind or quantity)."""
        return self in _MANDATE


_MANDATE = frozenset({
    RejectionCode.ABOVE_MAX_PRICE, RejectionCode.BELOW_RESERVE, RejectionCode.NOT_WANTED,
    RejectionCode.WANT_FILLED, RejectionCode.WANT_IN_FLIGHT,
})


class ActionRejected(_Tagged, tag="action_rejected", kw_only=True):
    """An action the exchange refused, kept (typed, with its code) so agents and analysts see why."""

    type: ClassVar[Literal["action_rejected"]] = "action_rejected"
    at: int
    actor: str
    action: ActionBase  # one of the vocabulary (``Action``), validated by its pydantic schema
    code: RejectionCode = RejectionCode.UNSPECIFIED
    reason: str


class AgentFailed(_Tagged, tag="agent_failed", kw_only=True):
    """A trader's turn that failed (its policy or model call), recorded so the week goes on and
    the failure is counted: ``kind`` is a short stable code, ``reason`` a short sentence."""

    type: ClassVar[Literal["agent_failed"]] = "agent_failed"
    at: int
    actor: str
    tier: str
    kind: Annotated[str, msgspec.Meta(max_length=64)]
    reason: Annotated[str, msgspec.Meta(max_length=500)]


Event = (
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
    | AgentFailed
)
"""Any event; ``type`` says which."""


def encode_hook(value: object) -> Any:
    """msgspec's ``enc_hook`` for a record holding events: a pydantic record inside an event (its market's
    rules, a refused action) as its JSON values."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise NotImplementedError(f"cannot encode a {type(value).__name__} in an event")


def decode_hook(kind: type, value: Any) -> Any:
    """msgspec's ``dec_hook`` for a record holding events: the pydantic record of ``kind`` inside an event,
    validated by its schema."""
    if kind is ActionBase:
        return parse_action(value)
    if kind is Rules:
        return Rules.model_validate(value)
    raise NotImplementedError(f"no decoder for {kind.__name__} in an event")


_ENCODER = msgspec.json.Encoder(enc_hook=encode_hook)
_DECODER = msgspec.json.Decoder(Event, dec_hook=decode_hook)
_LIST_DECODER = msgspec.json.Decoder(list[Event], dec_hook=decode_hook)


def parse_event(data: str | bytes | dict[str, Any]) -> Event:
    """Validate one event from its JSON (or a dict); raises ``msgspec.ValidationError`` (a ``ValueError``)."""
    if isinstance(data, dict):
        return msgspec.convert(data, Event, dec_hook=decode_hook)  # type: ignore[arg-type]
    return _DECODER.decode(data)


def parse_events(data: str | bytes) -> list[Event]:
    """Validate a JSON array of events in one call; raises ``msgspec.ValidationError`` (a ``ValueError``)."""
    return _LIST_DECODER.decode(data)


def event_json(event: Event) -> str:
    """Canonical JSON of an event: its fields in order (``type`` first), no spaces, text as UTF-8."""
    return _ENCODER.encode(event).decode()


def event_dict(event: Event) -> dict[str, Any]:
    """An event as JSON values (what ``json.loads(event_json(event))`` gives)."""
    return msgspec.json.decode(_ENCODER.encode(event))  # type: ignore[no-any-return]


__all__ = [
    "ActionRejected", "AgentFailed", "DealClosed", "Event", "ItemListed", "ListingDelisted", "ListingRepriced",
    "MarketOpened", "MessageSent", "OfferEnded", "OfferMade", "ParticipantJoined",
    "RejectionCode", "Rules", "decode_hook", "encode_hook", "event_dict", "event_json", "parse_event", "parse_events",
]
