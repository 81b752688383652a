"""Bolt's lazy listeners split the fast ack from the slow work: Slack gets its answer while the work
still runs on the handler's pool, and closing the handler finishes the work handed over."""

from __future__ import annotations

import threading
from pathlib import Path

from slack_sdk import WebClient

from slackbot import blocks
from slackbot.app import DealHandler, build_app
from slackbot.host import Host
from tests.slackbot.conftest import SECRET
from tests.slackbot.live import Slack, wait_for
from tests.slackbot.slack_stub import SlackStub

USER = "ULAZY1"


def test_the_ack_does_not_wait_for_the_work(stub: SlackStub, client: WebClient, scenario: Path,
                                            tmp_path: Path) -> None:
    host = Host(scenario, client, out=tmp_path / "run", speed=1, pace=0)
    handler = DealHandler(host, client, workers=2)
    started, release, finished = threading.Event(), threading.Event(), threading.Event()
    view = host.market_view

    def slow_market_view(user_id: str) -> blocks.Msg:
        started.set()
        assert release.wait(30), "the test never released the work"
        msg = view(user_id)
        finished.set()
        return msg

    host.market_view = slow_market_view  # type: ignore[method-assign]
    try:
        slack = Slack(build_app(host, client, signing_secret=SECRET, handler=handler), stub)
        assert slack.command(USER, "market") == {}  # acknowledged while the work is held
        assert wait_for(started.is_set, what="the lazy listener started")
        assert not finished.is_set()
        assert slack.command(USER, "nonsense")["text"].startswith("Unknown command")  # acks are not queued behind
        release.set()
        handler.close()  # waits for the work handed over
        assert finished.is_set()
        assert [r for r in stub.state.responses if r["path"].endswith(USER) and r.get("blocks")]  # the listings
    finally:
        release.set()
        handler.close()
        host.close()
