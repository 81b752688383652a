"""Posting for a live week: DMs, replies in a conversation, and the admins' alerts, all through the outbox.

Every message is a keyed ``Post`` handed to the ``Poster`` (rate-limited, retried, persisted in the
store's outbox): a key posts once, also across restarts.
"""

from __future__ import annotations

from collections.abc import Sequence

from slackbot import blocks
from slackbot.poster import Poster
from slackbot.render import Post
from slackbot.store import Store
from slackbot.webapi import WebApi


class Courier:
    """The week's messages into Slack; admins hear once per kind of error about a message Slack refused."""

    def __init__(self, api: WebApi, store: Store, *, pace: float, prefix: str, admins: Sequence[str]) -> None:
        self.admins = tuple(admins)
        self._alerted: set[str] = set()
        self.poster = Poster(api, store, pace=pace, prefix=prefix, report=self.alert).start()

    def post(self, post: Post) -> None:
        """Queue ``post`` (sent once per key)."""
        self.poster.submit(post)

    def dm(self, user_id: str, key: str, msg: blocks.Msg) -> None:
        """Queue a direct message to ``user_id`` under ``key``."""
        self.poster.submit(Post(key=key, market=f"@{user_id}", msg=msg))

    def say(self, channel: str, key: str, msg: blocks.Msg) -> None:
        """Post into a conversation the bot was written in (a DM), by its channel id."""
        self.poster.submit(Post(key=key, market=f"#{channel}", msg=msg))

    def tell_admins(self, key: str, msg: blocks.Msg) -> None:
        """DM every admin ``msg`` (``key`` plus the admin's id keeps one per admin)."""
        for admin in self.admins:
            self.dm(admin, f"{key}:{admin}", msg)

    def alert(self, key: str, error: str, fix: str) -> None:
        """A message Slack refused for good: the admins hear it once per kind of error."""
        if key.startswith("alert:") or error in self._alerted:
            return
        self._alerted.add(error)
        self.tell_admins(f"alert:{error}", blocks.notice(
            f"A message ({key}) could not be delivered: {error}. To fix: {fix}. "
            "Then `/deal admin resend` sends what failed."))
