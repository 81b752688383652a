"""Fixtures for the Slack bot's tests: the Web API stub, a client on it, a finished smoke run."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_sdk import WebClient

from market.runfolder import RunFolder
from market.runner import plan, start
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
