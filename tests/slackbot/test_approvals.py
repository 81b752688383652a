"""Approve-before-deal: every committing action of the person's agent waits for a click.

A unit check of the wrapper (what is held, what the agent hears after a
Decline), and a hosted smoke week where no deal of the approver's closes
without an Approve recorded, a late Approve is answered with the exchange's
reason, and one after the week gets a clear answer.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from pathlib import Path

import pytest
from slack_sdk import WebClient

from market import actions as act
from market.actions import Action
from market.backends import Policy
from market.domain import Participant
from market.events import DealClosed, OfferMade, RejectionCode
from market.ledger import Ledger
from market.observation import Decision, Observation
from market.scenario import build_participants, load_scenario
from market.state import check_invariants
from slackbot import blocks
from slackbot.app import build_app
from slackbot.approvals import DECLINED, SETTLED, ApprovalPolicy
from slackbot.escape import inline
from slackbot.host import Host, participant_id
from slackbot.store import Approval, OutboxRow, Store
from tests.slackbot.conftest import ADMIN, SECRET, live_scenario
from tests.slackbot.live import APPROVER, Slack, approve_all, buttons, dms, join_values, most_wanted, wait_for
from tests.slackbot.slack_stub import SlackStub


class Scripted(Policy):
    """An agent that always wants to do the same things, and remembers what it saw."""

    def __init__(self, actions: list[Action]) -> None:
        self.actions, self.seen = actions, []  # type: ignore[var-annotated]

    def decide(self, observation: Observation) -> Decision:
        self.seen.append(observation)
        return Decision(actions=tuple(self.actions))


class Asker:
    def __init__(self) -> None:
        self.asked: list[Action] = []

    def request_approval(self, market: str, pid: str, action: Action, obs: Observation) -> None:
        self.asked.append(action)


def test_committing_actions_are_held_and_a_decline_is_news() -> None:
    committing = [act.Accept(offer_id="O1"), act.MakeOffer(listing_id="L1", amount=500),
                  act.Counter(offer_id="O2", amount=700)]
    free = [act.ListItem(item_id="i1", ask=900), act.SendMessage(listing_id="L1", text="hi")]
    inner, asker = Scripted([*committing, *free]), Asker()
    policy = ApprovalPolicy(inner, asker, "A", "s-u1")
    obs = Observation(market="A", trader="s-u1", tier="", at=60, step=0,
                      principal=Participant(id="s-u1", name="U", budget=100), balance=100, escrow=0, holdings=(),
                      open_wants=(), my_listings=(), unlisted=(), market_listings=(), thread_listings=(),
                      incoming=(), outgoing=(), news=())
    assert policy.decide(obs).actions == tuple(free)
    assert asker.asked == committing
    policy.declined(committing[1], at=120)
    policy.decide(obs)
    news = inner.seen[-1].news
    assert [(e.type, e.code, e.reason, e.action.listing_id) for e in news] == [
        ("action_rejected", RejectionCode.DECLINED_BY_PRINCIPAL, DECLINED, "L1")]
    policy.decide(obs)
    assert inner.seen[-1].news == ()  # told once


def commonly_held(scenario: Path) -> list[str]:
    sc, catalog = load_scenario(scenario)
    counts = Counter(i.title for p in build_participants(sc, catalog) for i in p.items)
    return [t for t, _ in counts.most_common()]


@pytest.mark.slow
def test_no_deal_of_an_approver_closes_without_approve(stub: SlackStub, client: WebClient, tmp_path: Path) -> None:
    scenario = live_scenario(tmp_path, rules={"offer_ttl": 3 * 3600})
    wanted, held_by_agents = most_wanted(scenario), commonly_held(scenario)
    host = Host(scenario, client, out=tmp_path / "run", speed=20_000, pace=0)
    slack = Slack(build_app(host, client, signing_secret=SECRET), stub)
    pid = participant_id(APPROVER)
    late, expires, clicked = "", 0, False  # one approval left unanswered until its offer expired
    try:
        slack.command(APPROVER, "join")
        view = wait_for(lambda: stub.calls("views.open"), what="join modal")[0].args["view"]  # type: ignore[index]
        sells = "\n".join(f"{t}, $25, $4" for t in wanted[:3])
        wants = "\n".join(f"{t}, $40" for t in held_by_agents[:2])
        assert slack.submit_view(APPROVER, view, join_values(sells, wants, "approve")) == {}
        slack.command(ADMIN, "admin start")
        turn = itertools.count()
        while not host.finished.is_set():
            if not late:
                pending = [a for a in host.store.approvals() if a.state == "pending"
                           and json.loads(a.action)["type"] in ("accept", "counter")]
                if pending:
                    late, expires = pending[0].id, host.state().offers[pending[0].target].expires_at
                    slack.answered.add(late)
            approve_all(slack, APPROVER, decline=lambda _: next(turn) % 4 == 3)
            if late and not clicked and host.run.now > expires:  # type: ignore[union-attr]
                slack.click(APPROVER, "approve_deal", late)  # too late now
                clicked = True
            time.sleep(0.02)
        wait_for(lambda: any("no longer open" in r for r in slack.responses(APPROVER)), what="late approval")
        # after the week an Approve gets a clear answer, not silence
        pending = [a for a in host.store.approvals() if a.state == "pending"]
        if pending:
            slack.click(APPROVER, "approve_deal", pending[0].id)
            wait_for(lambda: any("week is over" in r for r in slack.responses(APPROVER)), what="after the week")
    finally:
        host.close()
    assert host.error is None
    approvals = _approvals(tmp_path / "run")
    approved = {r for a in approvals if a[0] == "approved" for r in a[2].split(",") if r}
    kinds = Counter((a[0], a[1]) for a in approvals)
    assert kinds[("approved", "make_offer")] + kinds[("approved", "counter")] > 0, kinds
    assert kinds[("declined", "accept")] + kinds[("declined", "make_offer")] + kinds[("declined", "counter")] > 0
    assert any(a[2].startswith("refused: Offer") and "no longer open" in a[2] for a in approvals)
    with Ledger(tmp_path / "run") as ledger:
        events = [r.event for r in ledger.records()]
        assert check_invariants(ledger.replay("A")) == []
    mine = [e.deal for e in events if isinstance(e, DealClosed) and pid in (e.deal.buyer, e.deal.seller)]
    assert mine, "the approver closed no deal"
    offers = {e.offer.id: e.offer for e in events if isinstance(e, OfferMade)}
    for offer in offers.values():
        if offer.proposer == pid:
            assert offer.id in approved, f"offer {offer.id} of the approver's was made without Approve"
    for deal in mine:
        accepted_by_them = offers[deal.offer_id].recipient == pid
        assert (deal.id if accepted_by_them else deal.offer_id) in approved, f"deal {deal.id} closed unapproved"


def _approvals(run: Path) -> list[tuple[str, str, str]]:
    """(state, action type, result) of every approval, read from the bot's table after the host closed."""
    from slackbot.store import Store

    store = Store(run)
    try:
        return [(a.state, json.loads(a.action)["type"], a.result) for a in store.approvals()]
    finally:
        store.close()


def _questions(stub: SlackStub, user: str) -> list[str]:
    """Approval ids of every approval question posted to ``user`` (a resend posts one again)."""
    return buttons(stub, user, "approve_deal")


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["cannot_dm_bot", "ratelimited"])
def test_settlement_declines_what_was_not_delivered_or_answered(stub: SlackStub, client: WebClient, tmp_path: Path,
                                                                fault: str) -> None:
    """The approver's first question cannot be delivered (Slack refuses the DM, or answers 429 until the bot
    gives up); nobody answers the rest. Settling declines them all, tells the approver and the admin, and a
    restart after settlement asks nothing, also when it was stopped half-way through settling."""
    scenario = live_scenario(tmp_path, rules={"offer_ttl": 3 * 3600})
    wanted, held_by_agents = most_wanted(scenario), commonly_held(scenario)
    if fault == "cannot_dm_bot":  # the first approval question Slack is given is refused
        stub.fail("chat.postMessage", "cannot_dm_bot", match="approve_deal")
    else:  # every one of the bot's 12 attempts to post it is answered 429
        stub.fail("chat.postMessage", "ratelimited", status=429, retry_after=0, times=12, match="approve_deal")
    host = Host(scenario, client, out=tmp_path / "run", speed=20_000, pace=0)
    slack = Slack(build_app(host, client, signing_secret=SECRET), stub)
    try:
        slack.command(APPROVER, "join")
        view = wait_for(lambda: stub.calls("views.open"), what="join modal")[0].args["view"]  # type: ignore[index]
        sells = "\n".join(f"{t}, $25, $4" for t in wanted[:3])
        wants = "\n".join(f"{t}, $40" for t in held_by_agents[:2])
        assert slack.submit_view(APPROVER, view, join_values(sells, wants, "approve")) == {}
        slack.command(ADMIN, "admin start")
        lost = wait_for(lambda: [k for k, _ in host.poster.failed if k.startswith("approval:")], timeout=60,
                        what="an undelivered approval question")[0]  # type: ignore[index]
        lost_id = lost.removeprefix("approval:")
        wait_for(lambda: _questions(stub, APPROVER), timeout=60, what="a delivered approval question")
        slack.command(ADMIN, "admin settle")
        wait_for(lambda: any("settled" in json.dumps(m.get("blocks")) for m in dms(stub, APPROVER)),
                 what="the settlement DM")
        assert host.poster.flush(30)
        asked = _questions(stub, APPROVER)
        approvals = host.store.approvals()
        assert approvals and all(a.state != "pending" for a in approvals)
        settled = {a.id: a.result for a in approvals if a.result.startswith(SETTLED)}
        assert settled[lost_id].startswith(f"{SETTLED}: its question could not be delivered (")
        assert fault in settled[lost_id]
        reached = set(asked) & set(settled)
        assert reached and all(settled[i] == f"{SETTLED}: never answered" for i in reached)
        told = [m["text"] for m in dms(stub, APPROVER) if m["text"].startswith("Declined:")]
        assert len(told) == len(settled)
        assert sum("the question never reached you" in t for t in told) == len(settled) - len(reached)
        summary = [m["text"] for m in dms(stub, ADMIN) if m["text"].startswith("Settlement declined")]
        assert len(summary) == 1 and inline(lost_id) in summary[0] and fault in summary[0]
        # a late click on a question declined at settlement gets that answer
        slack.click(APPROVER, "approve_deal", next(iter(reached)))
        wait_for(lambda: any("declined when the week was settled" in r for r in slack.responses(APPROVER)),
                 what="the answer to a late click")
    finally:
        host.close()
    # the bot stops half-way through settling: one approval was still open, its question still queued
    store = Store(tmp_path / "run")
    try:
        pid = participant_id(APPROVER)
        stray = Approval(f"A:{pid}:make_offer:L-stray:700", "A", pid, "L-stray", "pending",
                         act.MakeOffer(listing_id="L-stray", amount=700).model_dump_json())
        assert store.add_approval(stray)
        store.enqueue(OutboxRow(f"approval:{stray.id}", f"@{APPROVER}", None, False, None,
                                json.dumps(blocks.approval_request(stray.id, "make_offer", 700, "x", "y", "L-stray"))))
    finally:
        store.close()
    posted = len(stub.calls("chat.postMessage"))
    again = Host(scenario, client, out=tmp_path / "run", speed=20_000, pace=0)
    try:
        assert again.poster.flush(30)
        assert _questions(stub, APPROVER) == asked, "a restart after settlement asked for approval"
        assert again.store.approval(stray.id).result == f"{SETTLED}: its question could not be delivered"  # type: ignore[union-attr]
        assert "*0* approvals waiting" in again.week.pending()
        assert again.week.resend().startswith("Asked 0 approvals again")
        assert again.poster.flush(30)
        assert _questions(stub, APPROVER) == asked
        told = sorted(c.args["text"] for c in stub.calls("chat.postMessage")[posted:])  # two lanes: any order
        assert len(told) == 2, told
        assert told[0] == blocks.approval_done(False, "an item", "the week was settled, and the question never "
                                               "reached you: your agent did not do it")["text"]  # the approver
        assert told[1].startswith(f"Settlement declined *{len(settled) + 1}*")  # the admin, with the new one
        assert inline(stray.id) in told[1]
    finally:
        again.close()
