"""The action vocabulary: everything a trader (agent or person) can do.

One pydantic discriminated union, the single source for validation, the
model tools' JSON schema, the rule-based agents and the Slack commands.

The class docstrings are also the model tools' descriptions (they speak to the trader, and changing them
changes recorded model calls), so the contracts are here. ``market.exchange.decide`` turns an allowed action
into events; a refused one is recorded as ``action_rejected`` with its ``RejectionCode`` (any action by a
non-participant: ``not_participant``). The mandate checks (reserve price, max price, wanted kinds and units)
apply only under ``rules.enforce_mandate``.

- ``ListItem``: an item you own (``no_such_item``, ``not_owner``), never sold (``item_sold``), not listed now
  (``already_listed``), an ask above $0.00 (``not_positive``) and not below your reserve (``below_reserve``).
  Writes ``item_listed``.
- ``Delist``: your open listing (``no_such_listing``, ``not_owner``, ``listing_closed``). Writes ``offer_ended``
  (closed) for each open offer on it, then ``listing_delisted``.
- ``Reprice``: your open listing, a different ask (``same_price``) above $0.00, not below your reserve.
  Writes ``listing_repriced``.
- ``MakeOffer``: an open listing not yours (``own_listing``); an amount above $0.00, within your balance minus
  escrow (``insufficient_funds``) and your max price (``above_max_price``), for a kind you want with a unit
  not yet bought nor in flight on another listing (``not_wanted``, ``want_filled``, ``want_in_flight``).
  Writes ``offer_made``; the amount goes into escrow.
- ``Counter``: an open offer (``no_such_offer``, ``offer_closed``) addressed to you (``not_recipient``), a
  different amount (``same_price``) passing your side's checks (the buyer's as for ``MakeOffer``, its own
  escrow counted as free; the seller's as for ``Reprice``). Writes ``offer_ended`` (countered), ``offer_made``.
- ``Accept``: an open offer addressed to you, its amount passing your side's checks and the buyer still wanting
  the kind. Writes ``deal_closed``, then ``offer_ended`` (closed) for the listing's other open offers.
- ``Reject`` / ``Withdraw``: an open offer addressed to you (``not_recipient``) / made by you (``not_proposer``).
  Writes ``offer_ended``; any escrow it held is released.
- ``SendMessage``: an open listing; ``to``, if given, another participant (``no_such_participant``,
  ``message_to_self``). Writes ``message_sent``.
- ``Pass``: always allowed; writes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from market.domain import Frozen
from market.money import Money

MAX_TEXT = 2000
"""The longest free text in an action (a description, a message), in characters."""
MAX_ID = 100
"""The longest id in an action (item, listing, offer, participant)."""

Text = Annotated[str, Field(max_length=MAX_TEXT)]
Id = Annotated[str, Field(max_length=MAX_ID)]


class ActionBase(Frozen):
    """Base of the action vocabulary's records (``Action`` is their union): a refused action's field in
    ``market.events.ActionRejected`` is typed by it, and read back through ``parse_action``."""


class ListItem(ActionBase):
    """Put one of your items up for sale at an asking price."""

    type: Literal["list_item"] = "list_item"
    item_id: Id
    ask: Money = Field(description="asking price in cents")
    description: Text = ""


class Delist(ActionBase):
    """Take your open listing down; open offers on it are closed."""

    type: Literal["delist"] = "delist"
    listing_id: Id


class Reprice(ActionBase):
    """Change the asking price of your open listing; open offers stay open."""

    type: Literal["reprice"] = "reprice"
    listing_id: Id
    ask: Money = Field(description="new asking price in cents")


class MakeOffer(ActionBase):
    """Offer to buy a listed item; the amount is held in escrow until the offer ends."""

    type: Literal["make_offer"] = "make_offer"
    listing_id: Id
    amount: Money = Field(description="offered price in cents")
    message: Text = ""


class Counter(ActionBase):
    """Answer an offer addressed to you with a different price."""

    type: Literal["counter"] = "counter"
    offer_id: Id
    amount: Money = Field(description="counter price in cents")
    message: Text = ""


class Accept(ActionBase):
    """Accept an offer addressed to you; the deal closes at once."""

    type: Literal["accept"] = "accept"
    offer_id: Id
    message: Text = ""


class Reject(ActionBase):
    """Turn down an offer addressed to you."""

    type: Literal["reject"] = "reject"
    offer_id: Id
    message: Text = ""


class Withdraw(ActionBase):
    """Take back an offer you made; its escrow is released."""

    type: Literal["withdraw"] = "withdraw"
    offer_id: Id


class SendMessage(ActionBase):
    """Write in a listing's thread, optionally to one participant."""

    type: Literal["send_message"] = "send_message"
    listing_id: Id
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
    to: Id | None = None


class Pass(ActionBase):
    """Do nothing this turn."""

    type: Literal["pass"] = "pass"


Action = Annotated[
    ListItem | Delist | Reprice | MakeOffer | Counter | Accept | Reject | Withdraw | SendMessage | Pass,
    Field(discriminator="type"),
]
"""Any action; ``type`` says which."""

ACTION_TYPES: tuple[type[Frozen], ...] = (
    ListItem, Delist, Reprice, MakeOffer, Counter, Accept, Reject, Withdraw, SendMessage, Pass,
)
ACTION_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)


def parse_action(data: Any) -> Action:
    """Validate a dict (or JSON string) as an action; raises ``ValidationError``."""
    if isinstance(data, str | bytes):
        return ACTION_ADAPTER.validate_json(data)
    return ACTION_ADAPTER.validate_python(data)


def action_json_schema() -> dict[str, Any]:
    """The JSON schema of the whole vocabulary (the model tools derive from it)."""
    return ACTION_ADAPTER.json_schema()


def action_name(action_type: type[Frozen]) -> str:
    """The ``type`` tag of an action class (``MakeOffer`` -> ``"make_offer"``)."""
    return action_type.model_fields["type"].default
