"""How the state builds and changes its records."""

from __future__ import annotations

from typing import get_args

import pytest
from pydantic import BaseModel

from market.actions import Accept, Counter, Delist, ListItem, MakeOffer, Reject, Reprice, SendMessage, Withdraw
from market.domain import Deal, Offer, Want
from market.events import Event, OfferEnded
from market.exchange import Rejection, apply, expire
from market.records import trusted
from market.state import _EVOLVE, check_invariants
from tests.market.helpers import market, person


def _as_validated(record: BaseModel) -> None:
    """``record`` is what validating the fields it was given makes: same values in the same order,
    the same fields set, the same JSON; and so is every record inside it."""
    given = {name: getattr(record, name) for name in record.model_fields_set}
    slow = type(record)(**given)
    assert record == slow and list(record.__dict__) == list(slow.__dict__)
    assert record.model_fields_set == slow.model_fields_set
    assert record.model_dump_json() == slow.model_dump_json()
    for value in record.__dict__.values():
        if isinstance(value, BaseModel):
            _as_validated(value)


def test_every_record_the_exchange_builds_is_the_validated_one() -> None:
    state = market(person("ann"), person("bob"), person("cy"))
    script = [
        ("ann", ListItem(item_id="ann-i1", ask=1_000)), ("ann", ListItem(item_id="ann-i2", ask=2_000, description="x")),
        ("bob", MakeOffer(listing_id="L1", amount=800, message="hi")), ("ann", Counter(offer_id="O1", amount=950)),
        ("bob", Counter(offer_id="O2", amount=900)), ("ann", Reject(offer_id="O3", message="no")),
        ("cy", MakeOffer(listing_id="L1", amount=700)), ("cy", Withdraw(offer_id="O4")),
        ("bob", MakeOffer(listing_id="L2", amount=1_500)), ("ann", Reprice(listing_id="L1", ask=990)),
        ("cy", SendMessage(listing_id="L1", text="still there?")),
        ("bob", SendMessage(listing_id="L2", text="hm", to="cy")),
        ("cy", MakeOffer(listing_id="L1", amount=990)), ("bob", MakeOffer(listing_id="L1", amount=900)),
        ("ann", Accept(offer_id="O6", message="deal")), ("ann", Delist(listing_id="L2")),
        ("cy", ListItem(item_id="cy-i2", ask=500)), ("ann", MakeOffer(listing_id="L3", amount=400)),
    ]
    events = []
    for actor, action in script:
        outcome = apply(state, actor, action, 10)
        assert not isinstance(outcome, Rejection), (actor, action, outcome)
        events += outcome
    ending = expire(state, 10 + state.rules.offer_ttl)
    assert [e.offer_id for e in ending] == ["O8"]
    events += ending
    assert {e.type for e in events} >= {"item_listed", "offer_made", "offer_ended", "listing_repriced",
                                        "message_sent", "deal_closed", "listing_delisted"}
    for event in events:
        _as_validated(event)
    assert check_invariants(state) == []


def test_a_trusted_record_names_every_field_it_needs() -> None:
    with pytest.raises(TypeError, match="missing"):
        trusted(Deal, id="D1")
    with pytest.raises(TypeError, match="unknown"):
        trusted(OfferEnded, at=1, offer_id="O1", listing_id="L1", status="expired", colour="red")
    offer = trusted(Offer, id="O1", listing_id="L1", proposer="a", recipient="b", buyer="a", seller="b",
                    amount=5, made_at=0, expires_at=9)
    assert offer.round == 1 and offer.counter_of is None and "round" not in offer.model_fields_set


def test_the_open_offers_per_buyer_and_kind_follow_offers_made_and_ended() -> None:
    two = Want(kind="kind1", title="Thing 1", max_price=5_000)
    state = market(person("ann"), person("bob", wants=(two, two)), person("cy"))
    for actor, action in [("ann", ListItem(item_id="ann-i1", ask=1_000)), ("cy", ListItem(item_id="cy-i1", ask=900)),
                          ("bob", MakeOffer(listing_id="L1", amount=800)),
                          ("bob", MakeOffer(listing_id="L2", amount=800)),
                          ("ann", Counter(offer_id="O1", amount=950))]:
        assert not isinstance(apply(state, actor, action, 10), Rejection)
    assert state.open_offers_by_want == {("bob", "kind1"): {"O2": None, "O3": None}}
    apply(state, "cy", Delist(listing_id="L2"), 11)
    assert state.open_offers_by_want == {("bob", "kind1"): {"O3": None}}
    apply(state, "bob", Accept(offer_id="O3"), 12)
    assert state.open_offers_by_want == {} and check_invariants(state) == []


def test_every_kind_of_event_has_a_step_in_evolve() -> None:
    """evolve finds its step by the event's class: a new kind of event without one would be a KeyError."""
    (union, _field) = get_args(Event)
    assert set(_EVOLVE) == set(get_args(union))
