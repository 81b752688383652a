"""Watch a run in Slack: a channel per market, every event posted once, in order.

Reads the run's ledger (finished or still running), renders each event
(``render.py``) and hands the posts to the rate-limited ``Poster``. With
``speed`` the replay keeps the run's rhythm, ``speed`` simulated seconds per
real second; without it, posts go out as fast as the pace allows. Restarting
re-renders from the first event and skips every post already in the bot's
table, without waiting for them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from slack_sdk import WebClient

from market.ledger import Ledger
from running.runfolder import RunFolder
from slackbot.poster import Poster
from slackbot.render import Post, Renderer
from slackbot.store import Store


@dataclass
class WatchResult:
    """What posting a run into Slack did: posts rendered, sent now, skipped (posted before a restart), failed
    for good (post key, Slack error code), and the seconds it took."""

    posts: int  # posts rendered
    sent: int  # posted now
    skipped: int  # already posted before (a restart)
    failed: list[tuple[str, str]]
    seconds: float


def show_tiers_of(run_dir: Path) -> bool:
    """Whether the run's scenario says agents' tiers may be shown (``slack.show_tiers``)."""
    data = RunFolder(Path(run_dir)).read_scenario()
    return bool((data.get("slack") or {}).get("show_tiers", False))


def watch(
    run_dir: Path | str, client: WebClient, *, prefix: str = "deal-", speed: float | None = None,
    pace: float = 1.0, follow: bool = True, poll: float = 1.0, markets: list[str] | None = None,
    stop: threading.Event | None = None,
) -> WatchResult:
    """Post the run at ``run_dir`` into Slack; returns when every post is out."""
    folder = RunFolder.open(run_dir)
    started = time.monotonic()
    store = Store(folder.path)
    poster = Poster(client, store, pace=pace, prefix=prefix).start()
    renderer = Renderer(show_tiers=show_tiers_of(folder.path))
    stop = stop or threading.Event()
    anchor: tuple[float, int] | None = None
    count = 0

    def emit(posts: list[Post]) -> None:
        nonlocal anchor, count
        for post in posts:
            count += 1
            if markets and post.market not in markets:
                continue
            if store.posted(post.key):
                poster.submit(post)  # counted as skipped, without waiting for its time
                continue
            if speed:
                if anchor is None:
                    anchor = (time.monotonic(), post.at)
                due = anchor[0] + (post.at - anchor[1]) / speed
                stop.wait(max(0.0, due - time.monotonic()))
            poster.submit(post)

    try:
        with Ledger(folder.ledger) as ledger:
            last = 0
            while not stop.is_set():
                for record in ledger.records(after=last):
                    if stop.is_set():
                        break
                    last = record.seq
                    emit(renderer.feed(record.seq, record.market, record.event))
                if ledger.status("state") == "complete" or not follow or stop.is_set():
                    break
                stop.wait(poll)
            if not stop.is_set() and ledger.status("state") == "complete":
                emit(renderer.finish())
        while not poster.flush(0.1) and not stop.is_set():
            pass  # a stop (Ctrl-C, a kill) abandons the queue: a restart posts the rest
    finally:
        poster.stop()
        store.close()
    return WatchResult(count, poster.sent, poster.skipped, poster.failed, time.monotonic() - started)
