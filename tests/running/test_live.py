"""Live mode: people join and act between turns through the same exchange rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from market.actions import ListItem, MakeOffer
from market.domain import Item, Participant, Want
from market.engine import MarketModel
from market.events import Event, ParticipantJoined
from market.exchange import Rejection
from market.ledger import Ledger
from market.state import check_invariants
from running import runner
from running.live import LiveRun


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


def test_the_live_run_port(smoke: Path, tmp_path: Path) -> None:
    """LiveRun through its port only: follow, set_policy, submit, snapshot; a restart restores a policy
    set from a follower replaying the history, before the clock moves."""
    run = LiveRun(smoke, out=tmp_path / "run", speed=200_000)
    with pytest.raises(RuntimeError, match="start"):
        run.snapshot()
    with pytest.raises(RuntimeError, match="start"):
        run.submit("A", "p1", ListItem(item_id="x", ask=100))
    heard: list[tuple[int, str, Event, bool]] = []
    run.follow(lambda seq, market, event, replay: heard.append((seq, market, event, replay)))
    run.start()
    try:
        joined = [e.participant for _, _, e, _ in heard if isinstance(e, ParticipantJoined)]
        idle = next(p for p in joined if p.items)  # someone who would list their items
        other = next(p for p in joined if p.id != idle.id)
        first = run.snapshot()
        assert first.clock == 0 and [m.name for m in first.markets()] == ["A"] and first.hourly("A") == []
        assert first.markets()[0].tiers[idle.id] == idle.tier and first.tiers == tuple(run.scenario.tiers)
        run.set_policy("A", idle.id, None)  # trades by hand from now on: the clock has not moved yet
        asked = run.submit("A", other.id, MakeOffer(listing_id="L-none", amount=100))
        run.resume()
        assert run.finished.wait(60), "the week did not end"
        assert "L-none" in asked.result(timeout=5).reason  # type: ignore[union-attr]
        end = run.snapshot()
        assert end.clock >= run.scenario.duration - 1 and not end.stopping
        assert len(end.hourly("A")) == run.scenario.days * 24
        assert end.week_end == (run.scenario.duration, run.scenario.working_hours.end)
        state = end.markets()[0].state
        assert state.deals and not state.listings_by_seller.get(idle.id), "a policy set to None never lists"
        assert [seq for seq, *_ in heard] == list(range(1, len(heard) + 1))
    finally:
        run.close()

    again = LiveRun(smoke, out=tmp_path / "run")
    replayed: list[bool] = []

    def restore(seq: int, market: str, event: Event, replay: bool) -> None:
        replayed.append(replay)
        if replay and isinstance(event, ParticipantJoined) and event.participant.id == other.id:
            again.set_policy(market, other.id, None)

    again.follow(restore)
    again.start()
    try:
        assert replayed and all(replayed)
        assert again.model is not None and again.model.market("A").traders[other.id].policy is None
        assert again.model.market("A").traders[idle.id].policy is again.agent(idle.tier)
    finally:
        again.close()
