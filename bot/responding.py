"""Answering interactions within Discord's window, and the error answer every failure gets.

Discord wants a first response within 3 s. `answer()` runs the work and answers directly when
it finishes quickly (so errors can still be ephemeral); otherwise it defers just in time and
edits the answer in. When a publicly deferred answer fails, the placeholder is deleted and the
error is sent ephemerally (the first follow-up would otherwise inherit the public visibility).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from typing import Any, cast

import aiohttp
import discord
from discord import app_commands

from bot import render, wording
from bot.nekos import (
    BadRequest,
    NekosError,
    NoSuchCategory,
    NotFound,
    RateLimited,
    UnknownCategory,
    WrongKind,
)
from bot.store import StoreError

log = logging.getLogger(__name__)

# Discord's window is 3 s from the interaction's creation. Answer directly when the work is done
# by this point, else defer; the margin covers the callback's own round trip.
DEFER_AT = 1.6
# How long deferred work may take before the user gets "not answering" (Discord allows 15 min,
# users don't wait that long).
WORK_BUDGET = 12.0
# Discord's JSON error codes that change what we do after a refused response.
UNKNOWN_INTERACTION = 10062  # too late: the 3 s window (or the 15 min token) has passed
ALREADY_ACKNOWLEDGED = 40060  # a retried callback whose first attempt Discord did process
INVALID_FORM_BODY = 50035  # our message broke a Discord limit: a bug


# The key of `Interaction.extras` where `send_error` leaves the error an interaction was answered
# with (the tree reports it to metrics when the interaction's task ends).
FAILURE = "nekocord.failure"


class UserError(app_commands.AppCommandError):
    """Something the user can fix or should know; shown ephemerally, never logged as a bug."""

    def __init__(self, key: str, **fields: Any) -> None:
        super().__init__(key)
        self.key = key
        self.fields = fields

    def text(self, locale: str = wording.ENGLISH) -> str:
        return wording.message(self.key, locale, **wording.resolved(self.fields, locale))


def describe(error: BaseException, locale: str = wording.ENGLISH) -> tuple[str, bool]:
    """The user-facing text for an error, and whether it is a bug worth a traceback."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, app_commands.TransformerError):
        return wording.message("error_bad_option", locale), False
    if isinstance(error, UserError):
        return error.text(locale), False
    if isinstance(error, RateLimited):
        return wording.message(
            "error_rate_limited", locale, seconds=max(1, round(error.retry_after))
        ), False
    if isinstance(error, UnknownCategory):  # nekos.best dropped it
        category = render.safe_name(error.category[:64])
        return wording.message("error_category_gone", locale, category=category), False
    if isinstance(error, NoSuchCategory):  # never was one: don't echo what the user typed
        return wording.message("error_unknown_category", locale), False
    if isinstance(error, WrongKind):
        category = render.safe_name(error.category[:64])
        return wording.message("error_wrong_kind", locale, category=category), False
    if isinstance(error, StoreError):
        return wording.message("error_store", locale), False
    if isinstance(error, NotFound):
        return wording.message("error_asset_missing", locale), False
    if isinstance(error, BadRequest):
        return wording.message("error_bad_input", locale, detail=str(error)), False
    if isinstance(error, NekosError | TimeoutError):  # Unavailable, and any other upstream error
        return wording.message("error_unavailable", locale), False
    if isinstance(error, app_commands.CommandSignatureMismatch):
        # A stale client or a forged payload (check_options catches most before this).
        return wording.message("error_command_gone", locale), False
    if isinstance(error, app_commands.CommandNotFound):
        return wording.message("error_command_gone", locale), False
    if isinstance(error, app_commands.CommandOnCooldown):
        return wording.message(
            "error_rate_limited", locale, seconds=max(1, round(error.retry_after))
        ), False
    if isinstance(error, app_commands.NoPrivateMessage):
        return wording.message("error_guild_only", locale), False
    if isinstance(error, app_commands.CheckFailure):
        return wording.message("error_not_allowed", locale), False
    return wording.message("error_internal", locale), True


def public_locale(interaction: discord.Interaction[Any]) -> str:
    """The language of a public answer: the server's when it has one, else the member's."""
    chosen = interaction.guild_locale or interaction.locale
    return wording.message_locale(chosen.value)


def private_locale(interaction: discord.Interaction[Any]) -> str:
    """The language of an ephemeral answer: the member's own."""
    return wording.message_locale(interaction.locale.value)


def custom_id(interaction: discord.Interaction[Any]) -> str:
    """The custom_id of a component interaction ("" for anything else)."""
    data = cast(dict[str, Any], interaction.data or {})
    return str(data.get("custom_id", ""))


def interaction_age(interaction: discord.Interaction[Any]) -> float:
    """Seconds since Discord created the interaction (from its snowflake)."""
    created_ms = (interaction.id >> 22) + discord.utils.DISCORD_EPOCH  # as snowflake_time reads it
    return max(0.0, time.time() - created_ms / 1000)


async def answer(
    interaction: discord.Interaction[Any],
    work: Awaitable[render.Reply],
    *,
    update: bool = False,
    defer_at: float = DEFER_AT,
    budget: float = WORK_BUDGET,
) -> None:
    """Run `work` and send its reply within Discord's window: a new message, or with `update`
    (a button press) an edit of the message the button is on. The reply's `followup`, if any, is
    sent after it. Errors raised by `work` are answered through `send_error`.

    The work runs in the caller's task (no task of its own: most answers are ready at once,
    and a task and a wait per answer cost more than the rest of this module); a timer defers
    the interaction if the work is not done by `defer_at`, and from then on it has `budget`."""
    loop = asyncio.get_running_loop()
    deferral: asyncio.Task[bool] | None = None
    wait = max(0.0, defer_at - interaction_age(interaction))
    failure: Exception | None = None
    try:
        async with asyncio.timeout(None) as limit:

            def defer() -> None:
                nonlocal deferral
                deferral = loop.create_task(_defer(interaction, update))
                limit.reschedule(loop.time() + budget)  # the budget counts from the defer

            timer = loop.call_later(wait, defer)
            try:
                reply = await work
            except Exception as exc:
                failure = exc
            finally:
                timer.cancel()
    except TimeoutError as exc:  # the budget ran out (the work's own errors are caught above)
        failure = exc
    if deferral is None:
        if failure is not None:
            await send_error(interaction, failure)
            return
        if update:
            sent = await _acknowledge(
                interaction,
                interaction.response.edit_message(**reply.edit_kwargs()),
                discord.InteractionResponseType.message_update,
            )
        else:
            sent = await _acknowledge(
                interaction,
                interaction.response.send_message(**reply.send_kwargs()),
                discord.InteractionResponseType.channel_message,
            )
        if sent:
            await _follow_up(interaction, reply)
        return

    if not await deferral:
        return
    if failure is not None:
        await send_error(interaction, failure)
        return
    try:
        if reply.ephemeral and not update:
            # A public "thinking…" cannot turn ephemeral: replace it.
            await _replace_placeholder(interaction, reply)
        else:
            await interaction.edit_original_response(**reply.edit_kwargs())
    except discord.HTTPException as exc:
        if exc.code == INVALID_FORM_BODY:
            raise
        _log_refused(interaction, exc)
        return
    await _follow_up(interaction, reply)


async def _defer(interaction: discord.Interaction[Any], update: bool) -> bool:
    """The placeholder answer when the work takes long: True when Discord has it."""
    if update:
        return await _acknowledge(
            interaction,
            interaction.response.defer(),
            discord.InteractionResponseType.deferred_message_update,
        )
    return await _acknowledge(
        interaction,
        interaction.response.defer(thinking=True),
        discord.InteractionResponseType.deferred_channel_message,
    )


async def _follow_up(interaction: discord.Interaction[Any], reply: render.Reply) -> None:
    if reply.followup is None:
        return
    try:
        await interaction.followup.send(**reply.followup.send_kwargs())
    except discord.HTTPException as exc:
        if exc.code == INVALID_FORM_BODY:
            raise
        _log_refused(interaction, exc)


async def _acknowledge(
    interaction: discord.Interaction[Any],
    callback: Awaitable[Any],
    kind: discord.InteractionResponseType,
) -> bool:
    """Send the interaction's one callback; True when Discord has it.

    discord.py retries a callback answered 5xx (after 1, 3, 5… s). When Discord had processed
    the first attempt, the retry meets 40060 "already acknowledged": the callback did land, so
    this records it (discord.py does not) and carries on instead of answering again. A callback
    past its window (10062) or otherwise refused is logged once and not tried again: another
    attempt would fail the same way, and an exception here would only become a traceback.
    """
    try:
        await callback
    except (aiohttp.ClientError, RuntimeError, TimeoutError) as exc:
        # No connection to Discord (closed while stopping, or a network failure).
        log.warning("Could not answer %s: %s", _what(interaction), exc or type(exc).__name__)
        return False
    except discord.HTTPException as exc:
        if exc.code == ALREADY_ACKNOWLEDGED:
            _mark_acknowledged(interaction, kind)
            log.info("%s: a retried answer had already reached Discord", _what(interaction))
            return True
        if exc.code == INVALID_FORM_BODY:
            raise
        _log_refused(interaction, exc)
        return False
    return True


def _mark_acknowledged(
    interaction: discord.Interaction[Any], kind: discord.InteractionResponseType
) -> None:
    """Record a response Discord has although discord.py saw it fail. discord.py has no public
    way to say so; this is the one place that touches its private state (what it sets on
    success), so `is_done()` and follow-ups behave."""
    interaction.response._response_type = kind


def _log_refused(interaction: discord.Interaction[Any], exc: discord.HTTPException) -> None:
    if isinstance(exc, discord.NotFound):
        log.warning(
            "%s expired before it could be answered (%.1f s after it was sent): %s",
            _what(interaction),
            interaction_age(interaction),
            exc,
        )
    else:
        log.warning("Could not answer %s: %s", _what(interaction), exc)


async def send_error(interaction: discord.Interaction[Any], error: BaseException) -> None:
    """Tell the user what went wrong, ephemerally, whatever state the interaction is in."""
    interaction.extras[FAILURE] = error
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(original, discord.HTTPException) and original.code != INVALID_FORM_BODY:
        # Discord refused or lost a response: explained in the log, not a bug of ours.
        _log_refused(interaction, original)
        if isinstance(original, discord.NotFound) or original.code == ALREADY_ACKNOWLEDGED:
            return  # gone or already answered: another attempt would fail the same way
        reply = render.error(wording.message("error_internal", private_locale(interaction)))
        await send_ephemeral(interaction, reply)
        return
    if _client_closed(interaction):
        # Stopping: the HTTP session is gone, so neither the error nor an answer can be sent.
        log.info("%s not answered: the bot is stopping (%s)", _what(interaction), error)
        return
    text, is_bug = describe(error, private_locale(interaction))
    if is_bug:
        log.error(
            "Unhandled error in %s",
            _what(interaction),
            exc_info=(type(error), error, error.__traceback__),
        )
    else:
        log.info("%s answered with an error: %s", _what(interaction), type(error).__name__)
    await send_ephemeral(interaction, render.error(text))


async def send_ephemeral(interaction: discord.Interaction[Any], reply: render.Reply) -> None:
    reply.ephemeral = True
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(**reply.send_kwargs())
        elif interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
            await _replace_placeholder(interaction, reply)
        else:
            await interaction.followup.send(**reply.send_kwargs())
    except discord.NotFound:
        log.warning("%s expired before it could be answered", _what(interaction))
    except discord.HTTPException as exc:
        log.warning("Could not answer %s: %s", _what(interaction), exc)
    except (aiohttp.ClientError, RuntimeError, TimeoutError) as exc:
        # The connection to Discord is gone (the bot is stopping, or the network failed):
        # nothing more can be sent for this interaction.
        log.warning("Could not answer %s: %s", _what(interaction), exc or type(exc).__name__)


async def _replace_placeholder(interaction: discord.Interaction[Any], reply: render.Reply) -> None:
    """After a public defer: delete the "thinking…" message, then follow up ephemerally."""
    with contextlib.suppress(discord.HTTPException):
        await interaction.delete_original_response()
    await interaction.followup.send(**reply.send_kwargs())


def _client_closed(interaction: discord.Interaction[Any]) -> bool:
    is_closed = getattr(interaction.client, "is_closed", None)
    return bool(is_closed is not None and is_closed())


def _what(interaction: discord.Interaction[Any]) -> str:
    if interaction.command is not None:
        return f"/{interaction.command.qualified_name}"
    if interaction.type is discord.InteractionType.component:
        return f"button {custom_id(interaction)[:12]}…"
    return f"interaction type {interaction.type}"
