"""Fixtures for the Slack bot's tests: the Web API stub, a client on it, a finished smoke run."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_sdk import WebClient

from running.runfolder import RunFolder
from running.runner import plan, start
from tests.slackbot.slack_stub import SlackStub

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scenarios" / "smoke.yaml"
TOKEN = "xoxb-test-0000-secret"


@pytest.fixture
def stub() -> Iterator[SlackStub]:
    server = SlackStub().start()
    yield server
    server.stop()


@pytest.fixture
def client(stub: SlackStub) -> WebClient:
    return WebClient(token=TOKEN, base_url=stub.base_url, timeout=5)


@pytest.fixture(scope="session")
def smoke_run_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = RunFolder.create(tmp_path_factory.mktemp("runs"), "smoke", exact=tmp_path_factory.mktemp("smoke"))
    start(plan(SMOKE), folder)
    return folder.path


@pytest.fixture
def smoke_run(smoke_run_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of a finished smoke.yaml run folder."""
    target = tmp_path / "run"
    shutil.copytree(smoke_run_template, target)
    return target


SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def signed_request(body: str, content_type: str = "application/x-www-form-urlencoded", *,
                   secret: str = SECRET, timestamp: int | None = None, signature: str | None = None,
                   extra: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """A Bolt request signed the way Slack signs it (``v0=`` HMAC-SHA256 of ``v0:ts:body``)."""
    import time

    from slack_bolt.request import BoltRequest
    from slack_sdk.signature import SignatureVerifier

    ts = str(int(time.time()) if timestamp is None else timestamp)
    sig = signature if signature is not None else SignatureVerifier(secret).generate_signature(
        timestamp=ts, body=body)
    headers = {"content-type": [content_type], "x-slack-request-timestamp": [ts]}
    if sig:
        headers["x-slack-signature"] = [sig]
    for name, value in (extra or {}).items():
        headers[name] = [value]
    return BoltRequest(body=body, headers=headers)


def command_body(text: str, user: str, respond_url: str, trigger: str = "T-1") -> str:
    from urllib.parse import urlencode

    return urlencode({"token": "legacy", "team_id": "T1", "channel_id": "C0", "user_id": user,
                      "user_name": user.lower(), "command": "/deal", "text": text,
                      "response_url": respond_url, "trigger_id": trigger})


def payload_body(payload: dict) -> str:  # type: ignore[type-arg]
    import json
    from urllib.parse import urlencode

    return urlencode({"payload": json.dumps(payload)})


ADMIN = "UADMIN1"


def live_scenario(tmp_path: Path, **extra: object) -> Path:
    """smoke.yaml with a Slack section (and ``extra`` top-level keys), beside a copy of its catalog."""
    import yaml

    data = yaml.safe_load(SMOKE.read_text())
    data["slack"] = {"admins": [ADMIN], "show_tiers": False, "channel_prefix": "deal-"}
    data.update(extra)
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(data))
    shutil.copy(SMOKE.parent / "catalog.csv", tmp_path / "catalog.csv")
    return path


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    return live_scenario(tmp_path)
