"""A ledger written by hand through the real exchange: limits, tiers, gains and the optimum come out right."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from analysis import AnalysisError, load_run
from analysis.efficiency import efficiency, surplus
from market import exchange
from market.actions import Accept, ListItem, MakeOffer
from market.domain import Item, Participant, Want
from market.events import MarketOpened, ParticipantJoined, Rules
from market.ledger import Ledger
from market.state import MarketState


def _lamp(owner: str) -> Item:
    return Item(id=f"{owner}-i1", kind="lamp", title="Lamp", category="home", value=2000)


def _people() -> list[Participant]:
    lamp = Want(kind="lamp", title="Lamp", max_price=2600)
    return [
        Participant(id="ann", name="Ann", budget=5000, items=(_lamp("ann"),), reserves={"ann-i1": 1200}, tier="small"),
        Participant(id="dee", name="Dee", budget=5000, items=(_lamp("dee"),), reserves={"dee-i1": 1000}, tier="small"),
        Participant(id="bo", name="Bo", budget=5000, wants=(lamp,), tier="frontier"),
        Participant(id="cy", name="Cy", budget=5000, wants=(msgspec.structs.replace(lamp, max_price=3000),),
                    tier="small"),
    ]


def _write_run(folder: Path, complete: bool = True) -> Path:
    folder.mkdir()
    (folder / "scenario.yaml").write_text("name: handmade\nseed: 1\ndays: 1\ntiers: {frontier: {}, small: {}}\n")
    (folder / "catalog.csv").write_text("kind,title,category,value\nlamp,Lamp,home,20.00\n")  # a run folder has both
    state = MarketState()
    # a market without the mandate (as every ledger was before it covered quantity): Bo can buy a second lamp
    rules = Rules(enforce_mandate=False)
    events = [MarketOpened(at=0, rules=rules), *(ParticipantJoined(at=0, participant=p) for p in _people())]
    for e in events:
        state.evolve(e)
    steps = [
        ("ann", ListItem(item_id="ann-i1", ask=2500), 100),
        ("dee", ListItem(item_id="dee-i1", ask=1900), 100),
        ("bo", MakeOffer(listing_id="L1", amount=1800), 200),
        ("ann", Accept(offer_id="O1"), 300),
        ("bo", MakeOffer(listing_id="L2", amount=1500), 400),  # a second lamp: Bo wanted only one
        ("dee", Accept(offer_id="O2"), 500),
    ]
    for actor, action, at in steps:
        outcome = exchange.apply(state, actor, action, at)
        assert not isinstance(outcome, exchange.Rejection), outcome
        events += outcome
    with Ledger(folder, create=True) as ledger:
        ledger.append("M", events)
        ledger.set_status("state", "complete" if complete else "running")
    return folder


def test_wants_fill_once_and_gains_compare_with_the_exact_optimum(tmp_path: Path) -> None:
    data = load_run(_write_run(tmp_path / "run"))
    deals = data.deals.sort("at")
    assert deals["price"].to_list() == [1800, 1500]
    assert deals["seller_reserve"].to_list() == [1200, 1000]
    assert deals["buyer_value"].to_list() == [2600, 0]  # the second lamp fills no want
    assert deals["seller_tier"].to_list() == ["small", "small"]
    assert deals["buyer_tier"].to_list() == ["frontier", "frontier"]
    eff = efficiency(data).row(0, named=True)
    # realised: (2600 - 1200) + (0 - 1000) = 400; best: Ann's lamp to Cy (1800) and Dee's to Bo (1600)
    assert (eff["realised_cents"], eff["optimal_cents"], eff["optimal_trades"]) == (400, 3400, 2)
    per = {r["participant_id"]: r["surplus"] for r in surplus(data).iter_rows(named=True)}
    assert per == {"ann": 600, "dee": 500, "bo": 800 - 1500, "cy": 0}


def test_a_running_handmade_ledger_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="in progress"):
        load_run(_write_run(tmp_path / "run", complete=False))
