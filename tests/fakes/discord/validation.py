"""The checks Discord makes on what a bot sends (docs/discord.md, "Limits"), with its answers.

Each check returns ``None`` when Discord would accept the body, else the 400 it would answer:
``50035 Invalid Form Body`` with the error tree, or ``50006`` for an empty message.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from tests.fakes.discord.payloads import IS_COMPONENTS_V2, walk_components
from tests.fakes.discord.responses import error, form_error, set_path

_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")
_TOO_LONG = "BASE_TYPE_MAX_LENGTH"


def _too_long(errors: dict[str, Any], path: str, limit: int) -> None:
    set_path(errors, path, _TOO_LONG, f"Must be {limit} or fewer in length.")


def check_message(
    body: dict[str, Any], *, create: bool, has_files: bool = False
) -> web.Response | None:
    """A message body (callback ``data``, webhook or follow-up): lengths, counts, emptiness."""
    errors: dict[str, Any] = {}
    content = body.get("content")
    if content is not None and len(str(content)) > 2000:
        _too_long(errors, "content", 2000)
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        _too_long(errors, "embeds", 10)
    total = 0

    def check(path: str, value: Any, limit: int) -> None:
        nonlocal total
        if value is None:
            return
        text = str(value)
        total += len(text)
        if len(text) > limit:
            _too_long(errors, path, limit)

    for i, embed in enumerate(embeds):
        check(f"embeds.{i}.title", embed.get("title"), 256)
        check(f"embeds.{i}.description", embed.get("description"), 4096)
        check(f"embeds.{i}.footer.text", (embed.get("footer") or {}).get("text"), 2048)
        check(f"embeds.{i}.author.name", (embed.get("author") or {}).get("name"), 256)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            _too_long(errors, f"embeds.{i}.fields", 25)
        for j, fld in enumerate(fields):
            for key, limit in (("name", 256), ("value", 1024)):
                if not str(fld.get(key) or ""):
                    set_path(
                        errors,
                        f"embeds.{i}.fields.{j}.{key}",
                        "BASE_TYPE_REQUIRED",
                        "This field is required",
                    )
                check(f"embeds.{i}.fields.{j}.{key}", fld.get(key), limit)
    if total > 6000:
        set_path(
            errors, "embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
        )
    components = body.get("components") or []
    if not int(body.get("flags") or 0) & IS_COMPONENTS_V2:
        if len(components) > 5:
            _too_long(errors, "components", 5)
        for i, row in enumerate(components):
            if len(row.get("components") or []) > 5:
                _too_long(errors, f"components.{i}.components", 5)
    for path, comp in walk_components(components):
        custom_id = comp.get("custom_id")
        if custom_id is not None and not 1 <= len(str(custom_id)) <= 100:
            set_path(
                errors, f"{path}.custom_id", "BASE_TYPE_BAD_LENGTH", "Must be 1-100 in length."
            )
        label = comp.get("label")
        if comp.get("type") == 2 and label is not None and len(str(label)) > 80:
            _too_long(errors, f"{path}.label", 80)
    if errors:
        return form_error(errors)
    if create and not (content or embeds or components or body.get("attachments") or has_files):
        return error(400, "Cannot send an empty message", 50006)
    return None


def check_choices(choices: list[dict[str, Any]]) -> web.Response | None:
    """An autocomplete answer: at most 25 choices, names 1-100 characters, values ≤ 100."""
    errors: dict[str, Any] = {}
    if len(choices) > 25:
        _too_long(errors, "data.choices", 25)
    for i, choice in enumerate(choices):
        if not 1 <= len(str(choice.get("name", ""))) <= 100:
            set_path(
                errors,
                f"data.choices.{i}.name",
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
        value = choice.get("value")
        if isinstance(value, str) and len(value) > 100:
            _too_long(errors, f"data.choices.{i}.value", 100)
    return form_error(errors) if errors else None


def check_commands(commands: list[dict[str, Any]]) -> web.Response | None:
    """A full command list (bulk overwrite): names, descriptions, options, counts, duplicates."""
    errors: dict[str, Any] = {}
    counts = {1: 0, 2: 0, 3: 0}
    seen: set[tuple[str, int]] = set()
    for i, cmd in enumerate(commands):
        ctype = int(cmd.get("type", 1))
        name = str(cmd.get("name", ""))
        counts[ctype] = counts.get(ctype, 0) + 1
        if (name, ctype) in seen:
            set_path(errors, f"{i}.name", "APPLICATION_COMMANDS_DUPLICATE_NAME", name)
        seen.add((name, ctype))
        if ctype == 1:
            _check_chat_names(errors, str(i), cmd)
            _check_options(errors, f"{i}.options", cmd.get("options") or [], 0)
        else:
            if not 1 <= len(name) <= 32:
                set_path(errors, f"{i}.name", "BASE_TYPE_BAD_LENGTH", "Must be 1-32 long.")
            check_localizations(errors, str(i), cmd, chat=False)
    for ctype, limit in ((1, 100), (2, 15), (3, 15)):
        if counts.get(ctype, 0) > limit:
            set_path(
                errors,
                "_",
                "APPLICATION_COMMANDS_TOO_MANY",
                f"Maximum number of type {ctype} application commands reached ({limit}).",
            )
    return form_error(errors) if errors else None


# The locales Discord accepts in name_localizations / description_localizations.
DISCORD_LOCALES = frozenset(
    {
        "id",
        "da",
        "de",
        "en-GB",
        "en-US",
        "es-ES",
        "es-419",
        "fr",
        "hr",
        "it",
        "lt",
        "hu",
        "nl",
        "no",
        "pl",
        "pt-BR",
        "ro",
        "fi",
        "sv-SE",
        "vi",
        "tr",
        "cs",
        "el",
        "bg",
        "ru",
        "uk",
        "hi",
        "th",
        "zh-CN",
        "ja",
        "zh-TW",
        "ko",
    }
)


def _valid_chat_name(name: str) -> bool:
    return bool(_COMMAND_NAME.match(name)) and name == name.lower()


def _check_chat_names(errors: dict[str, Any], path: str, obj: dict[str, Any]) -> None:
    name = str(obj.get("name", ""))
    if not _valid_chat_name(name):
        set_path(
            errors, f"{path}.name", "APPLICATION_COMMAND_INVALID_NAME", f"Invalid name {name!r}"
        )
    desc = obj.get("description")
    if desc is None or not 1 <= len(str(desc)) <= 100:
        set_path(errors, f"{path}.description", "BASE_TYPE_BAD_LENGTH", "Must be 1-100 in length.")
    check_localizations(errors, path, obj, chat=True)


def check_localizations(
    errors: dict[str, Any], path: str, obj: dict[str, Any], *, chat: bool
) -> None:
    """Like Discord: known locales only; a chat-input or option name follows the name rule in
    every language (one bad entry fails the whole registration); lengths as for English."""
    for field, limit in (("name_localizations", 32), ("description_localizations", 100)):
        localized = obj.get(field)
        if localized is None:
            continue
        if not isinstance(localized, dict):
            set_path(errors, f"{path}.{field}", "DICT_TYPE_CONVERT", "Must be a dict.")
            continue
        for locale, value in localized.items():
            spot = f"{path}.{field}.{locale}"
            if locale not in DISCORD_LOCALES:
                set_path(errors, spot, "LOCALE_INVALID", f"Invalid locale {locale!r}")
            elif not isinstance(value, str) or not 1 <= len(value) <= limit:
                set_path(errors, spot, "BASE_TYPE_BAD_LENGTH", f"Must be 1-{limit} in length.")
            elif field == "name_localizations" and chat and not _valid_chat_name(value):
                set_path(
                    errors, spot, "APPLICATION_COMMAND_INVALID_NAME", f"Invalid name {value!r}"
                )


def _check_options(
    errors: dict[str, Any], path: str, options: list[dict[str, Any]], depth: int
) -> None:
    if len(options) > 25:
        _too_long(errors, path, 25)
    names: set[str] = set()
    names_by_locale: set[tuple[str, str]] = set()
    optional_seen = False
    for i, opt in enumerate(options):
        p = f"{path}.{i}"
        _check_chat_names(errors, p, opt)
        if opt.get("name") in names:
            set_path(errors, f"{p}.name", "DUPLICATE", "Option names must be unique.")
        names.add(str(opt.get("name")))
        for locale, localized in (opt.get("name_localizations") or {}).items():
            if (locale, localized) in names_by_locale:
                set_path(errors, f"{p}.name_localizations.{locale}", "DUPLICATE", "Not unique.")
            names_by_locale.add((locale, localized))
        otype = int(opt.get("type", 3))
        if otype in (1, 2):  # subcommand (group): at most two levels below the command
            if depth >= 2 or (otype == 2 and depth >= 1):
                set_path(errors, p, "NESTING", "Subcommand nesting too deep.")
            _check_options(errors, f"{p}.options", opt.get("options") or [], depth + 1)
            continue
        if opt.get("required"):
            if optional_seen:
                set_path(
                    errors,
                    f"{p}.required",
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            optional_seen = True
        choices = opt.get("choices") or []
        if len(choices) > 25:
            _too_long(errors, f"{p}.choices", 25)
        if choices and opt.get("autocomplete"):
            set_path(errors, f"{p}.autocomplete", "INVALID", "Autocomplete cannot have choices.")
        for j, choice in enumerate(choices):
            check_localizations(errors, f"{p}.choices.{j}", choice, chat=False)
