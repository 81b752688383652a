"""Observations and the state's updates: the records the engine builds, their JSON and what they keep."""

from __future__ import annotations

from pathlib import Path

import msgspec
import yaml

from agents.offline import PROFILES, OfflinePolicy
from market.actions import Counter, Delist, ListItem, MakeOffer, Reprice
from market.domain import OfferStatus, Want
from market.events import ParticipantJoined
from market.exchange import apply
from market.ledger import Ledger
from market.observation import Decision, ListingView, Observation, decided, observe
from market.state import MarketState, changed
from running import runner
from running.runfolder import RunFolder
from tests.conftest import SCENARIOS
from tests.market.helpers import market, person


def _busy_market():  # type: ignore[no-untyped-def]
    state = market(person("ann"), person("bob", items=0), person("cy"))
    for actor, action in [("ann", ListItem(item_id="ann-i1", ask=1_000)), ("cy", ListItem(item_id="cy-i1", ask=900)),
                          ("bob", MakeOffer(listing_id="L1", amount=800, message="hi")),
                          ("ann", Counter(offer_id="O1", amount=950)), ("cy", Reprice(listing_id="L2", ask=850))]:
        apply(state, actor, action, 10)
    return state


def test_an_observation_reads_back_from_its_json_values() -> None:
    state = _busy_market()
    for trader in ("ann", "bob", "cy"):
        obs = observe(state, "A", trader, "small", 20, 3, [])
        values = obs.json_values()
        again = Observation.from_json_values(values)
        assert obs == again and again.json_values() == values
        assert "None" not in repr(values), "a field that is None is left out"
        assert set(obs.json_values(principal=False)) == set(values) - {"principal"}
        for view in (*obs.market_listings, *obs.thread_listings):
            assert view == msgspec.convert(msgspec.to_builtins(view), ListingView)
    bob = observe(state, "A", "bob", "small", 20, 3, [])
    assert [v.listing.id for v in bob.market_listings] == ["L2", "L1"] and bob.thread_listings[0].listing.ask == 1_000
    assert [o.id for o in bob.incoming] == ["O2"]


def test_a_decided_record_is_the_decision_validation_would_make() -> None:
    for actions in [(), (MakeOffer(listing_id="L1", amount=800, message="hi"), Counter(offer_id="O1", amount=950)),
                    (Reprice(listing_id="L2", ask=850),)]:
        made, validated = decided(actions), Decision(actions=actions)
        assert made == validated and made.model_fields_set == validated.model_fields_set == {"actions"}
        assert made.model_dump_json() == validated.model_dump_json()
        assert made.model_dump(exclude_unset=True) == validated.model_dump(exclude_unset=True)
        assert made.note is None and made.model_copy(update={"note": "x"}).model_fields_set == {"actions", "note"}
    assert decided(()).model_fields_set == {"actions"}, "no record changed another's fields set"


def test_a_changed_record_is_the_record_validated_with_its_update() -> None:
    state = _busy_market()
    offer, listing = state.offers["O2"], state.listings["L2"]
    for record, update in [(offer, {"status": OfferStatus.EXPIRED}), (listing, {"ask": 700})]:
        fast = changed(record, **update)
        slow = msgspec.convert({**msgspec.to_builtins(record), **update}, type(record))
        assert fast == slow and msgspec.json.encode(fast) == msgspec.json.encode(slow) and fast is not record
    assert offer.status is OfferStatus.OPEN, "the original is untouched"
    assert state.listings["L2"].ask == 850 and list(state.open_listings_by_seller["cy"]) == ["L2"]


def test_an_offline_trader_shown_only_the_listings_it_looks_at_decides_the_same() -> None:
    sellers = [person(f"s{n:02d}", items=1) for n in range(20)]  # each sells one kind1 thing
    state = market(*sellers, person("bob", items=0))
    for n, seller in enumerate(sellers):
        apply(state, seller.id, ListItem(item_id=f"{seller.id}-i1", ask=900 + 37 * (n % 7)), 10)
    for profile in PROFILES.values():
        shown = OfflinePolicy(profile, seed=3).listings_per_want
        assert shown == min(profile.attention, 12)
        bids = 0
        for step in range(20):
            full = observe(state, "A", "bob", profile.name, 20, step, [])
            narrow = observe(state, "A", "bob", profile.name, 20, step, [], shown)
            assert [v.listing for v in narrow.market_listings] == [v.listing for v in full.market_listings][:shown]
            decisions = [OfflinePolicy(profile, seed=3).decide(obs) for obs in (full, narrow)]
            assert decisions[0] == decisions[1]
            bids += sum(a.type == "make_offer" for a in decisions[0].actions)
        assert bids > 10, "the comparison covers turns that bid"


def test_the_listings_shown_follow_every_change_of_the_newest_of_a_kind() -> None:
    state = market(*(person(f"s{n}", items=1) for n in range(4)), person("bob", items=0))
    for n in range(3):
        apply(state, f"s{n}", ListItem(item_id=f"s{n}-i1", ask=1_000 + n), 10)

    def shown(count: int = 2) -> list[tuple[str, int]]:
        obs = observe(state, "A", "bob", "small", 20, 0, [], count)
        return [(v.listing.id, v.listing.ask) for v in obs.market_listings]

    assert shown() == [("L3", 1_002), ("L2", 1_001)] and shown(1) == [("L3", 1_002)]
    apply(state, "s1", Reprice(listing_id="L2", ask=900), 11)
    assert shown() == [("L3", 1_002), ("L2", 900)]
    apply(state, "s2", Delist(listing_id="L3"), 12)
    assert shown() == [("L2", 900), ("L1", 1_000)] and shown(1) == [("L2", 900)]
    apply(state, "s3", ListItem(item_id="s3-i1", ask=950), 13)
    assert shown() == [("L4", 950), ("L2", 900)]
    assert shown(12) == [("L4", 950), ("L2", 900), ("L1", 1_000)]


def test_the_listings_by_kind_observe_hands_over_are_the_ones_shown_grouped() -> None:
    # a want of kind1 twice (its listings are shown twice), one of kind2, one of a kind nobody sells
    wants = tuple(Want(kind=k, title=k, max_price=5_000) for k in ("kind1", "kind2", "kind1", "kind9"))
    sellers = [person(f"s{n}", items=2) for n in range(3)]
    state = market(*sellers, person("bob", items=0, wants=wants))
    for seller in sellers:
        for n in (1, 2):
            apply(state, seller.id, ListItem(item_id=f"{seller.id}-i{n}", ask=1_000 + n), 10)
    obs = observe(state, "A", "bob", "small", 20, 0, [], 2)
    by_hand: dict[str, list[ListingView]] = {}
    for view in obs.market_listings:
        by_hand.setdefault(view.item.kind, []).append(view)
    assert [len(v) for v in by_hand.values()] == [4, 2], "kind1 twice over, kind2 once, kind9 not at all"
    expected = {kind: tuple(views) for kind, views in by_hand.items()}
    assert obs.listings_by_kind() == expected
    assert Observation.from_json_values(obs.json_values()).listings_by_kind() == expected
    assert "listings_by_kind" not in str(obs.json_values()) and obs == observe(state, "A", "bob", "small", 20, 0, [], 2)
    fewer = msgspec.structs.replace(obs, market_listings=obs.market_listings[:1])
    assert fewer.listings_by_kind() == {"kind1": obs.market_listings[:1]}, "a copy with other listings regroups"


def test_observations_kept_across_a_week_equal_ones_built_from_a_fresh_state(tmp_path: Path) -> None:
    """Replay a recorded week into one state, observing every trader at every moment (so the kept
    parts follow each change), and compare with observations of a state replayed afresh at sampled
    moments, taken right after a moment's events, just before the next and a day later (offers past their
    time still open), with items put up for sale over the week."""
    data = yaml.safe_load((SCENARIOS / "deal.yaml").read_text())
    data["markets"] = [m for m in data["markets"] if m["name"] == "B"]  # mixed tiers
    data["catalog"] = str(SCENARIOS / "catalog.csv")
    data.pop("targets")  # one market of the week is not the published week
    path = tmp_path / "week.yaml"
    path.write_text(yaml.safe_dump(data))
    runner.start(runner.plan(path), RunFolder.create(tmp_path, "week", exact=tmp_path / "run"), after_run=False)
    with Ledger(tmp_path / "run" / "ledger.sqlite") as ledger:
        events = [r.event for r in ledger.records("B")]
    people = [e.participant for e in events if isinstance(e, ParticipantJoined)]
    # every third person puts their items up over the week; the others had them from the start
    items_from = {p.id: {item.id: 9 * 3600 + n * 30_000 for n, item in enumerate(p.items)}
                  for p in people[::3]}
    moments = sorted({e.at for e in events})
    kept = MarketState()
    done = 0
    seen = dict.fromkeys(["offers", "past their time", "held back", "listings"], 0)
    for number, (now, then) in enumerate(zip(moments, [*moments[1:], moments[-1] + 86_400], strict=True)):
        while done < len(events) and events[done].at <= now:
            kept.evolve(events[done])
            done += 1
        fresh = MarketState.replay(events[:done]) if number % 40 == 7 else None
        for at in (now, then, now + 86_400):  # a day ahead, then back: kept parts are not reused backwards
            for n, someone in enumerate(people):
                shown = 12 if n % 2 else 4
                args = (someone.id, someone.tier, at, number, [], shown, items_from.get(someone.id))
                obs = observe(kept, "B", *args)
                if fresh is not None:
                    again = observe(fresh, "B", *args)
                    assert obs == again and obs.json_values() == again.json_values()
                    assert obs.listings_by_kind() == Observation.from_json_values(obs.json_values()).listings_by_kind()
                    open_offers = len(kept.open_offers_by_party.get(someone.id, ()))
                    seen["offers"] += bool(obs.incoming or obs.outgoing)
                    seen["past their time"] += open_offers > len(obs.incoming) + len(obs.outgoing)
                    seen["held back"] += any(when > at for when in items_from.get(someone.id, {}).values())
                    seen["listings"] += bool(obs.market_listings and obs.my_listings)
    assert done == len(events)
    assert min(seen.values()) > 20, seen
