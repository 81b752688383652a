"""The exchange's rules, one at a time."""

from __future__ import annotations

import pytest

from market.actions import (
    Accept,
    Counter,
    Delist,
    ListItem,
    MakeOffer,
    Pass,
    Reject,
    Reprice,
    SendMessage,
    Withdraw,
    action_json_schema,
    parse_action,
)
from market.domain import OfferStatus, Want
from market.events import DealClosed, MarketOpened, OfferEnded, ParticipantJoined, Rules
from market.events import RejectionCode as Code
from market.exchange import Rejection, apply, decide, expire
from market.state import MarketState, check_invariants
from tests.market.helpers import market, person


def ok(outcome):  # type: ignore[no-untyped-def]
    assert not isinstance(outcome, Rejection), outcome
    return outcome


def rejected(outcome, code: Code, *words: str) -> str:  # type: ignore[no-untyped-def]
    assert isinstance(outcome, Rejection), outcome
    assert outcome.code is code, outcome
    for word in words:
        assert word in outcome.reason
    assert outcome.reason.endswith((".", ")")), "a reason is a sentence"
    return outcome.reason


@pytest.fixture
def listed():  # type: ignore[no-untyped-def]
    state = market(person("ann"), person("bob", budget=5_000), person("cy", budget=800))
    ok(apply(state, "ann", ListItem(item_id="ann-i1", ask=2_000), 10))
    return state


def test_only_the_owner_lists_and_only_once(listed) -> None:  # type: ignore[no-untyped-def]
    rejected(apply(listed, "bob", ListItem(item_id="ann-i1", ask=100), 11), Code.NOT_OWNER, "only its owner")
    rejected(apply(listed, "ann", ListItem(item_id="ann-i1", ask=100), 11), Code.ALREADY_LISTED, "already listed as L1")
    rejected(apply(listed, "ann", ListItem(item_id="nope", ask=100), 11), Code.NO_SUCH_ITEM, "no item")
    assert not check_invariants(listed)


def test_offer_escrows_and_withdraw_releases(listed) -> None:  # type: ignore[no-untyped-def]
    ok(apply(listed, "bob", MakeOffer(listing_id="L1", amount=1_500), 20))
    assert listed.escrow["bob"] == 1_500 and listed.available("bob") == 3_500
    rejected(apply(listed, "ann", Withdraw(offer_id="O1"), 21), Code.NOT_PROPOSER, "Only the one who made")
    ok(apply(listed, "bob", Withdraw(offer_id="O1"), 21))
    assert listed.escrow["bob"] == 0
    assert listed.offers["O1"].status is OfferStatus.WITHDRAWN
    assert not check_invariants(listed)


def test_nobody_spends_money_they_do_not_have(listed) -> None:  # type: ignore[no-untyped-def]
    reason = rejected(
        apply(listed, "cy", MakeOffer(listing_id="L1", amount=900), 20),
        Code.INSUFFICIENT_FUNDS, "cannot pay")
    assert "$8.00 available" in reason
    ok(apply(listed, "bob", MakeOffer(listing_id="L1", amount=3_000), 20))
    rejected(apply(listed, "bob", MakeOffer(listing_id="L1", amount=2_500), 21), Code.INSUFFICIENT_FUNDS, "available")


def test_no_trading_with_yourself(listed) -> None:  # type: ignore[no-untyped-def]
    rejected(apply(listed, "ann", MakeOffer(listing_id="L1", amount=500), 20), Code.OWN_LISTING, "your own")


def test_only_the_counterparty_accepts_and_a_deal_settles_in_one_step(listed) -> None:  # type: ignore[no-untyped-def]
    ok(apply(listed, "bob", MakeOffer(listing_id="L1", amount=1_500), 20))
    ok(apply(listed, "cy", MakeOffer(listing_id="L1", amount=700), 21))
    rejected(apply(listed, "bob", Accept(offer_id="O1"), 22), Code.NOT_RECIPIENT, "addressed to ann")
    events = ok(apply(listed, "ann", Accept(offer_id="O1"), 23))
    assert isinstance(events[0], DealClosed)
    assert [e.offer_id for e in events[1:] if isinstance(e, OfferEnded)] == ["O2"]
    assert listed.balance == {"ann": 11_500, "bob": 3_500, "cy": 800}
    assert listed.escrow == {"ann": 0, "bob": 0, "cy": 0}
    assert listed.owner["ann-i1"] == "bob"
    assert not check_invariants(listed)


def test_closed_listings_refuse_everything(listed) -> None:  # type: ignore[no-untyped-def]
    ok(apply(listed, "bob", MakeOffer(listing_id="L1", amount=1_500), 20))
    ok(apply(listed, "ann", Accept(offer_id="O1"), 21))
    rejected(apply(listed, "cy", MakeOffer(listing_id="L1", amount=100), 22), Code.LISTING_CLOSED, "closed (sold)")
    rejected(apply(listed, "cy", SendMessage(listing_id="L1", text="hi"), 22), Code.LISTING_CLOSED, "closed")
    rejected(apply(listed, "ann", Delist(listing_id="L1"), 22), Code.LISTING_CLOSED, "already sold")
    rejected(apply(listed, "bob", ListItem(item_id="ann-i1", ask=3_000), 22), Code.ITEM_SOLD, "already been sold")


def test_counter_moves_escrow_to_the_right_party(listed) -> None:  # type: ignore[no-untyped-def]
    ok(apply(listed, "bob", MakeOffer(listing_id="L1", amount=1_000), 20))
    ok(apply(listed, "ann", Counter(offer_id="O1", amount=1_800), 21))
    assert listed.escrow["bob"] == 0, "a seller's counter holds no escrow"
    assert listed.offers["O2"].recipient == "bob" and listed.offers["O2"].round == 2
    ok(apply(listed, "bob", Counter(offer_id="O2", amount=1_400), 22))
    assert listed.escrow["bob"] == 1_400
    ok(apply(listed, "ann", Accept(offer_id="O3"), 23))
    assert listed.balance["bob"] == 3_600
    assert not check_invariants(listed)


def test_offers_expire_and_release_escrow() -> None:
    state = market(person("ann"), person("bob"), rules=Rules(offer_ttl=100))
    ok(apply(state, "ann", ListItem(item_id="ann-i1", ask=2_000), 0))
    ok(apply(state, "bob", MakeOffer(listing_id="L1", amount=1_500), 10))
    assert expire(state, 109) == []
    rejected(decide(state, "ann", Accept(offer_id="O1"), 110), Code.OFFER_CLOSED, "expired")
    for event in expire(state, 110):
        state.evolve(event)
    assert state.escrow["bob"] == 0 and state.offers["O1"].status is OfferStatus.EXPIRED


def test_delist_closes_offers_and_releases_escrow(listed) -> None:  # type: ignore[no-untyped-def]
    ok(apply(listed, "bob", MakeOffer(listing_id="L1", amount=1_500), 20))
    rejected(apply(listed, "bob", Delist(listing_id="L1"), 21), Code.NOT_OWNER, "not yours")
    ok(apply(listed, "ann", Delist(listing_id="L1"), 21))
    assert listed.escrow["bob"] == 0 and listed.offers["O1"].status is OfferStatus.CLOSED
    ok(apply(listed, "ann", ListItem(item_id="ann-i1", ask=1_000), 22))  # may list again


def test_mandate_holds_whatever_the_agent_says() -> None:
    buyer = person("bob", wants=(Want(kind="kind1", title="Thing 1", max_price=1_200),))
    state = market(person("ann", reserve=900), buyer)
    rejected(apply(state, "ann", ListItem(item_id="ann-i1", ask=800), 0), Code.BELOW_RESERVE, "reserve price")
    ok(apply(state, "ann", ListItem(item_id="ann-i1", ask=1_500), 0))
    rejected(
        apply(state, "bob", MakeOffer(listing_id="L1", amount=1_300), 1),
        Code.ABOVE_MAX_PRICE, "most your principal would pay")
    ok(apply(state, "bob", MakeOffer(listing_id="L1", amount=800), 2))
    rejected(apply(state, "ann", Accept(offer_id="O1"), 3), Code.BELOW_RESERVE, "below your principal's reserve")
    rejected(apply(state, "ann", Reprice(listing_id="L1", ask=850), 3), Code.BELOW_RESERVE, "reserve")
    ok(apply(state, "ann", Counter(offer_id="O1", amount=1_300), 3))
    rejected(apply(state, "bob", Accept(offer_id="O2"), 4), Code.ABOVE_MAX_PRICE, "most your principal would pay")


def test_mandate_covers_the_kinds_a_principal_asked_for() -> None:
    nothing = person("bob", wants=(Want(kind="kind2", title="Thing 2", max_price=5_000),))
    state = market(person("ann"), nothing, person("cy"))
    ok(apply(state, "ann", ListItem(item_id="ann-i1", ask=1_000), 0))
    reason = rejected(
        apply(state, "bob", MakeOffer(listing_id="L1", amount=900), 1),
        Code.NOT_WANTED, "did not ask for Thing 1")
    assert reason.startswith("Your principal")
    ok(apply(state, "cy", MakeOffer(listing_id="L1", amount=900), 1))  # cy wants kind1
    ok(apply(state, "ann", Counter(offer_id="O1", amount=950), 2))
    assert not state.open_offers_by_party.get("bob")
    free = market(person("ann"), nothing, rules=Rules(enforce_mandate=False))
    ok(apply(free, "ann", ListItem(item_id="ann-i1", ask=1_000), 0))
    ok(apply(free, "bob", MakeOffer(listing_id="L1", amount=900), 1))  # no mandate, no limit


def test_mandate_covers_quantity_two_offers_in_flight_cannot_both_close() -> None:
    """Seen in a sweep: two offers in flight for one want, both accepted. The second is refused."""
    state = market(person("ann"), person("bob"), person("cy"))
    ok(apply(state, "ann", ListItem(item_id="ann-i1", ask=1_000), 0))
    ok(apply(state, "cy", ListItem(item_id="cy-i1", ask=1_000), 0))
    ok(apply(state, "bob", MakeOffer(listing_id="L1", amount=900), 1))
    ok(apply(state, "bob", MakeOffer(listing_id="L1", amount=950), 2))  # a better offer on the same listing: one unit
    rejected(
        apply(state, "bob", MakeOffer(listing_id="L2", amount=900), 3),
        Code.WANT_IN_FLIGHT, "1 unit in flight (L1)", "kind1")
    ok(apply(state, "ann", Counter(offer_id="O1", amount=980), 4))  # the seller's counter keeps the unit in flight
    ok(apply(state, "bob", Withdraw(offer_id="O2"), 5))
    rejected(apply(state, "bob", MakeOffer(listing_id="L2", amount=900), 6), Code.WANT_IN_FLIGHT, "in flight (L1)")
    ok(apply(state, "bob", Accept(offer_id="O3"), 7))
    assert state.bought_units("bob", "kind1") == 1
    rejected(apply(state, "bob", MakeOffer(listing_id="L2", amount=900), 8), Code.WANT_FILLED, "already has 1 unit")


def test_a_filled_want_refuses_counter_and_accept_from_either_side() -> None:
    two = (Want(kind="kind1", title="Thing 1", max_price=5_000), Want(kind="kind1", title="Thing 1", max_price=5_000))
    state = market(person("ann"), person("bob", wants=two), person("cy"), person("dee"))
    for seller in ("ann", "cy", "dee"):
        ok(apply(state, seller, ListItem(item_id=f"{seller}-i1", ask=1_000), 0))
    ok(apply(state, "bob", MakeOffer(listing_id="L1", amount=900), 1))
    ok(apply(state, "bob", MakeOffer(listing_id="L2", amount=900), 1))  # two units asked for, two in flight
    rejected(
        apply(state, "bob", MakeOffer(listing_id="L3", amount=900), 1),
        Code.WANT_IN_FLIGHT, "2 units in flight (L1, L2)")
    ok(apply(state, "ann", Accept(offer_id="O1"), 2))
    ok(apply(state, "cy", Counter(offer_id="O2", amount=950), 3))
    ok(apply(state, "bob", Accept(offer_id="O3"), 4))
    assert state.bought_units("bob", "kind1") == 2
    ok(apply(state, "dee", Reprice(listing_id="L3", ask=990), 5))
    rejected(
        apply(state, "bob", MakeOffer(listing_id="L3", amount=900), 5),
        Code.WANT_FILLED, "asked for 2 units", "already has 2")
    # an offer made before the want was filled (only possible without the mandate) cannot close once it is
    people = [person("ann"), person("bob"), person("cy")]
    loose = market(*people, rules=Rules(enforce_mandate=False))
    events = [*ok(apply(loose, "ann", ListItem(item_id="ann-i1", ask=1_000), 0)),
              *ok(apply(loose, "cy", ListItem(item_id="cy-i1", ask=1_000), 0)),
              *ok(apply(loose, "bob", MakeOffer(listing_id="L1", amount=900), 1)),
              *ok(apply(loose, "bob", MakeOffer(listing_id="L2", amount=900), 1)),
              *ok(apply(loose, "ann", Accept(offer_id="O1"), 2))]
    strict = MarketState.replay([MarketOpened(at=0, rules=Rules()),
                                 *(ParticipantJoined(at=0, participant=p) for p in people), *events])
    reason = rejected(decide(strict, "cy", Accept(offer_id="O2"), 3), Code.WANT_FILLED, "already has 1 unit")
    assert reason.startswith("The principal of bob")


def test_reject_message_and_pass(listed) -> None:  # type: ignore[no-untyped-def]
    assert ok(apply(listed, "bob", Pass(), 20)) == []
    ok(apply(listed, "bob", MakeOffer(listing_id="L1", amount=1_500), 20))
    rejected(apply(listed, "bob", Reject(offer_id="O1"), 21), Code.NOT_RECIPIENT, "not addressed to you")
    ok(apply(listed, "ann", Reject(offer_id="O1", message="too low"), 21))
    ok(apply(listed, "bob", SendMessage(listing_id="L1", text="any wiggle room?"), 22))
    rejected(
        apply(listed, "bob", SendMessage(listing_id="L1", text="x", to="bob"), 22),
        Code.MESSAGE_TO_SELF, "yourself")
    assert listed.messages["L1"][0].text == "any wiggle room?"
    rejected(apply(listed, "zed", Pass(), 22), Code.NOT_PARTICIPANT, "not a participant")


def test_actions_parse_from_model_style_json_and_export_a_schema() -> None:
    action = parse_action('{"type": "make_offer", "listing_id": "L1", "amount": "$12.50", "message": "hi"}')
    assert action == MakeOffer(listing_id="L1", amount=1250, message="hi")
    schema = action_json_schema()
    names = {d["properties"]["type"]["const"] for d in schema["$defs"].values() if "type" in d.get("properties", {})}
    assert {"list_item", "delist", "make_offer", "counter", "accept", "reject", "withdraw", "send_message",
            "pass"} <= names
