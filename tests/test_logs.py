"""The redacting filter works on the formatted message of every record; a throttled log says
each recurring failure once per interval, with an honest count of what it left out."""

from __future__ import annotations

import io
import logging

from bot.config import load_config
from bot.logs import REDACTED, RedactingFilter, ThrottledLog

TOKEN = "MTAxMDEwMTAxMDEwMTAxMDEw.GabcDE.abcdefghijklmnopqrstuvwxyz012345"
ITOKEN = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OmFiY2RlZmdoaWprbG1ub3A"


def capture() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter([TOKEN]))
    logger = logging.getLogger(f"test.redact.{id(stream)}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_token_in_args_urls_dicts_and_json() -> None:
    logger, stream = capture()
    logger.debug("token %s", TOKEN)
    logger.debug("POST https://discord.com/api/v10/interactions/123/%s/callback", ITOKEN)
    logger.debug("PATCH /webhooks/456/%s/messages/@original", ITOKEN)
    logger.debug("event %s", {"t": "INTERACTION_CREATE", "d": {"token": ITOKEN}})
    logger.debug('body {"token": "%s"}', ITOKEN)
    logger.debug("headers %s", {"Authorization": f"Bot {TOKEN}"})
    out = stream.getvalue()
    assert TOKEN not in out and ITOKEN not in out
    assert out.count(REDACTED) >= 6


def test_token_in_exception_text() -> None:
    logger, stream = capture()
    try:
        raise RuntimeError(f"failed at /webhooks/1/{ITOKEN}")
    except RuntimeError:
        logger.exception("boom")
    assert ITOKEN not in stream.getvalue()
    assert "RuntimeError" in stream.getvalue()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def throttled(every: float = 60.0) -> tuple[ThrottledLog, list[str], Clock]:
    handler = Lines()
    logger = logging.getLogger(f"test.throttle.{id(handler)}")
    logger.handlers = [handler]
    logger.propagate = False
    clock = Clock()
    return ThrottledLog(logger, every=every, clock=clock), handler.lines, clock


def test_a_recurring_error_is_logged_once_per_interval_with_the_count_left_out() -> None:
    log, lines, clock = throttled(every=60)
    log.error("write", "Could not record an action: %s", "disk full")
    for _ in range(3):
        clock.now += 10
        log.error("write", "Could not record an action: %s", "disk full")
    assert lines == ["Could not record an action: disk full"]
    clock.now += 30  # 60 s after the first line
    log.error("write", "Could not record an action: %s", "still full")
    assert lines[1:] == ["Could not record an action: still full (3 similar suppressed)"]
    clock.now += 60  # nothing was left out since
    log.error("write", "Could not record an action: %s", "disk full")
    assert lines[2:] == ["Could not record an action: disk full"]


def test_each_key_has_its_own_interval_and_count() -> None:
    log, lines, clock = throttled(every=60)
    log.error("read", "Could not read stats: %s", "a")
    log.error("write", "Could not store an opt-out: %s", "b")  # another key: said at once
    for _ in range(4):
        log.error("read", "Could not read stats: %s", "a")
    log.error("write", "Could not store an opt-out: %s", "b")
    clock.now += 60
    log.error("write", "Could not store an opt-out: %s", "b")
    log.error("read", "Could not read stats: %s", "a")
    assert lines == [
        "Could not read stats: a",
        "Could not store an opt-out: b",
        "Could not store an opt-out: b (1 similar suppressed)",
        "Could not read stats: a (4 similar suppressed)",
    ]


def test_the_interval_is_the_constructor_argument() -> None:
    log, lines, clock = throttled(every=0.5)
    log.error("k", "failed")
    clock.now += 0.25
    log.error("k", "failed")
    clock.now += 0.25
    log.error("k", "failed")
    assert lines == ["failed", "failed (1 similar suppressed)"]


def test_url_credentials_from_the_configuration_are_redacted() -> None:
    config = load_config(
        {
            "DISCORD_TOKEN": TOKEN,
            "NEKOS_API_BASE": "http://neko:p%40ss-word@proxy.example:8080/api/v2",
        },
        dotenv_path=None,
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(config.secrets()))
    logger = logging.getLogger(f"test.redact.url.{id(stream)}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.debug("GET %s/hug", config.nekos_api_base)
    logger.debug("headers %s", {"Authorization": "Basic bmVrbzpwQHNzLXdvcmQ="})
    logger.debug("auth neko:p@ss-word")
    out = stream.getvalue()
    for secret in ("p%40ss-word", "p@ss-word", "bmVrbzpwQHNzLXdvcmQ="):
        assert secret not in out, out
    assert out.count(REDACTED) == 3
