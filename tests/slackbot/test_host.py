"""Hosting a live week through signed requests: join modal, commands, approvals, settlement, survey,
security checks, and a restart that loses and duplicates nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from slack_sdk import WebClient

from market.ledger import Ledger
from market.state import check_invariants
from slackbot.app import build_app
from slackbot.host import Host, participant_id
from tests.slackbot.conftest import ADMIN, SECRET, command_body, signed_request
from tests.slackbot.live import (
    APPROVER,
    MANUAL,
    STRANGER,
    Slack,
    approve_all,
    buttons,
    dms,
    join_values,
    locked,
    most_wanted,
    wait_for,
)
from tests.slackbot.slack_stub import SlackStub


@pytest.mark.slow
def test_a_live_week_end_to_end(stub: SlackStub, client: WebClient, scenario: Path, tmp_path: Path) -> None:
    wanted = most_wanted(scenario)
    host = Host(scenario, client, out=tmp_path / "run", speed=12_000, pace=0)
    slack = Slack(build_app(host, client, signing_secret=SECRET), stub)
    try:
        # both people open the join modal and submit it
        slack.command(MANUAL, "join")
        view = wait_for(lambda: stub.calls("views.open"), what="join modal")[0].args["view"]  # type: ignore[index]
        bad = slack.submit_view(MANUAL, view, join_values("Lamp, cheap, $1", "", "manual"))
        assert bad["response_action"] == "errors" and "sells" in bad["errors"]
        assert slack.submit_view(MANUAL, view, join_values(
            f"{wanted[0]}, $30, $5\n{wanted[1]}, $30, $5", f"{wanted[2]}, $90", "manual")) == {}
        slack.command(APPROVER, "join")
        slack.submit_view(APPROVER, view, join_values(
            f"{wanted[3]}, $25, $4\n{wanted[4]}, $25, $4\n{wanted[5]}, $25, $4", "", "approve"))
        # only admins run the week
        assert "only the week's admins" in slack.command(STRANGER, "admin start")["text"]
        assert "Usage" in slack.command(MANUAL, "offer L1 lots")["text"]
        slack.command(ADMIN, "admin start")
        wait_for(lambda: host.person(MANUAL) and host.person(APPROVER), what="joins applied")
        wait_for(locked(host, lambda st: "Done: list item." in slack.responses(MANUAL) or
                        any(lst.seller == participant_id(MANUAL) for lst in st.listings.values())),
                 what="manual listings")
        slack.command(MANUAL, "status")
        wait_for(lambda: any("Balance" in r for r in slack.responses(MANUAL)), what="status")
        # the manual trader bids on an agent's listing at its ask; a bad bid gets the exchange's reason
        target = wait_for(locked(host, lambda st: next((lst for lst in st.listings.values()
                                                        if lst.seller.startswith("p") and lst.status == "open"),
                                                       None)))
        slack.command(MANUAL, f"offer {target.id} $100000 please")  # type: ignore[attr-defined]
        wait_for(lambda: any(r.startswith("Not done:") for r in slack.responses(MANUAL)), what="rejection")
        slack.command(MANUAL, f"offer {target.id} ${target.ask / 100:.2f} <!channel> deal?")  # type: ignore[attr-defined]
        slack.command(MANUAL, f"say {target.id} <!channel> deal?")  # type: ignore[attr-defined]
        wait_for(lambda: "Done: send message." in slack.responses(MANUAL), what="message in the thread")
        # offers to the manual trader arrive as DMs with buttons; accept the first
        offer_id = wait_for(lambda: buttons(stub, MANUAL, "offer_accept"), what="offer DM")[0]  # type: ignore[index]
        slack.click(MANUAL, "offer_accept", offer_id)
        # the approver's agent asks before it accepts; approve the first request, decline another
        approvals = wait_for(lambda: buttons(stub, APPROVER, "approve_deal"), what="approval DM")
        slack.click(APPROVER, "approve_deal", approvals[0])  # type: ignore[index]
        slack.click(APPROVER, "approve_deal", approvals[0])  # a double click is answered, not applied twice
        wait_for(lambda: any("already answered" in r for r in slack.responses(APPROVER)), what="double click")
        pids = {participant_id(MANUAL), participant_id(APPROVER)}
        wait_for(locked(host, lambda st: approve_all(slack, APPROVER) and
                        {p for d in list(st.deals) for p in (d.buyer, d.seller)} >= pids), timeout=60,
                 what="deals for both people")
        slack.command(ADMIN, "admin settle")
        wait_for(lambda: all(any("settled" in json.dumps(m.get("blocks")) for m in dms(stub, u))
                             for u in (MANUAL, APPROVER)), what="settlement DMs")
        # the survey: open it from the settlement DM, answer every deal
        for user in (MANUAL, APPROVER):
            before = len(stub.calls("views.open"))
            slack.click(user, "open_survey", "A")
            opened = wait_for(lambda n=before: stub.calls("views.open")[n:], what="survey")
            survey = opened[0].args["view"]  # type: ignore[index]
            values = {b["block_id"]: {"rating": {"type": "static_select", "selected_option": {"value": "6"}}}
                      for b in survey["blocks"] if b.get("block_id", "").startswith("deal:")}
            values["comment"] = {"value": {"type": "plain_text_input", "value": "fair enough"}}
            slack.submit_view(user, survey, values)
        wait_for(lambda: (tmp_path / "run" / "fairness.jsonl").is_file(), what="survey answers")
        slack.command(ADMIN, "admin export")
        wait_for(lambda: (tmp_path / "run" / "ledger.jsonl").is_file(), what="export")
        assert host.poster.flush(30)
    finally:
        host.close()
    run = tmp_path / "run"
    with Ledger(run) as ledger:
        for market in ledger.markets():
            assert check_invariants(ledger.replay(market)) == []
    from analysis.fairness import read_ratings

    ratings = read_ratings(run)
    people = ratings.filter(ratings["source"] == "person")
    assert set(people["participant_id"]) == pids and set(people["rating"]) == {6}
    channel = json.dumps(stub.posts("deal-a"))
    assert "<!channel>" not in channel and "&lt;!channel&gt;" in channel
    ts = [m["ts"] for m in stub.posts()]
    assert len(ts) == len(set(ts))


def test_restart_restores_the_week_and_posts_nothing_twice(stub: SlackStub, client: WebClient, scenario: Path,
                                                            tmp_path: Path) -> None:
    host = Host(scenario, client, out=tmp_path / "run", speed=30_000, pace=0)
    slack = Slack(build_app(host, client, signing_secret=SECRET), stub)
    slack.command(MANUAL, "join")
    view = wait_for(lambda: stub.calls("views.open"))[0].args["view"]  # type: ignore[index]
    slack.submit_view(MANUAL, view, join_values("Desk lamp, $30, $5", "", "manual"))
    slack.command(ADMIN, "admin start")
    wait_for(locked(host, lambda st: len(st.listings) > 10), what="trading")
    host.close()  # the bot is stopped mid-week
    with Ledger(tmp_path / "run") as ledger:
        events_before = ledger.last_seq
    posted_before = len(stub.posts())
    again = Host(scenario, client, out=tmp_path / "run", speed=30_000, pace=0)
    try:
        assert again.running.is_set()  # it was running, so it runs on
        assert again.person(MANUAL) is not None
        trader = again.run.model.market("A").traders[participant_id(MANUAL)]  # type: ignore[union-attr]
        assert trader.policy is None  # still trading by hand
        wait_for(lambda: again.finished.is_set(), timeout=60, what="end of the week")
        assert again.poster.flush(30)
    finally:
        again.close()
    with Ledger(tmp_path / "run") as ledger:
        assert ledger.last_seq > events_before
        assert ledger.status("state") == "complete"
        for market in ledger.markets():
            assert check_invariants(ledger.replay(market)) == []
    ts = [m["ts"] for m in stub.posts()]
    assert len(ts) == len(set(ts)) and len(ts) > posted_before
    texts = [json.dumps(m["blocks"]) for m in stub.posts("deal-a") if "thread_ts" not in m]
    assert len(texts) == len(set(texts))  # every listing appears once


def test_http_mode_refuses_unsigned_wrong_and_stale_requests(stub: SlackStub, client: WebClient, scenario: Path,
                                                             tmp_path: Path) -> None:
    host = Host(scenario, client, out=tmp_path / "run", speed=1, pace=0)
    try:
        app = build_app(host, client, signing_secret=SECRET)
        body = command_body("status", MANUAL, stub.respond_url + MANUAL)
        assert app.dispatch(signed_request(body, signature="")).status == 401
        assert app.dispatch(signed_request(body, signature="v0=" + "0" * 64)).status == 401
        assert app.dispatch(signed_request(body, secret="another-secret")).status == 401
        assert app.dispatch(signed_request(body, timestamp=int(time.time()) - 6 * 60)).status == 401
        assert app.dispatch(signed_request(body)).status == 200
        # malformed text gets usage help, escaped
        reply = json.loads(app.dispatch(signed_request(command_body("frob <!channel>", MANUAL, "x"))).body)
        assert "Usage" in reply["text"] and "<!channel>" not in reply["text"]
        # events: the bot's own messages are ignored; a retried event is handled once
        event = {"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": "Ev1",
                 "event_time": 1, "event": {"type": "message", "channel": "D1", "channel_type": "im",
                                            "user": MANUAL, "text": "hi", "ts": "1.0"}}
        for retry in ("0", "1"):
            response = app.dispatch(signed_request(json.dumps(event), "application/json",
                                                   extra={"x-slack-retry-num": retry}))
            assert response.status == 200
        own = {**event, "event_id": "Ev2", "event": {**event["event"], "bot_id": "BBOT", "user": "UBOT"}}
        assert app.dispatch(signed_request(json.dumps(own), "application/json")).status == 200
        time.sleep(0.5)
        helps = [c for c in stub.calls("chat.postMessage") if c.args.get("channel") == "D1"]
        assert len(helps) == 1  # one answer to the person, none to the retry or the bot's own message
    finally:
        host.close()
