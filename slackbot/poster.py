"""The outbox: one persisted, ordered queue for every message the bot sends.

``submit`` writes a post into the outbox table of ``slack.sqlite`` before
anything is sent. Each target (a market's channel, or a person's DM) has its
own lane, a worker thread that sends that target's posts in the order they
were queued, about one per ``pace`` seconds (Slack's limit for
chat.postMessage), while other lanes go on. Every Web API call a post needs
(``conversations.create/join/open``, ``chat.postMessage``, ``chat.update``)
goes through ``WebApi``: 429 waits ``Retry-After``, transient errors back off
and retry, permanent ones are reported once with what to fix. A thread reply
goes out only after its parent's ts is known (same lane, queued before it); if
the parent could not be posted, neither is the reply (it waits for a resend).
Slack's ts and the outbox row's "sent" are written in one transaction, so a
restart (``start``) resends exactly what was not confirmed and never a
confirmed post twice.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from slack_sdk import WebClient

from slackbot.render import Post
from slackbot.store import OutboxRow, Store
from slackbot.webapi import Permanent, Stopped, WebApi, fix_for

log = logging.getLogger("slackbot.poster")
Resolver = Callable[[str, bool], str]
"""(target, refresh) -> channel id; refresh=True looks it up again."""
Report = Callable[[str, str, str], None]
"""(post key, Slack error code, what to fix): called once per permanently failed post."""


class PostFailed(Exception):
    """A post that could not be delivered (the reason is a Slack error code, never a token)."""


def _row(post: Post) -> OutboxRow:
    return OutboxRow(post.key, post.market, post.thread, post.broadcast, post.edit, json.dumps(post.msg), post.at,
                     ephemeral=post.ephemeral)


def _post(row: OutboxRow) -> Post:
    return Post(key=row.key, market=row.target, msg=json.loads(row.msg), thread=row.thread,
                broadcast=row.broadcast, at=row.at, edit=row.edit, ephemeral=row.ephemeral)


class Poster:
    """The outbox and its lanes; ``submit`` from any thread, ``flush`` to wait for it to drain."""

    def __init__(
        self, api: WebApi | WebClient, store: Store, resolve: Resolver | None = None, *, pace: float = 1.0,
        prefix: str = "deal-", report: Report | None = None,
    ) -> None:
        self.api = api if isinstance(api, WebApi) else WebApi(api)
        self.store = store
        self.resolve = resolve or ChannelResolver(self.api, store, prefix)
        self.pace = pace
        self.report = report
        self.sent = 0
        self.skipped = 0
        self.failed: list[tuple[str, str]] = []  # (key, error code)
        self._lanes: dict[str, deque[Post]] = {}
        self._busy: set[str] = set()  # lanes with a worker
        self._next: dict[str, float] = {}
        self._queued: set[str] = set()
        self._mine: set[str] = set()  # keys this poster sent
        self._pending = 0
        self._cv = threading.Condition()
        self._started = False
        self._workers: list[threading.Thread] = []

    # --- the queue -------------------------------------------------------------------------
    def start(self) -> Poster:
        """Start sending; posts left unconfirmed by an earlier run go first, in their order."""
        with self._cv:
            if self._started:
                return self
            self._started = True
        for row in self.store.outbox("pending"):
            self._enqueue(_post(row))
        return self

    def submit(self, post: Post) -> None:
        """Queue ``post`` (persisted first); a key already queued or posted is not queued again."""
        if self.store.posted(post.key):
            if post.key not in self._mine:  # posted by an earlier run, not just now by a lane
                self._skip()
            return
        if not self.store.enqueue(_row(post)):
            row = self.store.outbox_row(post.key)
            if row is None or row.state != "pending":
                return  # sent meanwhile, or failed and waiting for a resend
        self._enqueue(post)

    def resend_failed(self) -> int:
        """Queue again every post that failed for good (after the admin fixed the cause)."""
        keys = self.store.requeue_failed()
        self.failed = [f for f in self.failed if f[0] not in keys]
        for key in keys:
            row = self.store.outbox_row(key)
            if row is not None:
                self._enqueue(_post(row))
        return len(keys)

    def _enqueue(self, post: Post) -> None:
        with self._cv:
            if post.key in self._queued:
                return
            self._queued.add(post.key)
            self._lanes.setdefault(post.market, deque()).append(post)
            self._pending += 1
            if self._started and post.market not in self._busy and not self.api.stop.is_set():
                self._busy.add(post.market)
                worker = threading.Thread(target=self._lane, args=(post.market,), daemon=True,
                                          name=f"slack-lane-{post.market[:20]}")
                self._workers.append(worker)
                worker.start()
            self._cv.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued is sent (or failed); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            while self._pending:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cv.wait(left)
        return True

    @property
    def pending(self) -> int:
        """How many queued posts are not yet sent (or failed)."""
        return self._pending

    def stop(self, timeout: float = 10) -> None:
        """Stop sending: a call in flight finishes, waits are cut short, the rest stays in the outbox."""
        self.api.stop.set()
        with self._cv:
            self._cv.notify_all()
            workers = list(self._workers)
        for worker in workers:
            worker.join(timeout)

    def _lane(self, target: str) -> None:
        while True:
            with self._cv:
                lane = self._lanes.get(target)
                if not lane or self.api.stop.is_set():
                    self._busy.discard(target)
                    return
                post = lane[0]
            wait = self._next.get(target, 0.0) - time.monotonic()
            if wait > 0 and self.api.stop.wait(wait):
                continue
            try:
                self.send(post)
            except Stopped:
                continue  # left in the outbox for the next start
            except Exception as exc:  # never let one post stop the lane
                self._failed(post.key, type(exc).__name__)
            with self._cv:
                lane.popleft()
                self._queued.discard(post.key)
                self._pending -= 1
                self._cv.notify_all()

    def _skip(self) -> None:
        with self._cv:
            self.skipped += 1

    def _failed(self, key: str, error: str) -> None:
        self.store.undeliverable(key, error)
        with self._cv:
            self.failed.append((key, error))
        log.warning("message %s not delivered: %s (%s)", key, error, fix_for(error))
        if self.report is not None:
            try:
                self.report(key, error, fix_for(error))
            except Exception:
                log.exception("reporting a failed message failed")

    # --- one message -------------------------------------------------------------------------
    def send(self, post: Post) -> str | None:
        """Post one message now; its ts, or None if it was posted already or failed for good.

        Raises ``Stopped`` if the bot is stopping (the post stays queued).
        """
        if self.store.posted(post.key):
            self._skip()
            return None
        self.store.enqueue(_row(post))  # a direct call is persisted like a submitted one
        args: dict[str, object] = {"text": post.msg["text"], "blocks": post.msg.get("blocks")}
        if post.edit:
            original = self.store.posted(post.edit)
            if original is None:
                self._failed(post.key, "original_not_posted")
                return None
            method, (channel, args["ts"]) = "chat.update", original
        else:
            method = "chat.postMessage"
            if post.ephemeral:
                method = "chat.postEphemeral"
                args["user"] = post.ephemeral
            else:
                args.update(unfurl_links=False, unfurl_media=False)
            if post.thread:
                parent = self.store.posted(post.thread)
                if parent is None:
                    self._failed(post.key, "parent_not_posted")
                    return None
                args["thread_ts"] = parent[1]
                if post.broadcast:
                    args["reply_broadcast"] = True
        joined = refreshed = post.market.startswith("#")  # a given channel id: nothing to join or look up
        try:
            if method != "chat.update":
                channel = self.resolve(post.market, False)
            while True:
                self._next[post.market] = time.monotonic() + self.pace
                try:
                    response = self.api.call(method, channel=channel, **args)
                    break
                except Permanent as exc:
                    if exc.error == "not_in_channel" and not joined and method != "chat.update":
                        joined = True
                        self.api.call("conversations.join", channel=channel)
                        continue
                    if exc.error == "channel_not_found" and not refreshed and method != "chat.update":
                        refreshed = True
                        channel = self.resolve(post.market, True)
                        continue
                    raise
        except Permanent as exc:
            self._failed(post.key, exc.error)
            return None
        ts = str(response.get("ts") or response.get("message_ts") or args.get("ts"))
        self.store.delivered(post.key, str(response.get("channel") or channel), ts)
        with self._cv:
            self.sent += 1
            self._mine.add(post.key)
        return ts


class ChannelResolver:
    """Market name -> channel id (``<prefix><market>``, created or joined once, kept in the store);
    ``@USERID`` -> that person's DM channel; ``#CHANNELID`` -> that channel.

    Lookups go through ``WebApi`` (429s and all)."""

    def __init__(self, api: WebApi | WebClient, store: Store, prefix: str = "deal-") -> None:
        self.api = api if isinstance(api, WebApi) else WebApi(api)
        self.store = store
        self.prefix = prefix
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def name(self, market: str) -> str:
        """The channel name of ``market``: the prefix and the market's name, lower case, at most 80 characters."""
        return (self.prefix + market).lower()[:80]

    def __call__(self, target: str, refresh: bool = False) -> str:
        if target.startswith("#"):
            return target[1:]  # a channel id the bot was written in
        key = target if target.startswith("@") else self.name(target)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            known = None if refresh else self.store.channel(key)
            if known:
                return known
            if target.startswith("@"):
                channel_id = str(self.api.call("conversations.open", users=target[1:])["channel"]["id"])
            else:
                channel_id = self._find_or_create(key)
            self.store.record_channel(key, channel_id)
            return channel_id

    def _find_or_create(self, name: str) -> str:
        try:
            return str(self.api.call("conversations.create", name=name)["channel"]["id"])
        except Permanent as exc:
            if exc.error != "name_taken":
                raise
        cursor = None
        while True:
            page = self.api.call("conversations.list", types="public_channel", limit=200, cursor=cursor,
                                 exclude_archived=True)
            for channel in page["channels"]:
                if channel["name"] == name:
                    if not channel.get("is_member"):
                        self.api.call("conversations.join", channel=channel["id"])
                    return str(channel["id"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                raise Permanent("conversations.list", "channel_not_found")
