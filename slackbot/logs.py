"""Keep tokens out of logs: a filter that redacts anything shaped like a Slack token."""

from __future__ import annotations

import logging
import re

TOKEN = re.compile(r"xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+")


def redact(text: str) -> str:
    return TOKEN.sub("xox…[redacted]", text)


class Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install_redaction() -> None:
    """Redact tokens in every record handled by the root logger's handlers."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, Redact) for f in handler.filters):
            handler.addFilter(Redact())
