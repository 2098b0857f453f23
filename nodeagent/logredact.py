"""A logging filter that masks secrets passed in URLs (console tickets, tokens, passwords).

uvicorn logs each request line and each WebSocket handshake with its query string; a
display ticket travels there (`/graphics?ticket=...`, browsers cannot set headers on
a WebSocket). A ticket is one-time and short-lived, but a log is kept far longer and
read by more people than the display it opens, so its value never reaches a log.
"""

from __future__ import annotations

import logging
import re

SECRET_PARAMS = re.compile(r"(?i)\b(ticket|token|access_token|password|passwd|secret)=[^&\s\"']+")
"""A query parameter whose value is secret: the name is kept, the value becomes ***."""

SERVER_LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact(text: str) -> str:
    """Return `text` with every secret query parameter's value replaced by ***."""
    return SECRET_PARAMS.sub(r"\1=***", text)


class RedactSecrets(logging.Filter):
    """Rewrite a record's message and string arguments through `redact` (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def install(loggers: tuple[str, ...] = SERVER_LOGGERS) -> None:
    """Add one RedactSecrets filter to each named logger (again: no second filter)."""
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
