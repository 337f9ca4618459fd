"""The redacting filter works on the formatted message of every record."""

from __future__ import annotations

import io
import logging

from bot.logs import REDACTED, RedactingFilter

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
