"""Files written whole or not at all: a kill or a full disk never leaves half of one behind."""

from __future__ import annotations

from pathlib import Path


def write_whole(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through ``path.partial`` and one rename; the partial file is removed if
    writing fails, and the exception (e.g. ``OSError`` for a full disk) is raised again."""
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
