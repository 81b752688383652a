"""Making user text safe to post, and keeping it within Slack's limits.

Two rules. At entry (``entry``: a slash command's text, a thread reply, the join form, a display name),
before anything reaches the ledger: control characters (C0, DEL, C1) and the bidirectional embedding,
override and isolate characters (U+202A-U+202E, U+2066-U+2069) are removed; where lines are allowed
CR LF, CR, U+2028 and U+2029 become a line feed and a tab a space; elsewhere every line break and tab
is a space.
At posting (``escape``, ``safe``, ``inline``): the same characters are removed again (text from agents
and catalogs never went through ``entry``; newlines are kept), ``&<>`` escaped, broadcasts defused; and
``inline`` also swaps mrkdwn's markers (``* _ ~ ` ``) for look-alikes in text shown inside formatting
(a title in bold, an id in code), so a title like ``*bold*`` cannot end the bold around it.
"""

from __future__ import annotations

import re

TEXT_LIMIT = 3000
CUT_MARKER = " …[cut]"
_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_UNSEEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_BREAKS = str.maketrans({"\r": "\n", "\u2028": "\n", "\u2029": "\n", "\t": " "})
_MARKERS = str.maketrans({"*": "\u2217", "_": "\uff3f", "~": "\u223c", "`": "\u02cb"})


def entry(text: str, lines: bool = True) -> str:
    """A person's text as it may enter the ledger: no control or bidi-override characters; line breaks
    kept (as line feeds) only where ``lines`` are allowed, tabs as spaces."""
    text = text.replace("\r\n", "\n").translate(_BREAKS)
    if not lines:
        text = text.replace("\n", " ")
    return _UNSEEN.sub("", text)


def visible(text: str) -> str:
    """``text`` without control characters (newlines and tabs are kept) and bidi overrides/isolates."""
    return _UNSEEN.sub("", text)


def escape(text: str) -> str:
    """Escape ``&``, ``<``, ``>`` (so no ``<!channel>``, ``<@U1>`` or link can be
    injected), defuse bare ``@channel``/``@here``/``@everyone``, drop control and bidi characters."""
    text = visible(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
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


def unmark(text: str) -> str:
    """``text`` with mrkdwn's markers (``* _ ~`` and the backtick) swapped for look-alikes."""
    return text.translate(_MARKERS)


def inline(text: str, limit: int = TEXT_LIMIT) -> str:
    """``safe``, with mrkdwn's markers swapped for look-alikes: for text shown inside ``*bold*``,
    ``_italics_`` or `` `code` ``."""
    return safe(unmark(text), limit)
