"""Secrets out of the logs: API tokens are redacted from every log line of the server (the access log
records request paths, and a token sent in a URL is refused but would otherwise be written in full)."""

from __future__ import annotations

import logging
import re

from edge_service.auth import TOKEN_PREFIX

TOKEN_PARAMETERS = ("token", "access_token", "api_key", "apikey")
REDACTED = "[REDACTED]"
_PARAMETER = re.compile(rf"(?i)([?&;](?:{'|'.join(TOKEN_PARAMETERS)})=)[^&;#\s\"]*")
_TOKEN = re.compile(rf"{re.escape(TOKEN_PREFIX)}[A-Za-z0-9_\-%]+")
LOGGERS = ("uvicorn.access", "uvicorn.error", "edge_service")


def redact(text: str) -> str:
    """``text`` with the values of token parameters and anything shaped like a token replaced."""
    return _TOKEN.sub(TOKEN_PREFIX + REDACTED, _PARAMETER.sub(rf"\1{REDACTED}", text))


class RedactTokens(logging.Filter):
    """Rewrites a record's message and arguments (keeping their number: uvicorn's access formatter needs it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install() -> None:
    """Attach the filter to the server's loggers (once; call after uvicorn has configured logging)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
