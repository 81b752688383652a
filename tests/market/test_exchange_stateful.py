"""Random action sequences (valid and invalid, many actors) never break an invariant."""

from __future__ import annotations

from collections import Counter as Tally

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from market.actions import (
    Accept,
    Counter,
    Delist,
    ListItem,
    MakeOffer,
    Reject,
    Reprice,
    SendMessage,
    Withdraw,
)
from market.domain import Want
from market.events import RejectionCode, Rules
from market.exchange import Rejection, apply, expire
from market.state import MarketState, check_invariants
from tests.market.helpers import market, person

ACTORS = ["ann", "bob", "cy", "dee", "eve"]
amounts = st.integers(min_value=-100, max_value=12_000)


class ExchangeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        one = Want(kind="kind1", title="Thing 1", max_price=5_000)
        other = Want(kind="kind2", title="Thing 2", max_price=9_000)
        wants = {"ann": (other,), "bob": (one,), "cy": (one, other), "dee": (one, one, other), "eve": ()}
        people = [
            person(pid, budget=budget, items=3, wants=wants[pid], reserve=reserve)
            for pid, budget, reserve in zip(ACTORS, [10_000, 4_000, 500, 0, 7_000], [None, 300, None, 800, None],
                                            strict=True)
        ]
        self.state = market(*people, rules=Rules(offer_ttl=500))
        self.events = []  # type: ignore[var-annotated]
        self.at = 0
        self.deals_seen = 0
        self.codes: set[RejectionCode] = set()

    def _do(self, actor: str, action) -> None:  # type: ignore[no-untyped-def]
        self.at += 1
        outcome = apply(self.state, actor, action, self.at)
        if isinstance(outcome, Rejection):
            assert outcome.reason.endswith(".") and len(outcome.reason) > 10
            assert outcome.code in RejectionCode and outcome.code is not RejectionCode.UNSPECIFIED
            self.codes.add(outcome.code)
        else:
            self.events.extend(outcome)

    def _pick(self, data, ids):  # type: ignore[no-untyped-def]
        return data.draw(st.sampled_from(sorted(ids))) if ids else "none"

    @rule(actor=st.sampled_from(ACTORS), n=st.integers(1, 3), owner=st.sampled_from(ACTORS), ask=amounts)
    def list_item(self, actor: str, n: int, owner: str, ask: int) -> None:
        self._do(actor, ListItem.model_construct(item_id=f"{owner}-i{n}", ask=ask, description="", type="list_item"))

    @rule(owner=st.sampled_from(ACTORS), n=st.integers(1, 3), ask=st.integers(1, 6_000))
    def owner_lists(self, owner: str, n: int, ask: int) -> None:
        self._do(owner, ListItem(item_id=f"{owner}-i{n}", ask=ask))

    @precondition(lambda self: self.state.open_listing_of_item)
    @rule(actor=st.sampled_from(ACTORS), data=st.data(), share=st.integers(1, 100))
    def buyer_bids(self, actor: str, data, share: int) -> None:  # type: ignore[no-untyped-def]
        lid = self._pick(data, self.state.open_listing_of_item.values())
        amount = max(1, self.state.available(actor) * share // 100)
        self._do(actor, MakeOffer(listing_id=lid, amount=amount))

    @rule(actor=st.sampled_from(ACTORS), data=st.data(), amount=amounts)
    def make_offer(self, actor: str, data, amount: int) -> None:  # type: ignore[no-untyped-def]
        lid = self._pick(data, self.state.listings)
        self._do(actor, MakeOffer.model_construct(listing_id=lid, amount=amount, message="", type="make_offer"))

    @rule(actor=st.sampled_from(ACTORS), data=st.data(), amount=amounts)
    def counter(self, actor: str, data, amount: int) -> None:  # type: ignore[no-untyped-def]
        oid = self._pick(data, self.state.offers)
        self._do(actor, Counter.model_construct(offer_id=oid, amount=amount, message="", type="counter"))

    @rule(actor=st.sampled_from(ACTORS), data=st.data(), kind=st.sampled_from(["accept", "reject", "withdraw"]))
    def answer(self, actor: str, data, kind: str) -> None:  # type: ignore[no-untyped-def]
        oid = self._pick(data, self.state.offers)
        action = {"accept": Accept, "reject": Reject, "withdraw": Withdraw}[kind](offer_id=oid)
        self._do(actor, action)

    @precondition(lambda self: self.state.open_offers)
    @rule(data=st.data())
    def the_right_party_accepts(self, data) -> None:  # type: ignore[no-untyped-def]
        oid = self._pick(data, self.state.open_offers)
        self._do(self.state.offers[oid].recipient, Accept(offer_id=oid))

    @rule(actor=st.sampled_from(ACTORS), data=st.data(), ask=amounts,
          kind=st.sampled_from(["delist", "reprice", "msg"]))
    def seller_moves(self, actor: str, data, ask: int, kind: str) -> None:  # type: ignore[no-untyped-def]
        lid = self._pick(data, self.state.listings)
        action = {
            "delist": Delist(listing_id=lid),
            "reprice": Reprice.model_construct(listing_id=lid, ask=ask, type="reprice"),
            "msg": SendMessage(listing_id=lid, text="still available?"),
        }[kind]
        self._do(actor, action)

    @rule(gap=st.integers(0, 400))
    def time_passes(self, gap: int) -> None:
        self.at += gap
        for event in expire(self.state, self.at):
            self.state.evolve(event)
            self.events.append(event)

    @invariant()
    def invariants_hold(self) -> None:
        assert check_invariants(self.state) == []
        assert all(v >= 0 for v in self.state.balance.values())
        assert all(v >= 0 for v in self.state.escrow.values())

    @invariant()
    def open_listings_by_seller_are_the_open_ones_in_order(self) -> None:
        for seller, listings in self.state.listings_by_seller.items():
            open_ones = [lid for lid in listings if self.state.listings[lid].status == "open"]
            assert list(self.state.open_listings_by_seller.get(seller, {})) == open_ones

    @invariant()
    def no_buyer_ends_with_more_units_of_a_kind_than_wanted(self) -> None:
        bought = Tally((d.buyer, self.state.items[d.item_id].kind) for d in self.state.deals)
        for (buyer, kind), units in bought.items():
            wanted = [w.kind for w in self.state.participants[buyer].wants].count(kind)
            assert units <= wanted, f"{buyer} bought {units} of {kind}, wanted {wanted}"
        in_flight = Tally(
            (o.buyer, self.state.items[self.state.listings[o.listing_id].item_id].kind)
            for o in {self.state.offers[oid].listing_id: self.state.offers[oid] for oid in self.state.open_offers
                      if self.state.offers[oid].expires_at > self.at}.values()
        )
        for (buyer, kind), units in in_flight.items():
            wanted = [w.kind for w in self.state.participants[buyer].wants].count(kind)
            assert bought[(buyer, kind)] + units <= wanted, f"{buyer} has {units} {kind} in flight"

    @invariant()
    def replay_rebuilds_the_same_state(self) -> None:
        opening = market(*self.state.participants.values(), rules=self.state.rules)
        replayed = MarketState.replay([])
        replayed.__dict__.update(opening.__dict__)
        for event in self.events:
            replayed.evolve(event)
        assert replayed.balance == self.state.balance
        assert replayed.escrow == self.state.escrow
        assert replayed.owner == self.state.owner
        assert replayed.offers == self.state.offers
        assert replayed.listings == self.state.listings


TestExchange = ExchangeMachine.TestCase
TestExchange.settings = settings(
    max_examples=120, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
