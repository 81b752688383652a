"""Text is safe in every field Slack renders: mentions, pings, links and ``&<>`` go in through every
input path (join form, display name, commands, thread replies, agents' messages, catalog titles in
watch mode) and every string of every Web API call, response_url answer and ack is walked at the stub."""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from slack_sdk import WebClient

from market.actions import ListItem, MakeOffer, SendMessage
from running.runfolder import RunFolder
from running.runner import plan, start
from slackbot.app import build_app
from slackbot.escape import CUT_MARKER
from slackbot.host import Host, participant_id
from slackbot.render import listing_key
from slackbot.watch import watch
from tests.slackbot.conftest import ADMIN, SECRET, SMOKE, signed_request
from tests.slackbot.live import MANUAL, Slack, join_values, locked, wait_for
from tests.slackbot.slack_stub import SlackStub

EVIL = "<!channel> <!here> <!everyone> <@UEVIL1> <#CEVIL1> <https://evil.example> @channel & <b>"
LIVE = re.compile(r"<[!@#]|<https?:|<mailto:|<b>|(?<!\u200b)@(channel|here|everyone)\b")
#: fields that carry ids, never rendered, or raw text for a person to edit (an input's initial_value)
NOT_RENDERED = {"initial_value", "action_id", "block_id", "callback_id", "private_metadata", "value", "channel",
                "user", "user_id", "ts", "thread_ts", "trigger_id", "type", "path", "response_type", "url", "token",
                "users", "name", "style"}


def strings(data: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every rendered string in a JSON value, with where it is; plain_text objects are inert text."""
    if isinstance(data, dict):
        plain = data.get("type") == "plain_text"
        for key, value in data.items():
            if key in NOT_RENDERED or (plain and key == "text"):
                continue
            yield from strings(value, f"{path}.{key}")
    elif isinstance(data, list):
        for n, value in enumerate(data):
            yield from strings(value, f"{path}[{n}]")
    elif isinstance(data, str):
        yield path, data


def plain_texts(data: Any) -> Iterator[str]:
    if isinstance(data, dict):
        if data.get("type") == "plain_text":
            yield str(data.get("text", ""))
        for value in data.values():
            yield from plain_texts(value)
    elif isinstance(data, list):
        for value in data:
            yield from plain_texts(value)


def assert_nothing_live(stub: SlackStub, acks: list[dict[str, Any]]) -> int:
    """Walk every call's arguments, every response_url answer and ack; return how many strings were seen."""
    bodies = [(c.method, c.args) for c in stub.calls()] + [("respond", r) for r in stub.state.responses]
    bodies += [("ack", a) for a in acks]
    seen = 0
    for method, body in bodies:
        for where, text in strings(body):
            seen += 1
            assert not LIVE.search(text), f"live markup in {method}{where}: {text[:200]!r}"
        for text in plain_texts(body):
            assert len(text) <= 3000  # plain_text is not read as markup, but is cut to fit
    return seen


def test_every_input_path_reaches_slack_escaped(stub: SlackStub, client: WebClient, scenario: Path,
                                                tmp_path: Path) -> None:
    stub.state.display_names[MANUAL] = f"Mallory {EVIL}"
    host = Host(scenario, client, out=tmp_path / "run", speed=20_000, pace=0, admins=[ADMIN])
    slack = Slack(build_app(host, client, signing_secret=SECRET), stub)
    acks: list[dict[str, Any]] = []
    try:
        # join: the form's titles and the display name
        acks.append(slack.command(MANUAL, "join"))
        view = wait_for(lambda: stub.calls("views.open"), what="join modal")[0].args["view"]  # type: ignore[index]
        long_title = "Lamp " + EVIL * 40
        acks.append(slack.submit_view(MANUAL, view, join_values(
            f"{long_title}, $30, $5\nChair {EVIL}, $20, $5", f"Desk {EVIL}, $90", "manual")))
        assert acks[-1] == {}
        acks.append(slack.command(ADMIN, "admin start"))
        wait_for(lambda: host.person(MANUAL), what="joined")
        me = participant_id(MANUAL)
        # commands, with their echoes and the exchange's refusals
        acks.append(slack.command(MANUAL, f"frob {EVIL}"))
        acks.append(slack.command(MANUAL, f"offer {EVIL} $5 {EVIL}"))
        acks.append(slack.command(MANUAL, f"list {EVIL[:30]} $5"))
        wait_for(locked(host, lambda st: any(lst.seller == me for lst in st.listings.values())), what="listings")
        target = wait_for(locked(host, lambda st: next((lst for lst in st.listings.values()
                                                        if lst.seller != me and lst.status == "open"), None)),
                          what="an agent's")
        acks.append(slack.command(MANUAL, f"offer {target.id} $1 {EVIL}"))  # type: ignore[attr-defined]
        acks.append(slack.command(MANUAL, f"say {target.id} {EVIL}"))  # type: ignore[attr-defined]
        # agents' own text (a model's messages, offers and descriptions), through the exchange
        agent = target.seller  # type: ignore[attr-defined]
        host.run.submit("A", agent, SendMessage(listing_id=target.id, text=f"model says {EVIL}"))  # type: ignore[attr-defined, union-attr]
        mine = locked(host, lambda st: next(lst for lst in st.listings.values() if lst.seller == me))()
        host.run.submit("A", agent, MakeOffer(listing_id=mine.id, amount=500, message=f"take it {EVIL}"))  # type: ignore[union-attr]
        holdings = locked(host, lambda st: [i for i in st.holdings(agent) if i.id not in st.open_listing_of_item])()
        if holdings:
            host.run.submit("A", agent, ListItem(item_id=holdings[0].id, ask=900, description=f"new {EVIL}"))  # type: ignore[union-attr]
        wait_for(lambda: any("model says" in json.dumps(m) for m in stub.posts("deal-a")), what="agent message")
        # a thread reply that names a price, from the person trading by hand
        wait_for(lambda: host.store.posted(listing_key("A", target.id)), what="listing posted")  # type: ignore[attr-defined]
        channel, ts = host.store.posted(listing_key("A", target.id))  # type: ignore[attr-defined, misc]
        event = {"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": "EvEvil",
                 "event_time": 1, "event": {"type": "message", "channel": channel, "channel_type": "channel",
                                            "user": MANUAL, "text": f"I'd do $12 {EVIL}", "ts": "1800000000.000001",
                                            "thread_ts": ts}}
        assert slack.app.dispatch(signed_request(json.dumps(event), "application/json")).status == 200
        wait_for(lambda: stub.state.ephemerals, what="offer button")
        # what a person reads about themselves and the market
        acks.append(slack.command(MANUAL, "status"))
        acks.append(slack.command(MANUAL, "market"))
        wait_for(lambda: any("Balance" in r for r in slack.responses(MANUAL)) and
                 any("open listings" in r for r in slack.responses(MANUAL)), what="status and market")
        home = {"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": "EvHome",
                "event_time": 1, "event": {"type": "app_home_opened", "user": MANUAL, "tab": "home"}}
        slack.app.dispatch(signed_request(json.dumps(home), "application/json"))
        wait_for(lambda: stub.calls("views.publish"), what="home tab")
        acks.append(slack.command(ADMIN, "admin settle"))
        wait_for(lambda: any("settled" in json.dumps(m) for m in stub.posts(f"dm-{MANUAL}")), what="settlement")
        assert host.poster.flush(30)
    finally:
        host.close()
    seen = assert_nothing_live(stub, acks)
    everything = json.dumps([c.args for c in stub.calls()] + stub.state.responses, ensure_ascii=False)
    assert "&lt;!channel&gt;" in everything and "&lt;@UEVIL1&gt;" in everything  # escaped, not dropped
    assert "Mallory" in everything and "model says" in everything and "I&#39;d" not in everything
    assert CUT_MARKER in everything  # the long title was cut with a visible marker
    offer = stub.state.ephemerals[0]
    assert "Make this an offer: $12.00" in json.dumps(offer)
    assert seen > 50  # the walk reached the messages (how many depends on how far the agents got)


@pytest.mark.slow
def test_catalog_titles_in_watch_mode_are_escaped(stub: SlackStub, client: WebClient, tmp_path: Path) -> None:
    data = yaml.safe_load(SMOKE.read_text())
    data["catalog"] = "catalog.csv"
    (tmp_path / "evil.yaml").write_text(yaml.safe_dump(data))
    with (SMOKE.parent / "catalog.csv").open() as src, (tmp_path / "catalog.csv").open("w", newline="") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames or [])
        writer.writeheader()
        for row in reader:
            writer.writerow({**row, "title": f"{row['title']} {EVIL}"})
    folder = RunFolder.create(tmp_path / "runs", "evil", exact=tmp_path / "run")
    start(plan(tmp_path / "evil.yaml"), folder)
    result = watch(folder.path, client, prefix="deal-", pace=0)
    assert result.sent > 20 and not result.failed
    assert_nothing_live(stub, [])
    assert "&lt;@UEVIL1&gt;" in json.dumps([c.args for c in stub.calls("chat.postMessage")])
    shutil.rmtree(tmp_path / "runs", ignore_errors=True)


def test_the_interview_path_reaches_slack_escaped(stub: SlackStub, client: WebClient, scenario: Path,
                                                  tmp_path: Path) -> None:
    import anthropic

    from agents.llm.interviewer import Interviewer
    from tests.slackbot.interview_fake import FakeInterviewer
    from tests.slackbot.test_interview import USER, _interview

    fake = FakeInterviewer().start()
    interviewer = Interviewer(anthropic.Anthropic(api_key=fake.api_key, base_url=f"http://127.0.0.1:{fake.port}",
                                                  max_retries=0), "claude-haiku-4-5")
    host = Host(scenario, client, out=tmp_path / "run", speed=1, pace=0, interviewer=interviewer)
    slack = Slack(build_app(host, client, signing_secret=SECRET), stub)
    try:
        _interview(slack, stub, [f"I'd like to sell my Lamp {EVIL} for $30, at least $5",
                                 f"I want a Desk {EVIL} up to $60", f"terse {EVIL}", f"ask me first {EVIL}"])
        wait_for(lambda: any("interview_review" in json.dumps(m) for m in stub.posts(f"dm-{USER}")),
                 what="the mandate")
        slack.click(USER, "interview_review", "review")
        wait_for(lambda: stub.calls("views.open"), what="the prefilled form")
        assert host.poster.flush(10)
    finally:
        host.close()
        fake.stop()
    assert_nothing_live(stub, [])
    assert "&lt;@UEVIL1&gt;" in json.dumps([c.args for c in stub.calls("chat.postMessage")])
