"""The market's nouns: participants, items, listings, offers, deals, messages.

All are frozen pydantic models. Money fields are integer cents; times are
integer simulated seconds since the run started.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from market.money import Money


class Frozen(BaseModel):
    """Base for immutable records; unknown fields are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Condition(StrEnum):
    """The state an item is in, from new to broken."""

    NEW = "new"
    LIKE_NEW = "like new"
    GOOD = "good"
    FAIR = "fair"
    BROKEN = "broken"


class Item(Frozen):
    """A thing that can change hands. ``kind`` names its catalog entry."""

    id: str
    kind: str
    title: str
    category: str
    condition: Condition = Condition.GOOD
    value: Money = Field(description="reference value in cents")


class Want(Frozen):
    """Something a participant would like to buy, and the most they would pay."""

    kind: str
    title: str
    max_price: Money


class Participant(Frozen):
    """A person: their budget, what they sell and want, their limits and style."""

    id: str
    name: str
    budget: Money
    items: tuple[Item, ...] = ()
    wants: tuple[Want, ...] = ()
    reserves: dict[str, Money] = Field(
        default_factory=dict, description="least they accept, per item id they sell"
    )
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


class Listing(Frozen):
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


class Offer(Frozen):
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
    round: int = Field(1, ge=1, description="1 for an opening offer, +1 per counter")
    status: OfferStatus = OfferStatus.OPEN

    @property
    def escrowed(self) -> int:
        """The cents this offer holds in the buyer's escrow while open: its amount if the buyer made it, else 0."""
        return self.amount if self.proposer == self.buyer else 0


class Deal(Frozen):
    """A closed sale: an accepted offer on a listing, the item moved from seller to buyer for ``price`` cents."""

    id: str
    listing_id: str
    offer_id: str
    item_id: str
    seller: str
    buyer: str
    price: Money
    at: int


class Message(Frozen):
    """Free text in a listing's thread."""

    listing_id: str
    sender: str
    to: str | None = None
    text: str
    at: int
