"""The latest picture of the run, handed from the clock's thread to every open page."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Hub:
    """Holds the newest snapshot (a JSON string) and tells whoever waits or listens that it changed.

    A thread waits with ``wait``; an event loop ``subscribe``s a listener instead (the page's server does).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._snapshot = "{}"
        self._version = 0
        self._listeners: list[Callable[[], None]] = []
        self.closed = False

    def publish(self, snapshot: str) -> None:
        """Make ``snapshot`` the newest; wake the waiting threads and call the listeners."""
        with self._cond:
            self._snapshot = snapshot
            self._version += 1
            self._cond.notify_all()
            listeners = tuple(self._listeners)
        for listener in listeners:
            listener()

    def latest(self) -> tuple[int, str]:
        """The newest snapshot and its version (0 before the first publish, whose snapshot is ``{}``)."""
        with self._cond:
            return self._version, self._snapshot

    def wait(self, after: int, timeout: float) -> tuple[int, str] | None:
        """The snapshot newer than version ``after``, or None on timeout or close."""
        with self._cond:
            self._cond.wait_for(lambda: self._version > after or self.closed, timeout)
            if self.closed or self._version <= after:
                return None
            return self._version, self._snapshot

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` after every publish and on close, in the thread that did it; returns the call
        that unsubscribes. A listener only hands the news on (e.g. ``loop.call_soon_threadsafe``): it holds up
        the publisher."""
        with self._cond:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._cond:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def close(self) -> None:
        """No more snapshots: every waiter returns None and every listener is called once more."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()
            listeners = tuple(self._listeners)
        for listener in listeners:
            listener()
