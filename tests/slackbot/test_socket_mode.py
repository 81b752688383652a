"""Socket Mode, the default transport, driven offline: Bolt's real SocketModeHandler (slack_sdk's
builtin client) gets its URL from the Web API stub and talks to a local websocket server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient

from slackbot.app import build_app
from slackbot.host import Host
from slackbot.serve import AckingSocketModeHandler
from tests.slackbot.live import MANUAL, wait_for
from tests.slackbot.slack_stub import SlackStub
from tests.slackbot.socket_stub import SocketModeStub

APP_TOKEN = "xapp-1-A1-0000-socketsecret"


@pytest.fixture
def socket_server(stub: SlackStub) -> Iterator[SocketModeStub]:
    server = SocketModeStub().start()
    stub.state.socket_url = server.url
    yield server
    server.stop()


def envelope(envelope_id: str, kind: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"envelope_id": envelope_id, "type": kind, "payload": payload,
            "accepts_response_payload": kind != "events_api", **extra}


@pytest.mark.slow  # about 3 s: the builtin client's close() joins its monitor threads
def test_socket_mode_acks_every_envelope_and_answers(stub: SlackStub, client: WebClient, scenario: Path,
                                                     socket_server: SocketModeStub, tmp_path: Path) -> None:
    host = Host(scenario, client, out=tmp_path / "run", speed=1, pace=0)
    handler = AckingSocketModeHandler(build_app(host, client), APP_TOKEN)
    try:
        handler.connect()
        wait_for(socket_server.connected.is_set, timeout=10, what="websocket")
        command = {"token": "legacy", "team_id": "T1", "api_app_id": "A1", "channel_id": "C0", "user_id": MANUAL,
                   "command": "/deal", "response_url": stub.respond_url + MANUAL, "trigger_id": "T-1"}
        socket_server.send(envelope("e-help", "slash_commands", {**command, "text": "help"}))
        socket_server.send(envelope("e-bad", "slash_commands", {**command, "text": "offer L1 lots"}))
        help_ack = wait_for(lambda: socket_server.acks("e-help"), timeout=10, what="help ack")[0]  # type: ignore[index]
        assert help_ack["payload"]["response_type"] == "ephemeral" and "*Usage:*" in help_ack["payload"]["text"]
        bad_ack = wait_for(lambda: socket_server.acks("e-bad"), timeout=10, what="usage ack")[0]  # type: ignore[index]
        assert "*Usage:*" in bad_ack["payload"]["text"] and bad_ack["payload"]["text"] != help_ack["payload"]["text"]
        # an event, then Slack's retry of it (same event_id): both acked, answered once
        dm = stub.add_channel("dm-socket")
        event = {"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": "EvS1", "event_time": 1,
                 "event": {"type": "message", "channel": dm, "channel_type": "im", "user": MANUAL, "text": "hi",
                           "ts": "1.0"}}
        socket_server.send(envelope("e-ev", "events_api", event, retry_attempt=0, retry_reason=""))
        socket_server.send(envelope("e-ev-retry", "events_api", event, retry_attempt=1, retry_reason="timeout"))
        # a button nobody asked for: acked, answered through the response_url
        click = {"type": "block_actions", "user": {"id": MANUAL}, "team": {"id": "T1"}, "api_app_id": "A1",
                 "trigger_id": "T-2", "response_url": stub.respond_url + MANUAL,
                 "actions": [{"action_id": "approve_deal", "value": "A:nobody:accept:O1:", "block_id": "b",
                              "type": "button"}]}
        socket_server.send(envelope("e-click", "interactive", click))
        # what no listener takes is acknowledged too (Slack would deliver it again)
        reaction = {"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": "EvR1",
                    "event_time": 1, "event": {"type": "reaction_added", "user": MANUAL, "reaction": "wave"}}
        socket_server.send(envelope("e-reaction", "events_api", reaction, retry_attempt=0, retry_reason=""))
        shortcut = {"type": "shortcut", "callback_id": "nobody_handles_this", "user": {"id": MANUAL},
                    "team": {"id": "T1"}, "trigger_id": "T-3"}
        socket_server.send(envelope("e-shortcut", "interactive", shortcut))
        for envelope_id in ("e-ev", "e-ev-retry", "e-click", "e-reaction", "e-shortcut"):
            wait_for(lambda e=envelope_id: socket_server.acks(e), timeout=10, what=f"ack of {envelope_id}")
        wait_for(lambda: [c for c in stub.calls("chat.postMessage") if c.args.get("channel") == dm], what="DM")
        wait_for(lambda: any("not yours" in r.get("text", "") for r in stub.state.responses), what="click answer")
        time.sleep(0.3)
        answers = [c for c in stub.calls("chat.postMessage") if c.args.get("channel") == dm]
        assert len(answers) == 1 and "*Usage:*" in answers[0].args["text"]
    finally:
        handler.close()
        host.close()
    assert all(len(socket_server.acks(e)) == 1
               for e in ("e-help", "e-bad", "e-ev", "e-ev-retry", "e-click", "e-reaction", "e-shortcut"))
    opened = stub.calls("apps.connections.open")
    assert opened and opened[0].auth == f"Bearer {APP_TOKEN}"
    assert all(c.auth.startswith("Bearer xoxb-") for c in stub.calls("chat.postMessage"))
