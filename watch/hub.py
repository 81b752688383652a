"""The latest picture of the run, handed from the clock's thread to every open page."""

from __future__ import annotations

import threading


class Hub:
    """Holds the newest snapshot (a JSON string) and wakes the page streams waiting for it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._snapshot = "{}"
        self._version = 0
        self.closed = False

    def publish(self, snapshot: str) -> None:
        with self._cond:
            self._snapshot = snapshot
            self._version += 1
            self._cond.notify_all()

    def latest(self) -> tuple[int, str]:
        with self._cond:
            return self._version, self._snapshot

    def wait(self, after: int, timeout: float) -> tuple[int, str] | None:
        """The snapshot newer than version ``after``, or None on timeout or close."""
        with self._cond:
            self._cond.wait_for(lambda: self._version > after or self.closed, timeout)
            if self.closed or self._version <= after:
                return None
            return self._version, self._snapshot

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
