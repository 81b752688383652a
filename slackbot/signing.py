"""The door of HTTP mode: Slack's signature is checked before anything parses a request, and a signed
request is taken once.

Slack signs ``v0:{timestamp}:{body}`` with the app's signing secret and ``slack_sdk`` accepts a
timestamp within five minutes of now, so a captured request could be sent again inside that window.
Slack itself never repeats a signed request (slash commands and interactive payloads are not retried;
an Events API retry is a new request, handled once by ``event_id``), so a second sight of the same
``(timestamp, signature)`` is a replay: it is answered 200 and does nothing. What is remembered
expires with the window.
"""

from __future__ import annotations

import heapq
import hmac
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk.signature import SignatureVerifier

log = logging.getLogger("slackbot.signing")
WINDOW = 300  # seconds either side of now a timestamp is accepted in (slack_sdk's check)
MAX_SIGNATURE = 100  # "v0=" and 64 hex digits are 67 characters
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[\x21-\x7e]+")  # printable ASCII (hmac.compare_digest refuses anything else)


@dataclass(frozen=True)
class Refusal:
    """Why a request is not handed to Bolt: the HTTP status and a short error (never the request's text)."""

    status: int
    error: str


REPLAY = Refusal(200, "")  # a replay is answered like a success and does nothing


class Replays:
    """The ``(timestamp, signature)`` pairs seen within the window; each expires when the window passes it."""

    def __init__(self, window: int = WINDOW) -> None:
        self.window = window
        self._seen: dict[tuple[int, str], int] = {}  # pair -> times repeated
        self._expiry: list[tuple[int, str]] = []  # a heap by timestamp
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def first_time(self, timestamp: int, signature: str, now: float) -> bool:
        """True the first time a pair is seen; a repeat is logged once (on its first repeat)."""
        key = (timestamp, signature)
        with self._lock:
            while self._expiry and self._expiry[0][0] < now - self.window:
                del self._seen[heapq.heappop(self._expiry)]
            if key not in self._seen:
                self._seen[key] = 0
                heapq.heappush(self._expiry, key)
                return True
            self._seen[key] += 1
            repeats = self._seen[key]
        if repeats == 1:
            log.warning("a replayed request was dropped (timestamp %d; further repeats are dropped quietly)",
                        timestamp)
        return False


class Door:
    """Checks a raw HTTP request (headers by lower-case name, body bytes) before Bolt sees it."""

    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self.verifier = SignatureVerifier(secret)
        self.clock = clock
        self.replays = Replays()

    def check(self, headers: dict[str, list[str]], body: bytes) -> Refusal | None:
        """None when the request is signed, fresh and seen for the first time; else the refusal."""
        timestamp = (headers.get("x-slack-request-timestamp") or [""])[0]
        signature = (headers.get("x-slack-signature") or [""])[0]
        if not _TIMESTAMP.fullmatch(timestamp):
            return Refusal(401, "invalid timestamp")
        if len(signature) > MAX_SIGNATURE or not _SIGNATURE.fullmatch(signature):
            return Refusal(401, "invalid signature")
        now = self.clock()
        if abs(now - int(timestamp)) > WINDOW:
            return Refusal(401, "stale timestamp")
        expected = self.verifier.generate_signature(timestamp=timestamp, body=body) or ""
        if not hmac.compare_digest(expected, signature):
            return Refusal(401, "invalid signature")
        if not self.replays.first_time(int(timestamp), signature, now):
            return REPLAY
        return None
