"""The append-only event store: SQLite in the run folder.

Every event gets a sequence number and is written inside a transaction; a
market's state is rebuilt by replaying its events. ``python -m market.ledger
RUN_DIR`` prints the events as JSON lines, the export that "byte-identical"
is checked on.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Sequence
from itertools import count
from pathlib import Path
from typing import NamedTuple

from market.events import Event, event_json, parse_event, parse_events
from market.state import MarketState

LEDGER_FILE = "ledger.sqlite"
READ_BACK = 100
"""Events read back per call: a batch of thousands (a market of thousands of traders) parsed as one
JSON array took about twice as long per event as in slices of a hundred."""

# No index on market: every event's insert would update it too (about 3% of a week's instructions), and
# reading one market is rare (a resume, ``python -m market.ledger RUN MARKET``) and a scan of the table,
# while every other read takes the events in order or after a sequence number (the primary key).
# A ledger made before keeps its index; nothing needs it.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq    INTEGER PRIMARY KEY,
    market TEXT    NOT NULL,
    at     INTEGER NOT NULL,
    type   TEXT    NOT NULL,
    body   TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS run (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class LedgerError(Exception):
    """The ledger is missing, unreadable or not a ledger."""


class Record(NamedTuple):
    """One stored event: its sequence number (from 1, over every market), its market and the event."""

    seq: int
    market: str
    event: Event


class Ledger:
    """An append-only log of events for every market of one run."""

    def __init__(self, path: Path | str, *, create: bool = False) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            self.path = self.path / LEDGER_FILE
        if not create and not self.path.is_file():
            raise LedgerError(f"{self.path}: no ledger here (is this a run folder?)")
        try:
            if create and not self.path.exists():
                _create(self.path)
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("SELECT 1 FROM events LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{self.path}: not a readable ledger ({exc})") from exc
        self._seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database (what was appended is already committed)."""
        self._db.close()

    @property
    def last_seq(self) -> int:
        """The sequence number of the last event stored (0 for an empty ledger)."""
        return self._seq

    def append(self, market: str, events: Sequence[Event]) -> None:
        """Append ``events`` of ``market`` in one transaction."""
        self.append_many([(market, e) for e in events])

    def append_many(self, entries: Iterable[tuple[str, Event]]) -> None:
        """Append events of several markets in one transaction.

        Each event must read back as itself before anything is written: one that would not (an
        integer too long to parse, a value its schema refuses) raises ``LedgerError`` naming it,
        and none of the batch is written; what the ledger already holds is untouched. The batch
        is read back a slice at a time (a JSON array of up to ``READ_BACK`` events per call), and
        one by one only to name a culprit.
        """
        entries = list(entries)
        if not entries:
            return
        first = self._seq + 1
        events = [event for _, event in entries]
        try:
            bodies = [event_json(event) for event in events]
            read = [event for start in range(0, len(bodies), READ_BACK)
                    for event in parse_events(f"[{','.join(bodies[start:start + READ_BACK])}]")]
            reads_back = read == events
        except (ValueError, OverflowError):  # msgspec's and pydantic's errors are ValueErrors
            reads_back = False
        if not reads_back:  # find the event to name, one by one
            for seq, (market, event) in enumerate(entries, first):
                _readable_json(event, seq, market)
            raise LedgerError(f"events {first}-{first + len(entries) - 1} would not read back from the ledger "
                              "as a batch, so none of them was written")
        rows = [(seq, market, event.at, event.type, body)
                for seq, (market, event), body in zip(count(first), entries, bodies, strict=False)]
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", rows)
        self._seq += len(rows)

    def records(self, market: str | None = None, after: int = 0) -> Iterator[Record]:
        """The stored events after sequence number ``after``, in order (of ``market`` only, when given)."""
        for seq, mkt, body in self._rows(market, after):
            yield Record(seq, mkt, parse_event(body))

    def export_lines(self, market: str | None = None) -> Iterator[str]:
        """Canonical JSON lines: the stored event text, byte for byte."""
        for seq, mkt, body in self._rows(market, 0):
            yield f'{{"seq":{seq},"market":{json.dumps(mkt)},"event":{body}}}'

    def markets(self) -> list[str]:
        """The names of the markets that have events, sorted."""
        rows = self._db.execute("SELECT DISTINCT market FROM events ORDER BY market")
        return [r[0] for r in rows]

    def replay(self, market: str) -> MarketState:
        """``market``'s state rebuilt from its events (the ledger is the truth; nothing else is stored)."""
        return MarketState.replay(r.event for r in self.records(market))

    def set_status(self, key: str, value: str) -> None:
        """Store a run-level mark (e.g. an after-run step done), replacing an earlier value of ``key``."""
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO run VALUES (?, ?)", (key, value))

    def status(self, key: str) -> str | None:
        """The run-level mark stored under ``key``, or None."""
        row = self._db.execute("SELECT value FROM run WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _rows(self, market: str | None, after: int) -> Iterator[tuple[int, str, str]]:
        if market is None:
            sql, args = "SELECT seq, market, body FROM events WHERE seq > ? ORDER BY seq", (after,)
        else:
            sql = "SELECT seq, market, body FROM events WHERE market = ? AND seq > ? ORDER BY seq"
            args = (market, after)  # type: ignore[assignment]
        try:
            yield from self._db.execute(sql, args)
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{self.path}: cannot read events ({exc})") from exc


def _readable_json(event: Event, seq: int, market: str) -> str:
    """``event``'s canonical JSON, checked to parse back to ``event``; else ``LedgerError`` naming it."""
    try:
        body = event_json(event)
        problem = "" if parse_event(body) == event else "it reads back as a different event"
    except (ValueError, OverflowError) as exc:  # msgspec's and pydantic's errors are ValueErrors
        problem = " ".join(str(exc).split())[:300]
    if problem:
        raise LedgerError(
            f"event {seq} of market {market} ({event.type} at {event.at}s) would not read back from the "
            f"ledger, so none of its batch was written: {problem}"
        )
    return body


def _create(path: Path) -> None:
    """Make an empty ledger in WAL mode beside ``path``, then move it into place in one step.

    Readers (a watcher, a test polling the run) may open the file at any moment;
    they must never meet a half-made database or race its switch to WAL.
    """
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    db = sqlite3.connect(partial, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")  # persistent: stored in the file
        db.executescript(_SCHEMA)
    finally:
        db.close()
    partial.replace(path)


def main(argv: list[str] | None = None) -> int:
    """Print a run's events as JSON lines: ``python -m market.ledger RUN_DIR [MARKET]``."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print("usage: python -m market.ledger RUN_DIR [MARKET]", file=sys.stderr)
        return 0 if args else 2
    try:
        with Ledger(args[0]) as ledger:
            market = args[1] if len(args) > 1 else None
            if market is not None and market not in ledger.markets():
                raise LedgerError(f"{ledger.path}: no market {market[:100]!r} in this ledger; its markets are "
                                  f"{', '.join(ledger.markets()) or 'none yet'}")
            out = sys.stdout
            for line in ledger.export_lines(market):
                out.write(line + "\n")
    except LedgerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into head
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
