"""Keep tokens and long request values out of logs: a filter on every record the root logger handles."""

from __future__ import annotations

import logging
import re

TOKEN = re.compile(r"xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+")
LONG_RUN = 200  # a run of this many non-space characters is clipped (a forged signature, a pasted blob)
MAX_MESSAGE = 4000  # characters of one log message kept
_LONG = re.compile(rf"\S{{{LONG_RUN},}}")
_KEEP = 40


def redact(text: str) -> str:
    """``text`` with anything shaped like a Slack token replaced."""
    return TOKEN.sub("xox…[redacted]", text)


def clip(text: str) -> str:
    """``text`` with every run of ``LONG_RUN`` or more non-space characters cut to its start (and its
    length), and at most ``MAX_MESSAGE`` characters overall."""
    text = _LONG.sub(lambda m: f"{m.group()[:_KEEP]}…[{len(m.group())} chars]", text)
    if len(text) > MAX_MESSAGE:
        text = f"{text[:MAX_MESSAGE]}…[{len(text)} chars]"
    return text


_BODY = re.compile(r"(Invalid request signature detected.*?), body: .*", re.DOTALL)


class Redact(logging.Filter):
    """Tokens out of every record, long values clipped; request bodies out of Bolt's bad-signature notes."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record``'s message in place when it held a token, a long value or a request body; always
        True (no record is dropped)."""
        message = record.getMessage()
        clean = clip(_BODY.sub(r"\1, body not logged)", redact(message)))
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install_redaction() -> None:
    """Redact tokens, clip long values (and drop bad-signature bodies) in every record the root logger's
    handlers handle."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, Redact) for f in handler.filters):
            handler.addFilter(Redact())
