"""Live mode: people join and act between turns through the same exchange rules."""

from __future__ import annotations

from pathlib import Path

from market.actions import ListItem, MakeOffer
from market.domain import Item, Participant, Want
from market.engine import MarketModel
from market.exchange import Rejection
from market.ledger import Ledger
from market.state import check_invariants
from running import runner


def test_join_submit_and_restore(smoke: Path, tmp_path: Path) -> None:
    prepared = runner.plan(smoke)
    with Ledger(tmp_path / "ledger.sqlite", create=True) as ledger:
        model = MarketModel(prepared.scenario, prepared.participants, prepared.policies, ledger.append_many)
        model.start_live()
        kinds = sorted({item.kind for p in prepared.participants for item in p.items})
        person = Participant(
            id="u-slack", name="Sam Person", budget=5_000, tier="frontier",
            items=(Item(id="u-slack-i1", kind="desk-lamp", title="Desk lamp", category="desk", value=2_000),),
            wants=tuple(Want(kind=k, title=k, max_price=5_000) for k in kinds),  # the mandate: what Sam may buy
        )
        joined = model.join("A", person, policy=None)
        listed = model.submit("A", "u-slack", ListItem(item_id="u-slack-i1", ask=2_500, description="lamp"))
        own = model.submit("A", "u-slack", MakeOffer(listing_id="L1", amount=100))
        model.run(until=10 * 3600)
        assert not isinstance(joined.result(timeout=1), Rejection)
        assert not isinstance(listed.result(timeout=1), Rejection)
        assert "your own" in own.result(timeout=1).reason  # type: ignore[union-attr]
        state = model.market("A").state
        assert "u-slack" in state.participants and check_invariants(state) == []
        other = next(lid for lid in state.open_listing_of_item.values() if state.listings[lid].seller != "u-slack")
        too_much = model.submit("A", "u-slack", MakeOffer(listing_id=other, amount=9_999))
        fair = model.submit("A", "u-slack", MakeOffer(listing_id=other, amount=100))
        again = model.join("A", person, policy=None)
        model.run(until=11 * 3600)
        assert "cannot pay" in too_much.result(timeout=1).reason  # type: ignore[union-attr]
        assert not isinstance(fair.result(timeout=1), Rejection)
        assert "already joined" in again.result(timeout=1).reason  # type: ignore[union-attr]

        history = [(r.market, r.event) for r in ledger.records()]
        restored = MarketModel(
            prepared.scenario, prepared.participants, prepared.policies, ledger.append_many, history=history,
            policy_for=lambda _market, p: None if p.id == "u-slack" else prepared.policies[p.tier],
        )
        assert restored.now == max(e.at for _, e in history)
        before = ledger.last_seq
        assert restored.market("A").state.balance == state.balance
        assert restored.market("A").traders["u-slack"].policy is None
        restored.run()
        assert ledger.last_seq > before, "the restored week carries on trading"
        final = ledger.replay("A")
        assert check_invariants(final) == [] and final.balance == restored.market("A").state.balance
