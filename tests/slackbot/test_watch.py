"""Watching a run: every event posted once, in threads; a restart posts nothing twice."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from slack_sdk import WebClient
from typer.testing import CliRunner

from market.events import DealClosed, ItemListed
from market.ledger import Ledger
from slackbot.render import render_all
from slackbot.store import Store
from slackbot.watch import watch
from tests.slackbot.conftest import ROOT, TOKEN
from tests.slackbot.slack_stub import SlackStub


def test_watch_posts_the_whole_run(stub: SlackStub, client: WebClient, smoke_run: Path) -> None:
    result = watch(smoke_run, client, prefix="deal-", pace=0)
    with Ledger(smoke_run) as ledger:
        records = list(ledger.records())
    expected = render_all(records)
    posted = stub.posts("deal-a")
    assert result.sent == len(expected) == len(posted) and not result.failed
    listings = [r for r in records if isinstance(r.event, ItemListed)]
    top = [m for m in posted if "thread_ts" not in m]
    assert len(top) == len(listings) + 2  # + market opened + the digest
    deals = [m for m in posted if m.get("reply_broadcast")]
    assert len(deals) == sum(isinstance(r.event, DealClosed) for r in records)
    assert (smoke_run / "slack.sqlite").is_file()
    assert Store(smoke_run).post_count() == len(expected)


def test_watch_restarted_midway_continues_without_duplicates(stub: SlackStub, client: WebClient,
                                                              smoke_run: Path) -> None:
    stop = threading.Event()
    stub.fail("chat.postMessage", "ratelimited", status=429, retry_after=0, times=1)
    calls = 0
    original = client.api_call

    def counting(method, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        if method == "chat.postMessage":
            calls += 1
            if calls == 40:
                stop.set()  # the bot is killed after about 40 posts
        return original(method, **kwargs)

    client.api_call = counting  # type: ignore[method-assign]
    first = watch(smoke_run, client, prefix="deal-", pace=0, stop=stop)
    client.api_call = original  # type: ignore[method-assign]
    second = watch(smoke_run, client, prefix="deal-", pace=0)
    texts = [(m["ts"]) for m in stub.posts("deal-a")]
    assert len(texts) == len(set(texts))
    assert 0 < first.sent < second.posts
    assert second.skipped == first.sent and first.sent + second.sent == second.posts
    keys = Store(smoke_run).post_count()
    assert keys == len(stub.posts("deal-a"))


def test_watch_with_speed_keeps_the_rhythm(stub: SlackStub, client: WebClient, smoke_run: Path) -> None:
    # a simulated day (opening to digest) at 86,400x: about one real second
    result = watch(smoke_run, client, prefix="deal-", pace=0, speed=86_400)
    assert result.seconds >= 0.7 and not result.failed


@pytest.mark.parametrize(("args", "message"), [
    (["watch", "RUN", "--speed", "-5"], "Invalid value for '--speed': a number above 0 and at most 10,000,000, got -5"),
    (["watch", "RUN", "--speed", "1e999"], "Invalid value for '--speed': a number above 0 and at most 10,000,000"),
    (["watch", "RUN", "--pace", "nan"], "Invalid value for '--pace': a number from 0 to 3,600, got nan"),
    (["watch", "RUN", "--channel-prefix", "X" * 500], "Invalid value for '--channel-prefix': lowercase letters"),
    (["watch", "RUN", "--markets", "A,,B"], "Invalid value for '--markets': comma-separated market names"),
    (["host", "scenario.yaml", "--speed", "0"], "Invalid value for '--speed': a number above 0"),
    (["host", "scenario.yaml", "--http", "--port", "99999"], "Invalid value for '--port': a port is 1 to 65535"),
    (["host", "scenario.yaml", "--admin", "bob"], "Invalid value for '--admin': a Slack user id looks like U012AB3CD"),
])
def test_command_line_numbers_and_names_are_bounded(args: list[str], message: str) -> None:
    """Refused by the parser (exit 2), before any token is looked for or any message sent."""
    from slackbot.__main__ import app

    result = CliRunner().invoke(app, args, prog_name="python -m slackbot", env={"SLACK_BOT_TOKEN": ""})
    said = " ".join(result.output.replace("│", " ").split())  # the error box wraps long lines
    assert result.exit_code == 2 and message in said and len(said) < 1_000, result.output
    assert "SLACK_BOT_TOKEN" not in said


def test_watch_without_a_token_exits_2_naming_it(smoke_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from slackbot.__main__ import app

    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["watch", str(smoke_run)], prog_name="python -m slackbot")
    assert result.exit_code == 2
    assert result.output == ("error: set SLACK_BOT_TOKEN (the bot token, xoxb-...) in the environment; "
                             "tokens are never taken as options\n")
    assert Store(smoke_run).post_count() == 0


@pytest.mark.slow
def test_watch_command_line(stub: SlackStub, smoke_run: Path) -> None:
    env = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": stub.base_url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "slackbot", "watch", str(smoke_run), "--channel-prefix", "deal-", "--pace", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "posted" in done.stdout and TOKEN not in done.stdout + done.stderr
    assert len(stub.posts("deal-a")) > 50
    missing = subprocess.run([sys.executable, "-m", "slackbot", "watch", str(smoke_run)], cwd=ROOT,
                             env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "SLACK_BOT_TOKEN" in missing.stderr and missing.stderr.count("\n") == 1
