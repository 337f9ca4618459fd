"""Localized command names and descriptions, from the wording tables (`bot.wording`).

discord.py asks the translator for every name and description of every command, option and
choice, for every Discord locale, when it builds the payload it registers. We answer for the
languages that have a table and leave the rest (and English) to the default strings. Keys are
derived from where a string sits: a fixed command's description is `command_<name>`, its
option's `command_<name>_<option>`; a category command is looked up by its category.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where

from bot import wording
from bot.tree import CATEGORY, KIND

# `extras` keys a command may carry (besides bot.tree's CATEGORY and KIND): the message key of
# a context menu's name.
MENU = "menu"
# Options of generated commands share descriptions: "option_<name>" (user2…user5 alike).
_MORE_USERS = {"user2", "user3", "user4", "user5"}


class Translator(app_commands.Translator):
    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        language = locale.value
        if language not in wording.available_locales():
            return None
        if key := string.extras.get("key"):  # choices carry their message key
            return wording.message(key, language)
        data: Any = context.data
        where = context.location
        if where in (Where.command_name, Where.group_name):
            return self._command_name(data, string.message, language)
        if where in (Where.command_description, Where.group_description):
            return self._command_description(data, language)
        if where is Where.parameter_name:
            return wording.fixed_name(data.name, language)
        if where is Where.parameter_description:
            return self._option_description(data, language)
        return None

    @staticmethod
    def _command_name(command: Any, name: str, language: str) -> str | None:
        extras = getattr(command, "extras", {})
        if menu := extras.get(MENU):
            return wording.message(menu, language)
        if category := extras.get(CATEGORY):
            if isinstance(command, app_commands.ContextMenu):
                noun = wording.noun(category, 1, language)
                return wording.message("menu_action", language, action=noun[:1].upper() + noun[1:])
            return wording.category_name(category, language)
        return wording.fixed_name(name, language)

    @staticmethod
    def _command_description(command: Any, language: str) -> str | None:
        extras = getattr(command, "extras", {})
        if category := extras.get(CATEGORY):
            return wording.description(category, extras.get(KIND, "gif"), language)
        key = "command_" + command.qualified_name.replace(" ", "_")
        return wording.message(key, language) if wording.has_message(key) else None

    @staticmethod
    def _option_description(parameter: app_commands.Parameter, language: str) -> str | None:
        command = parameter.command
        key = f"command_{command.qualified_name.replace(' ', '_')}_{parameter.name}"
        if not wording.has_message(key):
            key = (
                "option_more_users" if parameter.name in _MORE_USERS else f"option_{parameter.name}"
            )
        return wording.message(key, language) if wording.has_message(key) else None
