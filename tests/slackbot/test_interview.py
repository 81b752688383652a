"""The interview writes the agent: /deal join opens a DM in which the interviewer model (the fake
Messages API, contract-checked) asks its questions; the mandate it extracts (a forced tool call,
validated, repaired once) is confirmed in the join modal; the conversation becomes the agent's
instructions in the run folder; the agent trades; the person gets the settlement DM and the survey."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest
from slack_sdk import WebClient

from agents.interview import interviewed_path
from agents.llm.interviewer import Interviewer
from slackbot.app import build_app
from slackbot.host import Host, participant_id
from tests.slackbot.conftest import ADMIN, SECRET, signed_request
from tests.slackbot.interview_fake import QUESTIONS, FakeInterviewer
from tests.slackbot.live import Slack, dms, locked, most_wanted, wait_for
from tests.slackbot.slack_stub import SlackStub

USER = "UINT1"
MODEL = "claude-haiku-4-5"


@pytest.fixture
def fake() -> Iterator[FakeInterviewer]:
    server = FakeInterviewer().start()
    yield server
    server.stop()


def _interviewer(fake: FakeInterviewer) -> Interviewer:
    return Interviewer(anthropic.Anthropic(api_key=fake.api_key, base_url=f"http://127.0.0.1:{fake.port}",
                                           max_retries=0), MODEL)


def _answer(slack: Slack, text: str, n: int) -> None:
    event = {"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": f"EvI{n}", "event_time": 1,
             "event": {"type": "message", "channel": "DINT", "channel_type": "im", "user": USER, "text": text,
                       "ts": f"1700000100.{n:06d}"}}
    assert slack.app.dispatch(signed_request(json.dumps(event), "application/json")).status == 200


def _interview(slack: Slack, stub: SlackStub, answers: list[str]) -> None:
    reply = slack.command(USER, "join")
    assert reply == {}
    wait_for(lambda: any("few questions" in r for r in slack.responses(USER)), what="the DM is open")
    for n, answer in enumerate(answers):
        wait_for(lambda n=n: len(dms(stub, USER)) > n, what=f"question {n + 1}")
        assert QUESTIONS[n] in dms(stub, USER)[n]["text"]
        _answer(slack, answer, n)


def test_a_person_joins_by_interview_and_their_agent_trades_on_it(stub: SlackStub, client: WebClient,
                                                                   scenario: Path, tmp_path: Path,
                                                                   fake: FakeInterviewer) -> None:
    wanted = most_wanted(scenario)
    interviewer = _interviewer(fake)
    host = Host(scenario, client, out=tmp_path / "run", speed=12_000, pace=0, interviewer=interviewer)
    slack = Slack(build_app(host, client, signing_secret=SECRET), stub)
    try:
        _interview(slack, stub, [
            f"I'd like to sell my {wanted[0]} for $30, at least $5. And sell a {wanted[1]} for $25, no less than $4",
            f"I want a {wanted[2]} up to $60",
            "direct, please",
            "let it close deals alone",
        ])
        mandate = wait_for(lambda: [m for m in dms(stub, USER) if "interview_review" in json.dumps(m)],
                           what="the mandate to confirm")[0]  # type: ignore[index]
        assert "$30.00" in json.dumps(mandate) and "$5.00" in json.dumps(mandate)
        slack.click(USER, "interview_review", "review")
        view = wait_for(lambda: stub.calls("views.open"), what="the join modal")[0].args["view"]  # type: ignore[index]
        fields = {b["block_id"]: b["element"] for b in view["blocks"]}
        assert fields["sells"]["initial_value"] == f"{wanted[0]}, $30.00, $5.00\n{wanted[1]}, $25.00, $4.00"
        assert fields["wants"]["initial_value"] == f"{wanted[2]}, $60.00"
        assert fields["style"]["initial_option"]["value"] == "direct"
        assert fields["autonomy"]["initial_option"]["value"] == "autonomous"
        values = {"sells": {"value": {"type": "plain_text_input", "value": fields["sells"]["initial_value"]}},
                  "wants": {"value": {"type": "plain_text_input", "value": fields["wants"]["initial_value"]}},
                  "style": {"value": {"type": "static_select", "selected_option": {"value": "direct"}}},
                  "autonomy": {"value": {"type": "radio_buttons", "selected_option": {"value": "autonomous"}}}}
        assert slack.submit_view(USER, view, values) == {}
        slack.command(ADMIN, "admin start")
        wait_for(lambda: host.person(USER), what="joined")
        pid = participant_id(USER)
        instructions = interviewed_path(tmp_path / "run", pid).read_text()
        assert QUESTIONS[0] in instructions and "let it close deals alone" in instructions
        assert f"sell {wanted[0]}: ask 30.00, least 5.00" in instructions
        # the agent trades on the confirmed mandate: the exchange holds it to its least
        wait_for(locked(host, lambda st: [d for d in list(st.deals) if pid in (d.buyer, d.seller)]), timeout=60,
                 what="a deal of the agent's")
        with host.lock:
            for deal in host.state().deals:
                if deal.seller == pid:
                    assert deal.price >= 400
        slack.command(ADMIN, "admin settle")
        settled = wait_for(lambda: [m for m in dms(stub, USER) if "open_survey" in json.dumps(m)],
                           what="settlement DM with the survey")
        assert settled
        assert host.poster.flush(30)
    finally:
        host.close()
    assert fake.refused == []  # every request met the API's contract
    assert interviewer.calls == 5 and fake.interview_calls == 5  # four questions and one extraction
    assert interviewer.usage.input > 0 and interviewer.cost_usd() > 0


@pytest.mark.parametrize(("bad", "repaired"), [(1, True), (2, False)])
def test_a_mandate_that_does_not_validate_is_repaired_once_then_the_form_is_offered(
        stub: SlackStub, client: WebClient, scenario: Path, tmp_path: Path, bad: int, repaired: bool) -> None:
    answers = ["I sell a lamp for $20, at least $10", "nothing", "terse", "ask me first"]
    fake = FakeInterviewer(bad_extractions=bad).start()
    interviewer = _interviewer(fake)
    host = Host(scenario, client, out=tmp_path / "run", speed=1, pace=0, interviewer=interviewer)
    slack = Slack(build_app(host, client, signing_secret=SECRET), stub)
    try:
        _interview(slack, stub, answers)
        if repaired:
            wait_for(lambda: host.interviews.form(USER), what="the repaired mandate")
            form = host.interviews.form(USER)
            assert form is not None and form.sells[0].least == 1000 and form.autonomy == "approve"
        else:
            wait_for(lambda: host.interviews.stage(USER) == "failed", what="the interview gave up")
            wait_for(lambda: "form instead" in json.dumps(dms(stub, USER)[-1]), what="told to use the form")
            slack.command(USER, "join")  # the form instead
            wait_for(lambda: stub.calls("views.open"), what="the join form")
        assert interviewer.calls == 4 + 2 and fake.refused == []
    finally:
        host.close()
        fake.stop()
