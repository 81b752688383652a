"""The bot's own tables, in ``slack.sqlite`` in the run folder (never in the ledger).

It keeps the outbox (every message the bot is to send, until Slack confirmed it),
remembers what was posted (post key -> channel and message ts), channel ids,
who joined from Slack and how autonomous their agent is, pending approvals,
Slack event ids already handled, and survey answers already stored. The
market's truth stays in the ledger; this file only makes the bot restart-safe.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

STORE_FILE = "slack.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (key TEXT PRIMARY KEY, channel TEXT NOT NULL, ts TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS posts_by_ts ON posts (channel, ts);
CREATE TABLE IF NOT EXISTS channels (name TEXT PRIMARY KEY, id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS people (
    user_id TEXT NOT NULL, market TEXT NOT NULL, participant_id TEXT NOT NULL,
    autonomy TEXT NOT NULL, PRIMARY KEY (user_id, market));
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY, market TEXT NOT NULL, participant_id TEXT NOT NULL,
    offer_id TEXT NOT NULL, -- the target: an offer id, or a listing id for make_offer
    state TEXT NOT NULL, action TEXT NOT NULL DEFAULT '',
    result TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS seen_events (event_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS outbox (
    n INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, target TEXT NOT NULL, thread TEXT,
    broadcast INTEGER NOT NULL DEFAULT 0, edit TEXT, ephemeral TEXT, msg TEXT NOT NULL, at INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending', -- pending | sent | failed | dropped (outdated: never sent)
    error TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Person:
    """A Slack user who joined a market: the participant they trade as and how autonomous their agent is."""

    user_id: str
    market: str
    participant_id: str
    autonomy: str  # "autonomous" | "approve" | "manual"


@dataclass(frozen=True)
class Approval:
    """An agent's action held for its principal's Approve / Decline."""

    id: str
    market: str
    participant_id: str
    target: str  # the offer (accept, counter) or listing (make_offer) it is about
    state: str  # "pending" | "approved" | "declined"
    action: str = ""  # the held action as JSON ("" in tables from before: an accept of ``target``)
    result: str = ""  # what the approved action made: the deal or offer id, or the exchange's refusal;
    # for one declined at settlement, why (``SETTLED`` and whether the question reached the person)


@dataclass(frozen=True)
class OutboxRow:
    """One message in the outbox (``msg`` is its JSON)."""

    key: str
    target: str  # a market name or "@USERID"
    thread: str | None
    broadcast: bool
    edit: str | None  # the key of a message this one replaces (chat.update)
    msg: str
    at: int = 0
    state: str = "pending"
    error: str = ""
    ephemeral: str | None = None  # shown only to this user (chat.postEphemeral)


def _outbox_row(r: tuple[object, ...]) -> OutboxRow:
    return OutboxRow(str(r[0]), str(r[1]), r[2], bool(r[3]), r[4], str(r[5]), int(r[6]), str(r[7]),  # type: ignore[arg-type]
                     str(r[8]), r[9])  # type: ignore[arg-type]


class Store:
    """Thread-safe access to ``slack.sqlite``."""

    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        self.path = path / STORE_FILE if path.is_dir() else path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(approvals)")}
        for column in ("action", "result"):
            if column not in columns:  # a table from an older bot
                self._db.execute(f"ALTER TABLE approvals ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")

    def close(self) -> None:
        """Close the database connection; the store is unusable afterwards."""
        with self._lock:
            self._db.close()

    def _one(self, sql: str, args: tuple[object, ...]) -> tuple[object, ...] | None:
        with self._lock:
            return self._db.execute(sql, args).fetchone()

    def _write(self, sql: str, args: tuple[object, ...]) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    # posts
    def posted(self, key: str) -> tuple[str, str] | None:
        """(channel id, ts) of an already posted message, or None."""
        row = self._one("SELECT channel, ts FROM posts WHERE key = ?", (key,))
        return (str(row[0]), str(row[1])) if row else None

    def record_post(self, key: str, channel: str, ts: str) -> None:
        """Remember that post ``key`` is the message ``ts`` in ``channel`` (replacing an earlier record)."""
        self._write("INSERT OR REPLACE INTO posts VALUES (?, ?, ?)", (key, channel, ts))

    def post_key(self, channel: str, ts: str) -> str | None:
        """The key of the post at (channel, ts), or None if the bot did not post it."""
        row = self._one("SELECT key FROM posts WHERE channel = ? AND ts = ?", (channel, ts))
        return str(row[0]) if row else None

    def keys_like(self, prefix: str) -> list[str]:
        """Outbox keys equal to ``prefix`` or starting with ``prefix:``, in queue order."""
        with self._lock:
            rows = self._db.execute("SELECT key FROM outbox WHERE key = ? OR substr(key, 1, ?) = ? ORDER BY n",
                                    (prefix, len(prefix) + 1, prefix + ":")).fetchall()
        return [str(r[0]) for r in rows]

    def post_count(self) -> int:
        """How many posts are recorded as posted."""
        row = self._one("SELECT COUNT(*) FROM posts", ())
        return int(row[0]) if row else 0  # type: ignore[call-overload]

    # the outbox
    def enqueue(self, row: OutboxRow) -> bool:
        """Add a message to send; False if its key is already in the outbox (queued, sent or failed)."""
        return self._write("INSERT OR IGNORE INTO outbox (key, target, thread, broadcast, edit, ephemeral, msg, at) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (row.key, row.target, row.thread, int(row.broadcast), row.edit, row.ephemeral, row.msg,
                            row.at)) == 1

    _OUTBOX = "SELECT key, target, thread, broadcast, edit, msg, at, state, error, ephemeral FROM outbox"

    def outbox(self, *states: str) -> list[OutboxRow]:
        """Rows in the order they were queued (all, or those in one of ``states``)."""
        where = f" WHERE state IN ({', '.join('?' * len(states))})" if states else ""
        with self._lock:
            rows = self._db.execute(self._OUTBOX + where + " ORDER BY n", states).fetchall()
        return [_outbox_row(r) for r in rows]

    def outbox_row(self, key: str) -> OutboxRow | None:
        """The outbox row of ``key`` (in any state), or None if it was never queued."""
        row = self._one(self._OUTBOX + " WHERE key = ?", (key,))
        return _outbox_row(row) if row else None

    def delivered(self, key: str, channel: str, ts: str) -> None:
        """Slack confirmed ``key``: its ts is recorded and it leaves the queue, in one transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT OR REPLACE INTO posts VALUES (?, ?, ?)", (key, channel, ts))
                self._db.execute("UPDATE outbox SET state = 'sent', error = '' WHERE key = ?", (key,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def undeliverable(self, key: str, error: str) -> None:
        """Mark ``key`` as failed for good with Slack's ``error`` code (an admin's resend queues it again)."""
        self._write("UPDATE outbox SET state = 'failed', error = ? WHERE key = ?", (error, key))

    def drop_unsent(self, prefix: str) -> None:
        """Keep messages (keys as in ``keys_like``) that Slack has not taken from ever being sent, also
        after a restart or a resend: state ``dropped``."""
        self._write("UPDATE outbox SET state = 'dropped' WHERE (key = ? OR substr(key, 1, ?) = ?) "
                    "AND state IN ('pending', 'failed')", (prefix, len(prefix) + 1, prefix + ":"))

    def requeue_failed(self) -> list[str]:
        """Failed messages back to pending (an admin's resend); their keys in queue order."""
        with self._lock:
            keys = [r[0] for r in self._db.execute("SELECT key FROM outbox WHERE state = 'failed' ORDER BY n")]
            self._db.execute("UPDATE outbox SET state = 'pending', error = '' WHERE state = 'failed'")
        return keys

    # channels
    def channel(self, name: str) -> str | None:
        """The id of the channel (or DM) remembered under ``name``, or None."""
        row = self._one("SELECT id FROM channels WHERE name = ?", (name,))
        return str(row[0]) if row else None

    def record_channel(self, name: str, channel_id: str) -> None:
        """Remember ``channel_id`` under ``name`` (replacing an earlier one)."""
        self._write("INSERT OR REPLACE INTO channels VALUES (?, ?)", (name, channel_id))

    # people
    def add_person(self, person: Person) -> None:
        """Record ``person`` (replacing their earlier record in the same market)."""
        self._write("INSERT OR REPLACE INTO people VALUES (?, ?, ?, ?)",
                    (person.user_id, person.market, person.participant_id, person.autonomy))

    def people(self) -> list[Person]:
        """Everyone who joined from Slack, in every market."""
        with self._lock:
            rows = self._db.execute("SELECT user_id, market, participant_id, autonomy FROM people").fetchall()
        return [Person(*r) for r in rows]

    def person(self, user_id: str) -> Person | None:
        """Slack user ``user_id``'s record (the first found if they joined several markets), or None."""
        return next((p for p in self.people() if p.user_id == user_id), None)

    def person_by_participant(self, market: str, participant_id: str) -> Person | None:
        """The Slack user trading as ``participant_id`` in ``market``, or None (an agent with no person)."""
        return next((p for p in self.people() if p.market == market and p.participant_id == participant_id), None)

    # approvals
    _APPROVAL = "SELECT id, market, participant_id, offer_id, state, action, result FROM approvals"

    def add_approval(self, approval: Approval) -> bool:
        """Record a pending approval; False if this one exists or another is pending on the same target."""
        with self._lock:
            busy = self._db.execute(
                "SELECT 1 FROM approvals WHERE market = ? AND participant_id = ? AND offer_id = ? "
                "AND state = 'pending'", (approval.market, approval.participant_id, approval.target)).fetchone()
            if busy:
                return False
            return self._db.execute(
                "INSERT OR IGNORE INTO approvals VALUES (?, ?, ?, ?, ?, ?, ?)",
                (approval.id, approval.market, approval.participant_id, approval.target, approval.state,
                 approval.action, approval.result),
            ).rowcount == 1

    def approval(self, approval_id: str) -> Approval | None:
        """The approval ``approval_id``, or None if there is none."""
        row = self._one(self._APPROVAL + " WHERE id = ?", (approval_id,))
        return Approval(*row) if row else None  # type: ignore[arg-type]

    def approvals(self) -> list[Approval]:
        """Every approval, in the order they were asked."""
        with self._lock:
            rows = self._db.execute(self._APPROVAL + " ORDER BY rowid").fetchall()
        return [Approval(*r) for r in rows]

    def decide_approval(self, approval_id: str, state: str) -> bool:
        """Move a pending approval to ``state``; False if it was already decided (a double click)."""
        return self._write("UPDATE approvals SET state = ? WHERE id = ? AND state = 'pending'",
                           (state, approval_id)) == 1

    def resolve_approval(self, approval_id: str, state: str, result: str) -> bool:
        """Decide a pending approval without its person (``result`` says why); False if it was decided."""
        return self._write("UPDATE approvals SET state = ?, result = ? WHERE id = ? AND state = 'pending'",
                           (state, result, approval_id)) == 1

    def approval_result(self, approval_id: str, result: str) -> None:
        """Record what an approved action made (the deal or offer id, or the exchange's refusal)."""
        self._write("UPDATE approvals SET result = ? WHERE id = ?", (result, approval_id))

    # event dedupe
    def first_time(self, event_id: str) -> bool:
        """True the first time an event id is seen (Slack retries deliver it again)."""
        return self._write("INSERT OR IGNORE INTO seen_events VALUES (?)", (event_id,)) == 1

    # small settings
    def get(self, key: str) -> str | None:
        """The small setting ``key``, or None if it was never put."""
        row = self._one("SELECT value FROM kv WHERE key = ?", (key,))
        return str(row[0]) if row else None

    def put(self, key: str, value: str) -> None:
        """Set the small setting ``key`` to ``value``."""
        self._write("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))
