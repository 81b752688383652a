"""The rate-limited queue against the Web API stub: pace, 429, errors, restart safety."""

from __future__ import annotations

import logging
from itertools import pairwise
from pathlib import Path

import pytest
from slack_sdk import WebClient

from slackbot.blocks import section
from slackbot.logs import Redact
from slackbot.poster import ChannelResolver, Poster
from slackbot.render import Post
from slackbot.store import Store
from slackbot.webapi import WebApi
from tests.slackbot.conftest import TOKEN
from tests.slackbot.slack_stub import SlackStub


def _post(key: str, market: str = "A", thread: str | None = None, text: str = "hi") -> Post:
    return Post(key=key, market=market, msg={"text": text, "blocks": [section(text)]}, thread=thread)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path)
    yield s
    s.close()


def _poster(client: WebClient, store: Store, pace: float = 0.0) -> Poster:
    return Poster(WebApi(client, backoff=0.01), store, pace=pace, prefix="deal-")


def test_posts_in_order_with_threads_and_one_channel_per_market(stub: SlackStub, client: WebClient,
                                                               store: Store) -> None:
    poster = _poster(client, store).start()
    poster.submit(_post("A:listing:L1"))
    poster.submit(_post("A:2", thread="A:listing:L1", text="offer"))
    poster.submit(_post("B:listing:L1", market="B"))
    assert poster.flush(10)
    poster.stop()
    a = stub.posts("deal-a")
    assert [m["text"] for m in a] == ["hi", "offer"]
    assert a[1]["thread_ts"] == a[0]["ts"]
    assert len(stub.posts("deal-b")) == 1
    assert store.posted("A:2") == (stub.channel_id("deal-a"), a[1]["ts"])
    assert all(c.args.get("unfurl_links") is False for c in stub.calls("chat.postMessage"))


def test_pace_per_channel_is_kept_and_channels_run_side_by_side(stub: SlackStub, client: WebClient,
                                                                store: Store) -> None:
    poster = _poster(client, store, pace=0.2).start()
    for n in range(4):
        poster.submit(_post(f"A:{n}"))
        poster.submit(_post(f"B:{n}", market="B"))
    assert poster.flush(20)
    poster.stop()
    calls = stub.calls("chat.postMessage")
    for channel in (stub.channel_id("deal-a"), stub.channel_id("deal-b")):
        times = [c.at for c in calls if c.args["channel"] == channel]
        gaps = [b - a for a, b in pairwise(times)]
        assert len(times) == 4 and min(gaps) >= 0.15  # the pace, less HTTP jitter
    both = sorted(c.at for c in calls)
    assert both[-1] - both[0] < 2 * 4 * 0.2  # the two channels did not wait for each other


def test_429_waits_retry_after_then_posts_once(stub: SlackStub, client: WebClient, store: Store) -> None:
    poster = _poster(client, store)
    poster.resolve("A", False)
    stub.fail("chat.postMessage", "ratelimited", status=429, retry_after=1)
    ts = poster.send(_post("A:1"))
    calls = stub.calls("chat.postMessage")
    assert ts and len(calls) == 2 and calls[1].at - calls[0].at >= 0.95
    assert len(stub.posts("deal-a")) == 1


def test_ratelimited_error_in_a_200_backs_off_and_retries(stub: SlackStub, client: WebClient, store: Store) -> None:
    poster = _poster(client, store)
    stub.fail("chat.postMessage", "ratelimited", times=2)
    assert poster.send(_post("A:1"))
    assert len(stub.calls("chat.postMessage")) == 3 and len(stub.posts("deal-a")) == 1


def test_not_in_channel_joins_and_retries(stub: SlackStub, client: WebClient, store: Store) -> None:
    stub.add_channel("deal-a", member=False)
    store.record_channel("deal-a", stub.channel_id("deal-a"))
    assert _poster(client, store).send(_post("A:1"))
    assert [c.method for c in stub.calls()] == ["chat.postMessage", "conversations.join", "chat.postMessage"]


def test_channel_not_found_looks_up_again_once_then_gives_up(stub: SlackStub, client: WebClient,
                                                           store: Store) -> None:
    store.record_channel("deal-a", "CGONE")  # a stale id from an earlier run
    poster = _poster(client, store)
    assert poster.send(_post("A:1"))
    assert stub.calls()[1].method == "conversations.create"
    stub.fail("chat.postMessage", "channel_not_found", times=5)
    assert poster.send(_post("A:2")) is None
    assert poster.failed == [("A:2", "channel_not_found")]


def test_existing_channel_is_found_by_listing(stub: SlackStub, client: WebClient, store: Store) -> None:
    for n in range(250):
        stub.add_channel(f"other-{n}")
    cid = stub.add_channel("deal-a", member=False)
    assert ChannelResolver(client, store, "deal-")("A") == cid
    assert stub.calls("conversations.join")[0].args["channel"] == cid


def test_restart_posts_nothing_twice(stub: SlackStub, client: WebClient, tmp_path: Path) -> None:
    first = Store(tmp_path)
    poster = _poster(client, first)
    poster.send(_post("A:1"))
    first.close()
    again = Store(tmp_path)
    poster = _poster(client, again)
    assert poster.send(_post("A:1")) is None and poster.skipped == 1
    assert poster.send(_post("A:2"))
    assert len(stub.posts("deal-a")) == 2


def test_tokens_never_reach_logs_or_errors(stub: SlackStub, client: WebClient, store: Store,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.handler.addFilter(Redact())
    with caplog.at_level(logging.DEBUG):
        poster = _poster(client, store)
        stub.fail("chat.postMessage", "invalid_blocks")
        poster.send(_post("A:1"))
        logging.getLogger("x").warning("config had %s", TOKEN)
    assert TOKEN not in caplog.text
    assert "redacted" in caplog.text
    assert TOKEN not in str(poster.failed)
