"""One rate-limited posting queue for every message the bot sends.

Posts wait in a queue per channel; a worker thread sends them in order,
about one message per ``pace`` seconds per channel (Slack's documented
limit for chat.postMessage), and different channels proceed side by side.
HTTP 429 waits the ``Retry-After`` seconds and retries; ``ratelimited``
backs off; ``not_in_channel`` joins and retries; ``channel_not_found``
looks the channel up again once. Every sent message's ts goes into the
bot's store under the post's key before the next one is sent, so after a
restart already posted keys are skipped: nothing is posted twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot.render import Post
from slackbot.store import Store

log = logging.getLogger("slackbot.poster")
Resolver = Callable[[str, bool], str]
"""(target, refresh) -> channel id; refresh=True looks it up again."""


class PostFailed(Exception):
    """A post that could not be delivered (the reason is a Slack error code, never a token)."""


class Poster:
    """The rate-limited queue; ``submit`` from any thread, ``flush`` to wait for it to drain."""

    def __init__(
        self, client: WebClient, store: Store, resolve: Resolver, *, pace: float = 1.0,
        max_attempts: int = 6, backoff: float = 1.0,
    ) -> None:
        self.client = client
        self.store = store
        self.resolve = resolve
        self.pace = pace
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.sent = 0
        self.skipped = 0
        self.failed: list[tuple[str, str]] = []  # (key, error code)
        self._queues: dict[str, deque[Post]] = {}
        self._next: dict[str, float] = {}
        self._pending = 0
        self._cv = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # --- the queue -------------------------------------------------------------------------
    def start(self) -> Poster:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="slack-poster", daemon=True)
            self._thread.start()
        return self

    def submit(self, post: Post) -> None:
        with self._cv:
            self._queues.setdefault(post.market, deque()).append(post)
            self._pending += 1
            self._cv.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted is sent (or failed); False on timeout."""
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
        return self._pending

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._stopping and not any(self._queues.values()):
                    self._cv.wait()
                if self._stopping:
                    return
                now = time.monotonic()
                target = min((t for t, q in self._queues.items() if q), key=lambda t: self._next.get(t, 0.0))
                delay = self._next.get(target, 0.0) - now
                if delay > 0:
                    self._cv.wait(delay)
                    continue
                post = self._queues[target].popleft()
            try:
                self.send(post)
            except Exception as exc:  # never let one post stop the queue
                self.failed.append((post.key, type(exc).__name__))
                log.warning("post %s failed: %s", post.key, type(exc).__name__)
            finally:
                with self._cv:
                    self._pending -= 1
                    self._cv.notify_all()

    def _hold(self, target: str, seconds: float) -> None:
        with self._cv:
            self._next[target] = max(self._next.get(target, 0.0), time.monotonic() + seconds)

    def _wait_turn(self, target: str) -> None:
        with self._cv:
            delay = self._next.get(target, 0.0) - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    # --- one message -------------------------------------------------------------------------
    def send(self, post: Post) -> str | None:
        """Post one message now (honouring the pace); its ts, or None if it was already posted."""
        if self.store.posted(post.key):
            self.skipped += 1
            return None
        channel = self.resolve(post.market, False)
        args: dict[str, object] = {
            "text": post.msg["text"], "blocks": post.msg.get("blocks"),
            "unfurl_links": False, "unfurl_media": False,
        }
        if post.thread:
            parent = self.store.posted(post.thread)
            if parent:
                args["thread_ts"] = parent[1]
                if post.broadcast:
                    args["reply_broadcast"] = True
        joined = refreshed = False
        for attempt in range(1, self.max_attempts + 1):
            self._wait_turn(post.market)
            self._hold(post.market, self.pace)
            try:
                response = self.client.chat_postMessage(channel=channel, **args)  # type: ignore[arg-type]
            except SlackApiError as exc:
                code = str(exc.response.get("error", "")) if exc.response is not None else ""
                status = exc.response.status_code if exc.response is not None else 0
                if status == 429 or code == "ratelimited":
                    wait = _retry_after(exc, self.backoff * attempt)
                    log.info("rate limited on %s; waiting %.1fs", post.market, wait)
                    self._hold(post.market, wait)
                    continue
                if code == "not_in_channel" and not joined:
                    joined = True
                    self.client.conversations_join(channel=channel)
                    continue
                if code == "channel_not_found" and not refreshed:
                    refreshed = True
                    channel = self.resolve(post.market, True)
                    continue
                self.failed.append((post.key, code or f"http {status}"))
                log.warning("post %s failed: %s", post.key, code or status)
                return None
            ts = str(response["ts"])
            self.store.record_post(post.key, str(response.get("channel") or channel), ts)
            self.sent += 1
            return ts
        self.failed.append((post.key, "gave up after rate limits"))
        log.warning("post %s: gave up after %d attempts", post.key, self.max_attempts)
        return None


def _retry_after(exc: SlackApiError, default: float) -> float:
    headers = exc.response.headers if exc.response is not None else {}
    value = None
    for name, val in (headers or {}).items():
        if name.lower() == "retry-after":
            value = val[0] if isinstance(val, list) else val
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


class ChannelResolver:
    """Market name -> channel id (``<prefix><market>``, created or joined once, kept in the store);
    ``@USERID`` -> that person's DM channel."""

    def __init__(self, client: WebClient, store: Store, prefix: str = "deal-") -> None:
        self.client = client
        self.store = store
        self.prefix = prefix
        self._lock = threading.Lock()

    def name(self, market: str) -> str:
        return (self.prefix + market).lower()[:80]

    def __call__(self, target: str, refresh: bool = False) -> str:
        with self._lock:
            key = target if target.startswith("@") else self.name(target)
            known = None if refresh else self.store.channel(key)
            if known:
                return known
            if target.startswith("@"):
                channel_id = str(self.client.conversations_open(users=target[1:])["channel"]["id"])
            else:
                channel_id = self._find_or_create(key)
            self.store.record_channel(key, channel_id)
            return channel_id

    def _find_or_create(self, name: str) -> str:
        try:
            return str(self.client.conversations_create(name=name)["channel"]["id"])
        except SlackApiError as exc:
            if exc.response.get("error") != "name_taken":
                raise
        cursor = None
        while True:
            page = self.client.conversations_list(types="public_channel", limit=200, cursor=cursor,
                                                  exclude_archived=True)
            for channel in page["channels"]:
                if channel["name"] == name:
                    if not channel.get("is_member"):
                        self.client.conversations_join(channel=channel["id"])
                    return str(channel["id"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                raise PostFailed(f"channel #{name} exists but cannot be found")
