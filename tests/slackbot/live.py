"""Helpers for the live-week tests: people, a Slack that sends signed requests, DM readers."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from market.scenario import build_participants, load_scenario
from tests.slackbot.conftest import command_body, payload_body, signed_request
from tests.slackbot.slack_stub import SlackStub

MANUAL, APPROVER, STRANGER = "UMAN1", "UAPP1", "USTRANGE1"


def wait_for(check: Callable[[], object], timeout: float = 30, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or check}")


def locked(host, read: Callable[[object], object]) -> Callable[[], object]:  # type: ignore[no-untyped-def]
    """A check reading the host's market state under its lock (the engine thread moves it on)."""
    def check() -> object:
        with host.lock:
            return read(host.state())
    return check


def most_wanted(scenario: Path) -> list[str]:
    """Catalog titles the smoke agents want most (so agents bid on what the people sell)."""
    sc, catalog = load_scenario(scenario)
    counts = Counter(w.title for p in build_participants(sc, catalog) for w in p.wants)
    return [t for t, _ in counts.most_common()]


class Slack:
    """Sends signed requests into the app, as Slack would."""

    def __init__(self, app, stub: SlackStub) -> None:  # type: ignore[no-untyped-def]
        self.app, self.stub = app, stub
        self.answered: set[str] = set()  # approval ids clicked already

    def command(self, user: str, text: str) -> dict:  # type: ignore[type-arg]
        response = self.app.dispatch(signed_request(command_body(text, user, self.stub.respond_url + user)))
        assert response.status == 200, response.body
        return json.loads(response.body) if response.body else {}

    def payload(self, payload: dict) -> dict:  # type: ignore[type-arg]
        response = self.app.dispatch(signed_request(payload_body(payload)))
        assert response.status == 200, response.body
        return json.loads(response.body) if response.body else {}

    def submit_view(self, user: str, view: dict, values: dict) -> dict:  # type: ignore[type-arg]
        return self.payload({"type": "view_submission", "user": {"id": user}, "team": {"id": "T1"},
                             "view": {**view, "id": "V1", "state": {"values": values}}})

    def click(self, user: str, action_id: str, value: str) -> dict:  # type: ignore[type-arg]
        return self.payload({"type": "block_actions", "user": {"id": user}, "team": {"id": "T1"},
                             "trigger_id": "T-2", "response_url": self.stub.respond_url + user,
                             "actions": [{"action_id": action_id, "value": value, "block_id": "b",
                                          "type": "button"}]})

    def responses(self, user: str) -> list[str]:
        return [r.get("text", "") for r in self.stub.state.responses if r["path"].endswith(user)]


def join_values(sells: str, wants: str, autonomy: str) -> dict:  # type: ignore[type-arg]
    return {"sells": {"value": {"type": "plain_text_input", "value": sells}},
            "wants": {"value": {"type": "plain_text_input", "value": wants}},
            "style": {"value": {"type": "static_select", "selected_option": {"value": "direct"}}},
            "autonomy": {"value": {"type": "radio_buttons", "selected_option": {"value": autonomy}}}}


def dms(stub: SlackStub, user: str) -> list[dict]:  # type: ignore[type-arg]
    return stub.posts(f"dm-{user}")


def buttons(stub: SlackStub, user: str, action_id: str) -> list[str]:
    out = []
    for message in dms(stub, user):
        for block in message.get("blocks") or []:
            for element in block.get("elements", []) if block["type"] == "actions" else []:
                if element["action_id"] == action_id:
                    out.append(element["value"])
    return out




def approve_all(slack: Slack, user: str, decline: Callable[[str], bool] = lambda _: False) -> bool:
    """Click Approve (or Decline, where ``decline`` says so) on every approval DM not answered yet."""
    for value in buttons(slack.stub, user, "approve_deal"):
        if value not in slack.answered:
            slack.answered.add(value)
            slack.click(user, "decline_deal" if decline(value) else "approve_deal", value)
    return True
