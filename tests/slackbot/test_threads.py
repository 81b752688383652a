"""People haggle where the market is: a reply in a listing's thread is a message in its conversation,
a price named in it becomes a one-click offer for a person trading by hand, ``/deal market`` lists what
they could buy with offer buttons."""

from __future__ import annotations

import json
from pathlib import Path

from slack_sdk import WebClient

from market.backends import Policy
from market.events import MessageSent, OfferMade
from market.ledger import Ledger
from market.observation import Decision, Observation
from market.scenario import load_scenario
from slackbot.app import build_app
from slackbot.host import Host, participant_id
from slackbot.render import listing_key
from tests.slackbot.conftest import ADMIN, SECRET, signed_request
from tests.slackbot.live import MANUAL, STRANGER, Slack, join_values, locked, wait_for
from tests.slackbot.slack_stub import SlackStub


class Recording(Policy):
    """The seller's own agent, with its observations kept."""

    def __init__(self, inner: Policy) -> None:
        self.inner, self.seen = inner, []  # type: ignore[var-annotated]

    def decide(self, obs: Observation) -> Decision:
        self.seen.append(obs)
        return self.inner.decide(obs)


def _reply(slack: Slack, user: str, channel: str, thread_ts: str, text: str, n: int) -> None:
    event = {"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": f"EvT{n}", "event_time": 1,
             "event": {"type": "message", "channel": channel, "channel_type": "channel", "user": user,
                       "text": text, "ts": f"1800000000.{n:06d}", "thread_ts": thread_ts}}
    assert slack.app.dispatch(signed_request(json.dumps(event), "application/json")).status == 200


def test_a_reply_in_a_listing_thread_is_a_market_message_and_a_price_is_one_click_away(
        stub: SlackStub, client: WebClient, scenario: Path, tmp_path: Path) -> None:
    _, catalog = load_scenario(scenario)
    host = Host(scenario, client, out=tmp_path / "run", speed=3_000, pace=0)
    slack = Slack(build_app(host, client, signing_secret=SECRET), stub)
    me = participant_id(MANUAL)
    try:
        slack.command(MANUAL, "join")
        view = wait_for(lambda: stub.calls("views.open"))[0].args["view"]  # type: ignore[index]
        wants = "\n".join(f"{e.title}, $500" for e in catalog[:20])
        assert slack.submit_view(MANUAL, view, join_values("Desk lamp, $30, $5", wants, "manual")) == {}
        slack.command(ADMIN, "admin start")
        kinds = {e.kind for e in catalog[:20]}

        target = wait_for(locked(host, lambda st: next((lst for lst in list(st.listings.values()) if lst.seller != me
                                                  and lst.status == "open" and st.items[lst.item_id].kind in kinds
                                                  and host.store.posted(listing_key("A", lst.id))), None)),
                          what="an agent's listing the person wants")
        channel, ts = host.store.posted(listing_key("A", target.id))  # type: ignore[attr-defined, misc]
        with host.lock:
            tier = host.state().participants[target.seller].tier  # type: ignore[attr-defined]
        recorder = Recording(host.run.agent(tier))  # the seller's agent, recording what it sees (the live-run port)
        host.run.set_policy("A", target.seller, recorder)  # type: ignore[attr-defined]
        # the person's reply is a message in the listing's conversation, not posted again by the bot
        _reply(slack, MANUAL, channel, ts, "I'd do $12 if it works", 1)
        button = wait_for(lambda: stub.state.ephemerals, what="offer button")[0]  # type: ignore[index]
        assert button["user"] == MANUAL and button["thread_ts"] == ts
        element = button["blocks"][1]["elements"][0]
        assert element["text"]["text"] == "Make this an offer: $12.00"
        # the seller's agent reads it in its observation
        wait_for(lambda: any(isinstance(e, MessageSent) and e.message.sender == me
                             for obs in recorder.seen for e in obs.news), what="the agent saw it")
        # a stranger's reply is not passed on; they are told to join
        _reply(slack, STRANGER, channel, ts, "$5!", 2)
        wait_for(lambda: len(stub.state.ephemerals) == 2, what="stranger told")
        assert "/deal join" in stub.state.ephemerals[1]["text"]
        # one click makes the offer, at exactly the amount named
        slack.click(MANUAL, "make_offer", element["value"])
        wait_for(locked(host, lambda st: any(o.proposer == me and o.amount == 1200 for o in st.offers.values())),
                 what="the offer")
        # /deal market: open listings with offer buttons at their asks
        slack.command(MANUAL, "market")
        market = wait_for(lambda: [r for r in stub.state.responses if "open listings" in r.get("text", "")],
                          what="market")[0]  # type: ignore[index]
        values = [b["accessory"]["value"] for b in market["blocks"] if "accessory" in b]
        mine = locked(host, lambda st: list(st.listings_by_seller.get(me, {})))()
        assert values and all(not v.startswith(f"{lid}|") for v in values for lid in mine)
        assert host.poster.flush(30)
    finally:
        host.close()
    with Ledger(tmp_path / "run") as ledger:
        events = [r.event for r in ledger.records()]
    said = [e for e in events if isinstance(e, MessageSent) and e.message.sender == me]
    assert [(m.message.listing_id, m.message.text) for m in said] == [(target.id, "I'd do $12 if it works")]
    assert any(isinstance(e, OfferMade) and e.offer.proposer == me and e.offer.amount == 1200 for e in events)
    thread = [m for m in stub.posts("deal-a") if m.get("thread_ts") == ts]
    assert not any("if it works" in json.dumps(m) for m in thread)  # the person's own words are not echoed
