"""From ledger events to posts: threads, broadcasts, digests, stable keys."""

from __future__ import annotations

from pathlib import Path

from market.events import DealClosed, ItemListed, OfferMade
from market.ledger import Ledger
from slackbot.render import Renderer, listing_key, render_all


def test_every_listing_is_a_top_level_post_and_replies_thread_under_it(smoke_run: Path) -> None:
    with Ledger(smoke_run) as ledger:
        records = list(ledger.records())
    posts = render_all(records)
    keys = [p.key for p in posts]
    assert len(keys) == len(set(keys))
    listings = [r for r in records if isinstance(r.event, ItemListed)]
    tops = {p.key for p in posts if p.thread is None}
    assert {listing_key(r.market, r.event.listing.id) for r in listings} <= tops
    position = {k: i for i, k in enumerate(keys)}
    for post in posts:
        if post.thread:
            assert position[post.thread] < position[post.key]  # parent first
    deals = [r for r in records if isinstance(r.event, DealClosed)]
    broadcasts = [p for p in posts if p.broadcast]
    assert len(broadcasts) == len(deals) > 0
    offers = [r for r in records if isinstance(r.event, OfferMade)]
    assert sum(1 for p in posts if "offer" in p.msg["text"] or "counters" in p.msg["text"]) >= len(offers)
    assert posts[-1].key.endswith(":digest:0")


def test_rendering_twice_gives_the_same_keys(smoke_run: Path) -> None:
    with Ledger(smoke_run) as ledger:
        records = list(ledger.records())
    assert [p.key for p in render_all(records)] == [p.key for p in render_all(records)]


def test_tiers_are_hidden_unless_asked(smoke_run: Path) -> None:
    with Ledger(smoke_run) as ledger:
        records = list(ledger.records())
    hidden = " ".join(str(p.msg) for p in render_all(records))
    shown = " ".join(str(p.msg) for p in render_all(records, show_tiers=True))
    assert "frontier agent" not in hidden and "small agent" not in hidden
    assert "frontier agent" in shown


def test_a_digest_closes_each_day() -> None:
    from market.domain import Participant
    from market.events import MarketOpened, ParticipantJoined, Rules

    r = Renderer()
    r.feed(1, "A", MarketOpened(at=0, rules=Rules()))
    r.feed(2, "A", ParticipantJoined(at=0, participant=Participant(id="p1", name="Ada", budget=100)))
    posts = r.feed(3, "A", ParticipantJoined(at=90_000, participant=Participant(id="p2", name="Ben", budget=100)))
    assert [p.key for p in posts] == ["A:digest:0", "A:3"]
    assert "day 1" in posts[0].msg["blocks"][0]["text"]["text"]
