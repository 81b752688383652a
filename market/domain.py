"""The market's nouns: participants, items, listings, offers, deals, messages.

They are frozen msgspec Structs (``Record``): the engine builds and reads hundreds of thousands of
them a week, and a Struct is built in a fifth of the instructions of a pydantic model, read through
Python's fast attribute path (pydantic's ``__getattr__`` hook turns it off), encoded to the ledger's
canonical JSON and validated when read back. ``Frozen`` (pydantic) stays the base of what people write
(scenario, targets, experiment files) and of the action vocabulary, whose JSON schema the model tools
use. Money fields are integer cents; times are integer simulated seconds since the run started.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec
from pydantic import BaseModel, ConfigDict

from market.money import Money


class Frozen(BaseModel):
    """Base for immutable pydantic records (what people write, the actions); unknown fields are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Record(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """Base for the market's immutable records and events: fields by keyword, unknown fields refused when
    decoded. Not tracked by the garbage collector (``gc=False``): a record holds only strings, numbers and
    other records, so it can be in no reference cycle, and a week at scale holds millions of them."""


class Condition(StrEnum):
    """The state an item is in, from new to broken."""

    NEW = "new"
    LIKE_NEW = "like new"
    GOOD = "good"
    FAIR = "fair"
    BROKEN = "broken"


class Item(Record, kw_only=True):
    """A thing that can change hands. ``kind`` names its catalog entry."""

    id: str
    kind: str
    title: str
    category: str
    condition: Condition = Condition.GOOD
    value: Money  # reference value in cents


class Want(Record, kw_only=True):
    """Something a participant would like to buy, and the most they would pay."""

    kind: str
    title: str
    max_price: Money


class Participant(Record, kw_only=True):
    """A person: their budget, what they sell and want, their limits and style."""

    id: str
    name: str
    budget: Money
    items: tuple[Item, ...] = ()
    wants: tuple[Want, ...] = ()
    reserves: dict[str, Money] = {}  # least they accept, per item id they sell
    style: str = "friendly"
    quirks: tuple[str, ...] = ()
    tier: str = ""

    def want_for(self, kind: str) -> Want | None:
        """This participant's want for items of ``kind``, or None when they want none."""
        return next((w for w in self.wants if w.kind == kind), None)


class ListingStatus(StrEnum):
    """Where a listing stands: open for offers, sold (a deal closed on it) or delisted by its seller."""

    OPEN = "open"
    SOLD = "sold"
    DELISTED = "delisted"


class Listing(Record, kw_only=True):
    """An item up for sale: its seller, asking price (cents), description and when it opened (simulated second)."""

    id: str
    item_id: str
    seller: str
    ask: Money
    description: str
    opened_at: int
    status: ListingStatus = ListingStatus.OPEN


class OfferStatus(StrEnum):
    """Where an offer stands: open, or how it ended (only ``accepted`` ends in a deal)."""

    OPEN = "open"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    COUNTERED = "countered"
    EXPIRED = "expired"
    CLOSED = "closed"  # the listing sold to someone else or was delisted


class Offer(Record, kw_only=True):
    """A price proposed on a listing by one party to the other.

    ``buyer`` is always the would-be buyer; ``proposer`` is the buyer for an
    offer and the seller for a counter-offer. Only a buyer's own offer holds
    escrow: the buyer's money is set aside until the offer ends.
    """

    id: str
    listing_id: str
    proposer: str
    recipient: str
    buyer: str
    seller: str
    amount: Money
    message: str = ""
    made_at: int
    expires_at: int
    counter_of: str | None = None
    round: Annotated[int, msgspec.Meta(ge=1)] = 1  # 1 for an opening offer, +1 per counter
    status: OfferStatus = OfferStatus.OPEN

    @property
    def escrowed(self) -> int:
        """The cents this offer holds in the buyer's escrow while open: its amount if the buyer made it, else 0."""
        return self.amount if self.proposer == self.buyer else 0


class Deal(Record, kw_only=True):
    """A closed sale: an accepted offer on a listing, the item moved from seller to buyer for ``price`` cents."""

    id: str
    listing_id: str
    offer_id: str
    item_id: str
    seller: str
    buyer: str
    price: Money
    at: int


class Message(Record, kw_only=True):
    """Free text in a listing's thread."""

    listing_id: str
    sender: str
    to: str | None = None
    text: str
    at: int
