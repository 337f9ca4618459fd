"""Logging setup, the filter that keeps secrets out of every record, and a throttle for errors
that recur on every command (a full disk must not write a line per interaction).

At DEBUG discord.py logs request URLs (interaction and webhook tokens sit in their paths),
request and response bodies, and whole gateway events as dicts (with a `token` field). So the
filter redacts the *formatted* message and the exception text, not only URLs.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import discord

from bot.shards import ShardFilter

REDACTED = "[redacted]"

# Tokens sit in these places: URL paths of callbacks and webhooks, `token` fields of dicts or
# JSON, and Authorization headers.
_PATTERNS = (
    re.compile(r"(/interactions/\d+/)[^/?#\s'\"]+"),
    re.compile(r"(/webhooks/\d+/)[^/?#\s'\"]+"),
    re.compile(r"""(['"]token['"]\s*:\s*['"])[^'"]+"""),
    re.compile(r"(\bBot\s+)[A-Za-z0-9_\-.]{20,}"),
)


class RedactingFilter(logging.Filter):
    """Replaces secrets in a record's final text. Attach it to handlers, so every logger's
    records pass through it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]
        self._formatter = logging.Formatter()

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
            record.exc_info = None  # the handler would otherwise format it again, unredacted
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in a message or a traceback are
    escaped by JSON): time (ISO 8601, UTC), level, logger, message, shard.

    `shard` is the record's `shard` attribute (`extra=`, or `bot.shards.ShardFilter`), else
    null. The redacting filter has already run on the handler, so the message and exception
    text it reads are redacted."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        for extra in (record.exc_text, record.stack_info):
            if extra:
                message = f"{message}\n{extra}"
        created = datetime.fromtimestamp(record.created, tz=UTC)
        entry = {
            "time": created.isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
            "shard": getattr(record, "shard", None),
        }
        # ASCII escapes keep U+2028 and the like from splitting the line for line-based readers.
        return json.dumps(entry, default=str)


def setup_logging(level: str, secrets: Iterable[str] = (), fmt: str = "text") -> RedactingFilter:
    """Log through discord.py's own setup with redaction: text (coloured when on a terminal)
    or, with `fmt="json"`, one JSON object per line."""
    formatter = JsonFormatter() if fmt == "json" else discord.utils.MISSING
    discord.utils.setup_logging(level=getattr(logging, level), formatter=formatter, root=True)
    redactor = RedactingFilter(secrets)
    # The shard first: it reads discord.py's arguments, which redaction folds into the message.
    shard = ShardFilter(prefix=fmt != "json")
    for handler in logging.getLogger().handlers:
        handler.addFilter(shard)
        handler.addFilter(redactor)
    # aiohttp's access logs are noise for a bot; our own loggers follow the chosen level.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return redactor


class ThrottledLog:
    """Logs a recurring failure at most once per `every` seconds per key (not once per command),
    then tells how many of that key's failures were left out in between."""

    def __init__(
        self,
        logger: logging.Logger,
        every: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = every
        self._clock = clock
        self._last_logged: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self.count = 0  # every failure, logged or not (for metrics)

    def error(self, key: str, message: str, *args: object) -> None:
        self._log(logging.ERROR, key, message, *args)

    def warning(self, key: str, message: str, *args: object) -> None:
        self._log(logging.WARNING, key, message, *args)

    def _log(self, level: int, key: str, message: str, *args: object) -> None:
        self.count += 1
        now = self._clock()
        last = self._last_logged.get(key)
        if last is not None and now - last < self._interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last_logged[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            self._logger.log(level, message + " (%d similar suppressed)", *args, suppressed)
        else:
            self._logger.log(level, message, *args)
