"""Every message arrives once: the persisted outbox against a stub that answers like Slack
(429 + Retry-After on any method, ``{"ok": false}`` at HTTP 200, 5xx), restarts, permanent errors."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from slack_sdk import WebClient

from slackbot.app import build_app, open_view
from slackbot.blocks import section
from slackbot.host import Host, price_in
from slackbot.poster import Poster
from slackbot.render import Post
from slackbot.store import OutboxRow, Store
from slackbot.webapi import WebApi
from tests.slackbot.conftest import ADMIN, SECRET
from tests.slackbot.live import MANUAL, Slack, wait_for
from tests.slackbot.slack_stub import SlackStub


def _post(key: str, market: str = "A", thread: str | None = None) -> Post:
    return Post(key=key, market=market, msg={"text": key, "blocks": [section(key)]}, thread=thread)


def _poster(client: WebClient, store: Store, **kw: object) -> Poster:
    return Poster(WebApi(client, backoff=0.01), store, pace=0, prefix="deal-", **kw)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = Store(tmp_path)
    yield s
    s.close()


def _script() -> list[Post]:
    """Two markets with listings and their threads, and DMs: 60 posts."""
    posts = []
    for n in range(12):
        for market in ("A", "B"):
            posts.append(_post(f"{market}:listing:L{n}", market))
            posts.append(_post(f"{market}:{n}:reply", market, thread=f"{market}:listing:L{n}"))
    posts += [_post(f"dm:{n}", f"@U{n % 3}") for n in range(12)]
    return posts


def _check_once_in_order(stub: SlackStub, posts: list[Post]) -> None:
    delivered = [m for m in stub.posts()]
    texts = [m["text"] for m in delivered]
    assert sorted(texts) == sorted(p.key for p in posts)  # every message exactly once
    for market in ("a", "b"):
        mine = [m for m in stub.posts(f"deal-{market}")]
        order = [m["text"] for m in mine]
        assert order == [p.key for p in posts if p.market == market.upper()]  # in the order queued
        ts = {m["text"]: m["ts"] for m in mine}
        for m in mine:
            if m["text"].endswith(":reply"):
                parent = m["text"].split(":")[0] + ":listing:L" + m["text"].split(":")[1]
                assert m["thread_ts"] == ts[parent]  # in its thread, never at the top level


def test_429_on_conversations_create_keeps_the_opening_post_and_its_thread(stub: SlackStub, client: WebClient,
                                                                           store: Store) -> None:
    stub.fail("conversations.create", "ratelimited", status=429, retry_after=0, times=3)
    stub.fail("conversations.open", "ratelimited", status=429, retry_after=0, times=2)
    poster = _poster(client, store).start()
    posts = [_post("A:listing:L0"), _post("A:0:reply", thread="A:listing:L0"), _post("dm:0", "@U1")]
    for post in posts:
        poster.submit(post)
    assert poster.flush(10)
    poster.stop()
    assert len(stub.calls("conversations.create")) == 4 and not poster.failed
    a = stub.posts("deal-a")
    assert [m["text"] for m in a] == ["A:listing:L0", "A:0:reply"] and a[1]["thread_ts"] == a[0]["ts"]
    assert len(stub.posts("dm-U1")) == 1


def test_faults_on_every_method_every_message_once_and_in_order(stub: SlackStub, client: WebClient,
                                                                 store: Store) -> None:
    chaos = stub.chaos(0.05, 0.01, retry_after=0, seed=3)
    poster = _poster(client, store).start()
    posts = _script()
    for post in posts:
        poster.submit(post)
    assert poster.flush(30)
    poster.stop()
    assert not poster.failed and chaos.injected > 0
    _check_once_in_order(stub, posts)
    assert {r.state for r in store.outbox()} == {"sent"}


def test_a_restart_resends_what_slack_did_not_confirm_and_nothing_twice(stub: SlackStub, client: WebClient,
                                                                        tmp_path: Path) -> None:
    first = Store(tmp_path)
    poster = _poster(client, first).start()
    posts = _script()
    for post in posts[:10]:
        poster.submit(post)
    assert poster.flush(10)
    stub.fail("chat.postMessage", "ratelimited", status=429, retry_after=600, times=1)  # Slack says: wait long
    for post in posts[10:]:
        poster.submit(post)
    wait_for(lambda: poster.api.retries, what="a long wait")
    poster.stop()  # the bot is stopped while it waits: the rest stays in the outbox
    left = len(first.outbox("pending"))
    first.close()
    assert 0 < left <= len(posts) - 10
    again = Store(tmp_path)
    poster = _poster(client, again).start()  # unconfirmed posts go first, in their order
    for post in posts:  # the host renders everything again after a restart
        poster.submit(post)
    assert poster.flush(20)
    poster.stop()
    _check_once_in_order(stub, posts)
    assert poster.sent == left and poster.skipped == len(posts) - left
    again.close()


def test_permanent_errors_are_reported_once_with_the_fix_and_resent_on_demand(stub: SlackStub, client: WebClient,
                                                                               store: Store) -> None:
    reports: list[tuple[str, str, str]] = []
    stub.fail("conversations.open", "missing_scope", times=1)
    poster = _poster(client, store, report=lambda *r: reports.append(r)).start()
    poster.submit(_post("dm:1", "@U1"))
    poster.submit(_post("A:listing:L1"))
    assert poster.flush(10)
    assert reports == [("dm:1", "missing_scope", reports[0][2])] and "scope" in reports[0][2]
    assert store.outbox("failed")[0].key == "dm:1"
    assert poster.resend_failed() == 1  # the admin fixed the scope
    assert poster.flush(10)
    poster.stop()
    assert len(stub.posts("dm-U1")) == 1 and not store.outbox("failed")


def test_unsent_rows_are_read_by_state_and_dropped_by_prefix(store: Store) -> None:
    for key in ("approval:a1", "approval:a1:ask2", "approvals-note", "A:listing:L1", "approval:a2"):
        store.enqueue(OutboxRow(key=key, target="A", thread=None, broadcast=False, edit=None, msg="{}"))
    store.delivered("approval:a2", "C1", "1.0")
    store.undeliverable("A:listing:L1", "channel_not_found")
    unsent = store.outbox("pending", "failed")
    assert [(r.key, r.state) for r in unsent] == [("approval:a1", "pending"), ("approval:a1:ask2", "pending"),
                                                  ("approvals-note", "pending"), ("A:listing:L1", "failed")]
    store.drop_unsent("approval")
    assert [r.key for r in store.outbox("dropped")] == ["approval:a1", "approval:a1:ask2"]
    assert [r.key for r in store.outbox("pending", "failed")] == ["approvals-note", "A:listing:L1"]
    assert [r.key for r in store.outbox("sent")] == ["approval:a2"]


def test_a_reply_never_goes_out_before_or_without_its_parent(stub: SlackStub, client: WebClient,
                                                              store: Store) -> None:
    stub.fail("chat.postMessage", "invalid_blocks", times=1)  # the parent is refused
    poster = _poster(client, store).start()
    poster.submit(_post("A:listing:L1"))
    poster.submit(_post("A:1:reply", thread="A:listing:L1"))
    assert poster.flush(10)
    assert [f[1] for f in poster.failed] == ["invalid_blocks", "parent_not_posted"]
    assert stub.posts("deal-a") == []  # no reply landed at the top level
    poster.resend_failed()
    assert poster.flush(10)
    poster.stop()
    a = stub.posts("deal-a")
    assert [m["text"] for m in a] == ["A:listing:L1", "A:1:reply"] and a[1]["thread_ts"] == a[0]["ts"]


def test_views_open_is_retried_within_the_trigger_lifetime_or_the_person_is_told(stub: SlackStub,
                                                                                   client: WebClient) -> None:
    import time

    view = {"type": "modal", "title": {"type": "plain_text", "text": "x"}, "blocks": []}
    stub.fail("views.open", "ratelimited", status=429, retry_after=1)
    assert open_view(client, "T-1", view, time.monotonic())
    assert len(stub.calls("views.open")) == 2
    stub.fail("views.open", "ratelimited", status=429, retry_after=5)  # longer than the trigger lives
    assert not open_view(client, "T-2", view, time.monotonic())
    assert len(stub.calls("views.open")) == 3  # not retried after the trigger lapsed


def test_join_tells_the_person_to_try_again_when_slack_is_too_busy(stub: SlackStub, client: WebClient,
                                                                   scenario: Path, tmp_path: Path) -> None:
    host = Host(scenario, client, out=tmp_path / "run", speed=1, pace=0)
    slack = Slack(build_app(host, client, signing_secret=SECRET), stub)
    try:
        stub.fail("views.open", "ratelimited", status=429, retry_after=30)
        slack.command(MANUAL, "join")
        wait_for(lambda: any("/deal join` again" in r for r in slack.responses(MANUAL)), what="try again")
    finally:
        host.close()


def test_prices_in_replies_are_read_exactly() -> None:
    assert price_in("I'd do $12") == 1200
    assert price_in("how about $12.50?") == 1250
    assert price_in("14 dollars and it's yours") == 1400
    assert price_in("$1,250.99 tops") == 125099
    assert price_in("is it still there? 3 days") is None
    assert price_in("$0") is None


def test_undelivered_approval_questions_are_asked_again_after_a_restart(stub: SlackStub, client: WebClient,
                                                                        scenario: Path, tmp_path: Path) -> None:
    from market.actions import Accept
    from slackbot.store import Approval, Person

    host = Host(scenario, client, out=tmp_path / "run", speed=1, pace=0, admins=[ADMIN])
    host.store.add_person(Person(MANUAL, "A", "s-uman1", "approve"))
    host.store.add_approval(Approval("A:s-uman1:accept:O9:", "A", "s-uman1", "O9", "pending",
                                     Accept(offer_id="O9").model_dump_json()))
    stub.fail("conversations.open", "user_not_found", times=1)
    # the question went out before the restart, and Slack refused it
    host.dm(MANUAL, "approval:A:s-uman1:accept:O9:", {"text": "approve?", "blocks": []})
    assert host.poster.flush(10)
    assert [f[1] for f in host.poster.failed] == ["user_not_found"]
    wait_for(lambda: stub.posts(f"dm-{ADMIN}"), what="the admins hear of it")
    assert "user_not_found" in json.dumps(stub.posts(f"dm-{ADMIN}"))
    host.close()
    again = Host(scenario, client, out=tmp_path / "run", speed=1, pace=0, admins=[ADMIN])
    try:
        assert again.poster.flush(10)
        asked = [m for m in stub.posts(f"dm-{MANUAL}") if "approve_deal" in json.dumps(m)]
        assert len(asked) == 1  # asked again, once
        assert "1 approvals waiting" in again.week.pending().replace("*", "")
        assert again.week.resend().startswith("Asked 1 approvals again")
        assert again.poster.flush(10)
        assert len([m for m in stub.posts(f"dm-{MANUAL}") if "approve_deal" in json.dumps(m)]) == 2
    finally:
        again.close()


def test_stop_interrupts_a_long_retry_wait(stub: SlackStub, client: WebClient, store: Store) -> None:
    stub.fail("chat.postMessage", "ratelimited", status=429, retry_after=600)
    poster = _poster(client, store).start()
    poster.submit(_post("A:1"))
    wait_for(lambda: poster.api.retries, what="waiting")
    stopper = threading.Thread(target=poster.stop)
    stopper.start()
    stopper.join(10)
    assert not stopper.is_alive() and store.outbox("pending")[0].key == "A:1"
