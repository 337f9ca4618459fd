"""The door every interaction passes: the command tree, and the checks buttons share with it.

Like Red-DiscordBot's `RedTree`, the tree owns what is common to every command: dropping a
gateway replay, refusing malformed options, refusing new work while the bot stops, the server's
rules and the cooldowns (before anything that costs), and the one error handler. It also knows
which interactions are still being answered, so a clean shutdown can let them finish.
Persistent buttons (`bot.buttons`) pass the same gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import discord
from discord import app_commands

from bot import event_guard, render, responding, validation, wording
from bot.cooldown import DEFAULT, Rate
from bot.nekos import Kind, UnknownCategory
from bot.store import StoreError

if TYPE_CHECKING:
    from bot.app import NekoBot

log = logging.getLogger(__name__)


def _option(interaction: discord.Interaction[Any], name: str) -> Any:
    """A top-level option's raw value (already checked against the declaration)."""
    data = cast(dict[str, Any], interaction.data or {})
    for option in data.get("options") or []:
        if isinstance(option, dict) and option.get("name") == name:
            return option.get("value")
    return None


def _searched_kind(interaction: discord.Interaction[Any], extras: dict[Any, Any]) -> str | None:
    """What /search looks for: its `type` option (GIFs when left out)."""
    return _SEARCH_KINDS.get(_option(interaction, "type") or 2) if extras.get(SEARCH) else None


def _kind(value: Any) -> Kind | None:
    return Kind(value) if value in ("gif", "image") else None


def _rate(count: int, seconds: int) -> Rate | None:
    return Rate(count, float(seconds)) if count > 0 else None


def _in_channels(interaction: discord.Interaction[Any], channels: Sequence[int]) -> bool:
    """In one of `channels`, or in a thread whose parent is."""
    channel = interaction.channel
    parent = getattr(channel, "parent_id", None)
    return interaction.channel_id in channels or (parent is not None and parent in channels)


# Keys of a command's `extras`: it fetches from nekos.best (cooldowns apply), it is /search, it
# answers in public (the server's channel rule applies), its category and kind.
FETCHES = "fetches"
SEARCH = "search"
PUBLIC = "public"
CATEGORY = "category"
KIND = "kind"
_SEARCH_KINDS = {1: "image", 2: "gif"}
# Where `responding.send_error` leaves an interaction's failure (in `Interaction.extras`).
FAILURE = responding.FAILURE
# Interaction ids remembered to drop gateway redeliveries (a replay comes within minutes).
SEEN_INTERACTIONS = 10_000
# How long the replay check may hold an interaction before anything is sent: it runs before the
# first response, so a database that hangs (a cut link) must not spend Discord's 3 s.
REPLAY_CHECK_SECONDS = 0.8


class NekoTree(app_commands.CommandTree["NekoBot"]):
    def __init__(self, client: NekoBot, **options: Any) -> None:
        super().__init__(client, **options)
        self.accepting = True
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._working: set[asyncio.Task[Any]] = set()
        self._checks: set[asyncio.Future[bool]] = set()  # replay checks (kept from the GC)
        # Told of every command and button press when its task ends: its name, the error it was
        # answered with (None: success) and the seconds it took (set by `bot.metrics`).
        self.on_finished: Callable[[str, BaseException | None, float], None] | None = None

    # -- the gate ----------------------------------------------------------------------------

    async def first_delivery(self, interaction: discord.Interaction[Any]) -> bool:
        """False for an interaction id handled before: a gateway replay, already answered, by
        this process (remembered here) or by another one sharing the database (the store's
        marker, checked before anything is sent, so a replay changes no message)."""
        if interaction.id in self._seen:
            log.info("Ignored a redelivered interaction %s", interaction.id)
            return False
        self._seen[interaction.id] = None
        if len(self._seen) > SEEN_INTERACTIONS:
            self._seen.popitem(last=False)
        if interaction.type is discord.InteractionType.autocomplete:
            return True  # suggestions change nothing: not worth a database trip per keystroke
        # Answering a rare replay twice beats answering nothing while the database is down.
        # A check past its time goes on in the background (cancelling a query mid-flight would
        # cost more than letting the store's own timeout end it) and is not waited for.
        check = asyncio.ensure_future(self.client.store.first_delivery(interaction.id))
        self._checks.add(check)
        check.add_done_callback(self._replay_check_done)
        done, _ = await asyncio.wait({check}, timeout=REPLAY_CHECK_SECONDS)
        if not done:
            return True
        try:
            first = check.result()
        except StoreError:
            return True  # logged when it ended
        if not first:
            log.info(
                "Ignored an interaction %s already answered by another process", interaction.id
            )
        return first

    def _replay_check_done(self, check: asyncio.Future[bool]) -> None:
        self._checks.discard(check)
        if check.cancelled() or (exc := check.exception()) is None:
            return
        if isinstance(exc, StoreError):
            self.client.store_errors.error("read", "Could not check for a replay: %s", exc)
        else:  # a bug: the caller re-raises it when it waited, but not after its time
            log.error("The replay check failed", exc_info=exc)

    def observe(self, interaction: discord.Interaction[Any], name: str) -> None:
        """Report `interaction` to `on_finished` when its task ends (discord.py runs each
        command and each button press, error answer included, in a task of its own)."""
        task = asyncio.current_task()
        if self.on_finished is None or task is None:
            return
        finished = self.on_finished
        started = asyncio.get_running_loop().time()

        def done(ended: asyncio.Task[Any]) -> None:
            seconds = asyncio.get_running_loop().time() - started
            failure = interaction.extras.get(FAILURE)
            if failure is None and ended.cancelled():  # cut short (the bot stopping): unanswered
                failure = asyncio.CancelledError()
            finished(name, failure, seconds)

        task.add_done_callback(done)

    def admit(self, interaction: discord.Interaction[Any]) -> bool:
        """Count the interaction as being answered until its task ends (discord.py runs each
        command and each button press in a task of its own). False while stopping."""
        if not self.accepting:
            return False
        task = asyncio.current_task()
        if task is not None:
            self._working.add(task)
            task.add_done_callback(self._working.discard)
        return True

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        if not await self.first_delivery(interaction):
            return False
        if interaction.type is discord.InteractionType.autocomplete:
            if validation.autocomplete_ok(interaction):
                return True
            # A forged autocomplete (an option that has none, odd values): no suggestions.
            with contextlib.suppress(discord.HTTPException):
                await interaction.response.autocomplete([])
            return False
        command = interaction.command
        self.observe(interaction, command.qualified_name if command is not None else "unknown")
        if (problem := validation.check_options(interaction)) is not None:
            raise problem
        if not self.admit(interaction):
            raise responding.UserError("error_restarting")
        extras = command.extras if command is not None else {}
        if extras.get(PUBLIC) or extras.get(FETCHES):
            await self.enforce(
                interaction,
                category=extras.get(CATEGORY) or _option(interaction, "category"),
                kind=_kind(extras.get(KIND) or _searched_kind(interaction, extras)),
                public=bool(extras.get(PUBLIC)),
                fetches=bool(extras.get(FETCHES)),
                search=bool(extras.get(SEARCH)),
            )
        return True

    async def enforce(
        self,
        interaction: discord.Interaction[Any],
        *,
        category: str | None,
        kind: Kind | None,
        public: bool,
        fetches: bool,
        search: bool = False,
    ) -> None:
        """The server's rules, before anything that costs: where the bot answers in public,
        what is disabled, and the cooldowns (a refused attempt uses no slot)."""
        settings = await self.client.settings(interaction.guild_id)
        if public and settings.channels and not _in_channels(interaction, settings.channels):
            channels = wording.NameList(tuple(f"<#{c}>" for c in settings.channels))
            raise responding.UserError("error_wrong_channel", channels=channels)
        if category is not None:
            category = category.strip().lower()  # as the cogs read the option
            known = self.client.catalog.get(category)
            kind = kind or (known.kind if known is not None else None)
            if category in settings.disabled:
                name = render.safe_name(category[:64])
                raise responding.UserError("error_category_disabled", category=name)
        if kind is not None and kind.value in settings.disabled:
            raise responding.UserError("error_kind_disabled", kind=wording.Phrase(f"kind_{kind}"))
        if not fetches:
            return
        server = DEFAULT if settings.cooldown is None else _rate(*settings.cooldown)
        user_id = interaction.user.id
        cooldowns = self.client.cooldowns
        if wait := cooldowns.try_use(interaction.guild_id, user_id, search=search, server=server):
            raise responding.UserError("error_cooldown", seconds=math.ceil(wait))

    async def drain(self, grace: float) -> int:
        """Stop admitting interactions and wait up to `grace` s for those being answered.
        Returns how many are still running."""
        self.accepting = False
        deadline = asyncio.get_running_loop().time() + grace
        # Twice: an interaction received just before the flag flipped may not have reached the
        # gate yet; a short pause lets it start (or be told "restarting") first.
        for pause in (0.0, 0.1):
            await asyncio.sleep(pause)
            left = deadline - asyncio.get_running_loop().time()
            if self._working and left > 0:
                await asyncio.wait(set(self._working), timeout=left)
        return len(self._working)

    # -- the one error path --------------------------------------------------------------------

    async def _call(self, interaction: discord.Interaction[Any]) -> None:
        """discord.py's dispatch of a command; a payload it cannot read is answered instead of
        failing its task unanswered (`bot.event_guard`)."""
        try:
            await super()._call(interaction)
        except app_commands.AppCommandError:
            raise  # discord.py hands these to on_error
        except Exception as exc:
            await event_guard.refuse_unreadable(self, interaction, exc)

    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError, /
    ) -> None:
        await self.report(interaction, error)

    async def report(self, interaction: discord.Interaction[Any], error: BaseException) -> None:
        """Every failure of a command or button ends here: logged as it deserves and answered
        ephemerally. Never raises."""
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        if isinstance(original, StoreError):
            self.client.store_errors.error("store", "Storage failed: %s", original)
        if isinstance(error, app_commands.CommandNotFound) and self.client.catalog.is_gone(
            error.name
        ):
            error = UnknownCategory(error.name)  # Discord still shows a command nekos.best dropped
        try:
            await responding.send_error(interaction, error)
        except Exception:
            log.exception("Could not report an error for interaction %s", interaction.id)
