"""Making user text safe to post, and keeping it within Slack's limits."""

from __future__ import annotations

import re

TEXT_LIMIT = 3000
CUT_MARKER = " …[cut]"
_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)


def escape(text: str) -> str:
    """Escape ``&``, ``<``, ``>`` (so no ``<!channel>``, ``<@U1>`` or link can be
    injected) and defuse bare ``@channel``/``@here``/``@everyone``."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub(lambda m: "@\u200b" + m.group(1), text)


def cut(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` if it fits in ``limit`` characters, else cut with a visible marker."""
    if len(text) <= limit:
        return text
    head = text[: limit - len(CUT_MARKER)]
    amp = head.rfind("&", max(0, len(head) - 6))
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]  # never leave half an escape like "&am"
    return head + CUT_MARKER


def safe(text: str, limit: int = TEXT_LIMIT) -> str:
    """Escaped and cut to fit: the form every piece of user text is posted in."""
    return cut(escape(text), limit)
