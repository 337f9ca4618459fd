"""The redacting filter works on the formatted message of every record; a throttled log says
each recurring failure once per interval, with an honest count of what it left out."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from bot.config import load_config
from bot.logs import REDACTED, JsonFormatter, RedactingFilter, ThrottledLog, setup_logging
from bot.shards import CURRENT_SHARD, ShardFilter

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


# -- LOG_FORMAT=json ---------------------------------------------------------------------------

JSON_KEYS = {"time", "level", "logger", "message", "shard"}


def capture_json(secrets: list[str]) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(secrets))
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"test.json.{id(stream)}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    entries = []
    for line in stream.getvalue().splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict) and set(entry) == JSON_KEYS, line
        entries.append(entry)
    return entries


def test_json_lines_carry_time_level_logger_message_and_shard() -> None:
    logger, stream = capture_json([TOKEN])
    logger.info("Ready as %s", "nekocord#0001")
    logger.warning("Shard is slow", extra={"shard": 3})
    first, second = json_lines(stream)
    assert first["level"] == "INFO" and second["level"] == "WARNING"
    assert first["logger"] == logger.name
    assert first["message"] == "Ready as nekocord#0001"
    assert first["shard"] is None and second["shard"] == 3
    assert isinstance(first["time"], str)
    when = datetime.fromisoformat(first["time"])
    assert when.utcoffset() == timedelta(0)
    assert abs(datetime.now(when.tzinfo) - when) < timedelta(minutes=1)


def test_json_multiline_messages_and_tracebacks_stay_one_line() -> None:
    logger, stream = capture_json([TOKEN])
    logger.info("first line\nsecond line\u2028third")
    try:
        raise RuntimeError(f"failed at /webhooks/1/{ITOKEN} with {TOKEN}")
    except RuntimeError:
        logger.exception("boom\nagain")
    logger.info("stack", stack_info=True)
    assert len(stream.getvalue().splitlines()) == 3
    multiline, failure, stack = json_lines(stream)
    assert multiline["message"] == "first line\nsecond line\u2028third"
    assert isinstance(failure["message"], str)
    assert failure["message"].startswith("boom\nagain\nTraceback (most recent call last):")
    assert "RuntimeError: failed at /webhooks/1/" + REDACTED in failure["message"]
    assert isinstance(stack["message"], str) and "Stack (most recent call last)" in stack["message"]
    assert TOKEN not in stream.getvalue() and ITOKEN not in stream.getvalue()


def test_json_redacts_the_token_and_url_credentials() -> None:
    config = load_config(
        {
            "DISCORD_TOKEN": TOKEN,
            "NEKOS_API_BASE": "http://neko:p%40ss-word@proxy.example:8080/api/v2",
            "LOG_FORMAT": "json",
        },
        dotenv_path=None,
    )
    logger, stream = capture_json(config.secrets())
    logger.debug("token %s", config.discord_token)
    logger.debug("GET %s/hug", config.nekos_api_base)
    logger.debug("headers %s", {"Authorization": "Basic bmVrbzpwQHNzLXdvcmQ="})
    logger.debug("event %s", {"d": {"token": ITOKEN}})
    out = stream.getvalue()
    for secret in (TOKEN, ITOKEN, "p%40ss-word", "p@ss-word", "bmVrbzpwQHNzLXdvcmQ="):
        assert secret not in out, out
    assert all(REDACTED in str(entry["message"]) for entry in json_lines(stream))


@pytest.fixture
def root_logging() -> Iterator[logging.Logger]:
    """The root logger as it was, restored after `setup_logging` rewired it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    filters = {handler: handler.filters[:] for handler in handlers}
    yield root
    root.handlers, root.level = handlers, level
    for handler, kept in filters.items():
        handler.filters = kept


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_setup_logging_chooses_the_format_and_keeps_redacting(
    root_logging: logging.Logger, fmt: str
) -> None:
    before = root_logging.handlers[:]
    setup_logging("INFO", secrets=[TOKEN], fmt=fmt)
    (handler,) = [h for h in root_logging.handlers if h not in before]
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    handler.setStream(stream)
    logging.getLogger("test.setup").info("token %s", TOKEN)
    out = stream.getvalue()
    assert TOKEN not in out and REDACTED in out
    if fmt == "json":
        (entry,) = json_lines(stream)
        assert entry["logger"] == "test.setup" and entry["message"] == f"token {REDACTED}"
        assert entry["level"] == "INFO"
    else:
        assert "INFO" in out and "test.setup" in out
        with pytest.raises(json.JSONDecodeError):
            json.loads(out)


# -- the shard of a line -------------------------------------------------------------------------


def capture_shards(
    *, prefix: bool, json_format: bool = False
) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ShardFilter(prefix=prefix))
    handler.addFilter(RedactingFilter([TOKEN]))
    if json_format:
        handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("discord.gateway")  # discord.py's own lines name the shard
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


@pytest.fixture
def restore_discord_logger() -> Iterator[None]:
    logger = logging.getLogger("discord.gateway")
    saved = logger.handlers, logger.propagate, logger.level
    yield
    logger.handlers, logger.propagate, logger.level = saved


async def test_lines_carry_the_shard_of_their_task(restore_discord_logger: None) -> None:
    logger, stream = capture_shards(prefix=False, json_format=True)

    async def on_shard(shard: int) -> None:
        CURRENT_SHARD.set(shard)
        logger.info("handling an interaction")

    await asyncio.gather(on_shard(1), on_shard(2))  # each task its own context
    logger.info("Shard ID %s has connected to Gateway (Session ID: %s).", 3, "abc")
    logger.info("Attempting a reconnect for shard ID %s in %.2fs", 4, 1.0)
    logger.info("Got %s for shard ID %s", "x", 5)  # not the first argument: not trusted
    logger.info("Shard ID %s has connected to Gateway", None)  # an unsharded client
    logger.info("not about a shard")
    assert [e["shard"] for e in json_lines(stream)] == [1, 2, 3, 4, None, None, None]
    assert CURRENT_SHARD.get() is None


def test_text_lines_start_with_the_shard(restore_discord_logger: None) -> None:
    logger, stream = capture_shards(prefix=True)
    token = CURRENT_SHARD.set(7)
    try:
        logger.info("token %s", TOKEN)
        logger.info("explicit", extra={"shard": 2})
    finally:
        CURRENT_SHARD.reset(token)
    logger.info("%d%% about nothing", 100)
    assert stream.getvalue().splitlines() == [
        f"[shard 7] token {REDACTED}",
        "[shard 2] explicit",
        "100% about nothing",
    ]
