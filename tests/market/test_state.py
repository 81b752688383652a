"""How the state builds and changes its records."""

from __future__ import annotations

from typing import get_args

import msgspec
import pytest

from market.actions import Accept, Counter, Delist, ListItem, MakeOffer, Reject, Reprice, SendMessage, Withdraw
from market.domain import Deal, Offer, Want
from market.events import Event, event_json, parse_event
from market.exchange import Rejection, apply, expire
from market.state import _EVOLVE, check_invariants
from tests.market.helpers import market, person


def _as_validated(event: Event) -> None:
    """``event`` is what validating its JSON makes (the ledger's read-back): the same record, the same
    JSON again, and every value inside it of the type validation gives (an enum member, not its text)."""
    read = parse_event(event_json(event))
    assert read == event and event_json(read) == event_json(event)
    _same_types(event, read)


def _same_types(record: msgspec.Struct, again: msgspec.Struct) -> None:
    for value, other in zip(msgspec.structs.astuple(record), msgspec.structs.astuple(again), strict=True):
        assert type(value) is type(other), (record, value)
        if isinstance(value, msgspec.Struct):
            _same_types(value, other)


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


def test_a_record_names_every_field_it_needs() -> None:
    with pytest.raises(TypeError, match="Missing required"):
        Deal(id="D1")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="Unexpected keyword"):
        Offer(id="O1", colour="red")  # type: ignore[call-arg]
    offer = Offer(id="O1", listing_id="L1", proposer="a", recipient="b", buyer="a", seller="b",
                  amount=5, made_at=0, expires_at=9)
    assert offer.round == 1 and offer.counter_of is None


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
    assert set(_EVOLVE) == set(get_args(Event))
