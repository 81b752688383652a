"""The cassette: every model request and its answer, appended as calls happen.

One JSON object per line. ``kind: "tier"`` lines say how a tier was run (its API,
model and prompt settings) so a replay can rebuild the same requests;
``kind: "call"`` lines hold a request (keyed by the SHA-256 of its canonical JSON),
the response as it came over the wire (or the error that ended the call), the
usage and where it was asked (market, trader, step).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import orjson


class CassetteError(ValueError):
    """A cassette that cannot be read, or a request it does not hold."""


def keyed_text(api: str, request: dict[str, Any]) -> tuple[str, int, bytes]:
    """(the request's key, the length of its canonical JSON, the request's own canonical JSON).

    The key is the SHA-256 of ``{"api": api, "request": request}`` in canonical JSON (sorted keys, no
    spaces, UTF-8). The request's bytes are also the body sent and the text spliced into its cassette
    line, so a request is encoded once.
    """
    body = canonical(request)
    blob = b'{"api":' + canonical(api) + b',"request":' + body + b"}"
    return hashlib.sha256(blob).hexdigest(), len(blob), body


def canonical(value: Any) -> bytes:
    """``value`` as canonical JSON: the bytes of ``json.dumps(value, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)``, encoded by orjson (a tenth of the time for a week-long conversation)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def entry_line(entry: dict[str, Any], request_json: bytes | None = None) -> bytes:
    """``entry`` as its cassette line; ``request_json``, the canonical JSON of ``entry["request"]``, is
    spliced in where a sorted-keys encoding puts it instead of encoding the request again."""
    if request_json is None or "request" not in entry:
        return canonical(entry)
    parts = [
        canonical({k: v for k, v in entry.items() if k < "request"})[1:-1],
        b'"request":' + request_json,
        canonical({k: v for k, v in entry.items() if k > "request"})[1:-1],
    ]
    return b"{" + b",".join(p for p in parts if p) + b"}"


class Cassette:
    """Recorded calls, read from a file and appended to it (thread-safe appends)."""

    def __init__(self, path: Path | None, source: Path | None = None) -> None:
        self.path = path
        self.calls: dict[str, dict[str, Any]] = {}
        self.tiers: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        for file in dict.fromkeys(p for p in (source, path) if p is not None):
            if file.is_file():
                self._load(file)
        self.own: set[str] = set()
        if path is not None and path.is_file():
            self.own = set(Cassette(None, source=path).calls)

    def _load(self, file: Path) -> None:
        with file.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    entry = orjson.loads(line)
                except orjson.JSONDecodeError:
                    if handle.read().strip():  # a torn last line (killed mid-write) is dropped, nothing else
                        raise CassetteError(f"{file}: line {number} is not valid JSON") from None
                    break
                if entry.get("kind") == "tier":
                    self.tiers[entry["tier"]] = entry
                elif entry.get("kind") == "call":
                    self.calls[entry["key"]] = entry

    def get(self, key: str) -> dict[str, Any] | None:
        """The recorded call entry with ``key``, or None if this cassette has none."""
        return self.calls.get(key)

    def keep(self, entry: dict[str, Any]) -> None:
        """Make sure this cassette's own file holds ``entry`` (answered from another cassette)."""
        if self.path is not None and entry["key"] not in self.own:
            self.append(entry)

    def append(self, entry: dict[str, Any], request_json: bytes | None = None) -> None:
        """Record ``entry`` now (one line, flushed), and remember it (``request_json``: see ``entry_line``).

        A call is remembered without its request: it is on file, and what answers a request again (``get``)
        is the rest. (Kept, every request of a run stayed in memory: thousands of objects a call for the
        garbage collector to go through, and megabytes an hour.)"""
        if entry.get("kind") == "call":
            self.calls[entry["key"]] = {k: v for k, v in entry.items() if k != "request"}
            self.own.add(entry["key"])
        elif entry.get("kind") == "tier":
            if self.tiers.get(entry["tier"]) == entry:
                return
            self.tiers[entry["tier"]] = entry
        if self.path is None:
            return
        line = entry_line(entry, request_json) + b"\n"
        with self._lock, self.path.open("ab") as handle:
            handle.write(line)
            handle.flush()
