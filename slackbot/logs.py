"""Keep tokens out of logs: a filter that redacts anything shaped like a Slack token."""

from __future__ import annotations

import logging
import re

TOKEN = re.compile(r"xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+")


def redact(text: str) -> str:
    return TOKEN.sub("xox…[redacted]", text)


_BODY = re.compile(r"(Invalid request signature detected.*?), body: .*", re.DOTALL)


class Redact(logging.Filter):
    """Tokens out of every record; request bodies out of Bolt's bad-signature notes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = _BODY.sub(r"\1, body not logged)", redact(message))
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install_redaction() -> None:
    """Redact tokens (and bad-signature bodies) in every record handled by the root logger's handlers."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, Redact) for f in handler.filters):
            handler.addFilter(Redact())
