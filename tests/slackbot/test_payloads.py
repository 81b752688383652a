"""Signed payloads of odd shapes reach the listeners (Socket Mode, or past the HTTP door): each is answered
with a reason, none is a 500 or a traceback, and what comes back is bounded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient

from market.mandate import Mandate
from slackbot.app import build_app
from slackbot.host import Host
from slackbot.modals import parse_join
from slackbot.survey import parse_survey
from tests.slackbot.conftest import SECRET, payload_body, signed_request
from tests.slackbot.live import join_values, wait_for
from tests.slackbot.slack_stub import SlackStub


@pytest.mark.parametrize("values", [[], None, "x", {"sells": []}, {"sells": {"value": []}},
                                    {"sells": {"value": {"value": ["Lamp, $5, $4"]}}},
                                    {"sells": {"value": {"value": {"a": 1}}}}])
def test_join_form_values_of_any_shape_get_a_field_error(values: Any) -> None:
    errors = parse_join(values)
    assert isinstance(errors, dict) and errors.get("sells")


def test_join_form_selects_of_the_wrong_shape_are_refused_by_field() -> None:
    values = join_values("Lamp, $5, $4", "", "manual")
    values["style"]["value"]["selected_option"] = {"value": ["direct"]}
    values["autonomy"]["value"]["selected_option"] = {"value": {"a": 1}}
    errors = parse_join(values)
    assert isinstance(errors, dict) and set(errors) == {"style", "autonomy"}
    assert isinstance(parse_join(join_values("Lamp, $5, $4", "", "manual")), Mandate)


def test_survey_errors_are_bounded() -> None:
    values = {f"deal:{n:04d}" + "x" * 1000: {"rating": {"selected_option": {"value": "9"}}} for n in range(500)}
    values.update({f"deal:D{n}": {"rating": {"selected_option": {"value": ["5"]}}} for n in range(500)})
    errors = parse_survey(values)
    assert isinstance(errors, dict) and 0 < len(errors) <= 50
    assert len(json.dumps(errors)) < 5000
    assert parse_survey({"deal:D1": {"rating": {"selected_option": {"value": "5"}}}, "comment": []}) == (
        {"D1": 5}, "")
    assert parse_survey([]) == ({}, "")


def _dispatch(app: Any, payload: dict[str, Any]) -> tuple[int, str]:
    response = app.dispatch(signed_request(payload_body(payload)))
    return response.status, str(response.body)


def test_odd_buttons_and_views_are_answered_not_raised(stub: SlackStub, client: WebClient, scenario: Path,
                                                       tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    host = Host(scenario, client, out=tmp_path / "run", speed=1, pace=0)
    app = build_app(host, client, signing_secret=SECRET)
    try:
        respond = stub.respond_url + "UBIG1"
        click = {"type": "block_actions", "user": {"id": "UBIG1"}, "team": {"id": "T1"}, "trigger_id": "T-2",
                 "response_url": respond, "actions": [{"action_id": "make_offer", "block_id": "b",
                                                       "type": "button", "value": "L1|99999999999999999999"}]}
        assert _dispatch(app, click)[0] == 200
        replies = wait_for(lambda: [r["text"] for r in stub.state.responses if r["path"].endswith("UBIG1")],
                           what="a reply to the big offer")
        assert "$1,000,000.00" in replies[0]  # type: ignore[index]
        view = {"type": "view_submission", "user": {"id": "U1"}, "team": {"id": "T1"},
                "view": {"id": "V1", "type": "modal", "callback_id": "deal_join", "state": {"values": []}}}
        status, body = _dispatch(app, view)
        assert status == 200 and json.loads(body)["response_action"] == "errors"
        status, body = _dispatch(app, {**view, "view": {**view["view"], "state": {"values": {
            "sells": {"value": {"type": "plain_text_input", "value": ["x"]}}}}}})
        assert status == 200 and "as text" in json.loads(body)["errors"]["sells"]
        survey = {**view, "view": {**view["view"], "callback_id": "deal_survey", "state": {"values": {
            f"deal:{n}" + "y" * 1000: {"rating": {}} for n in range(500)}}}}
        status, body = _dispatch(app, survey)
        assert status == 200 and len(body) < 2000  # 500 block ids of 1,000 characters are passed over
    finally:
        host.close()
    assert "Traceback" not in caplog.text and "ValidationError" not in caplog.text
