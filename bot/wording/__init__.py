"""Everything nekocord says, in English and five more languages, looked up from data files.
Pure Python: no Discord import. The tables are read and checked by `bot.wording.tables`.

- `actions.toml` holds the sentences of every known nekos.best category: for a GIF category
  the four cases of `Case` (several variants each, one picked at random), a counter noun, a
  slash-command description and, for reciprocal actions, a return-button label; for an image
  category an intro line, a noun and a description. A category the table does not know yet
  gets neutral wording from its `[fallback]` entry: never an error, never an empty string.
- `messages.toml` holds every other user-facing string, by flat key, for `message()`.
- `locales/<locale>/` holds the same two files for each language in `LOCALES`, plus the
  localized command and option names. Every function takes `locale` (default English); a
  locale without a table falls back to English.

Markdown contract: the action templates carry their own bold markers (`**{a}** hugs **{b}**`),
and the caller passes the display names ALREADY markdown-escaped (and mention-escaped). Names
are values, never templates: a name containing `{x}` or `**` comes through literally. The
same holds for `message()` fields; whether a message renders markdown depends on where it is
shown (see the header of messages.toml).

Both files are loaded through importlib.resources and validated once, at import: a broken
entry raises `WordingError` naming the file, the category (or key) and the case.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.wording.tables import (
    DESCRIPTION_MAX,
    RETURN_LABEL_MAX,
    Case,
    Table,
    WordingError,
    load_english,
    load_translation,
)

__all__ = [
    "DESCRIPTION_MAX",
    "ENGLISH",
    "LOCALES",
    "RETURN_LABEL_MAX",
    "Case",
    "NameList",
    "Phrase",
    "WordingError",
    "action_sentence",
    "available_locales",
    "category_name",
    "description",
    "fixed_name",
    "has_message",
    "image_line",
    "is_reciprocal",
    "join_names",
    "known_categories",
    "message",
    "message_locale",
    "noun",
    "option_texts",
    "resolved",
    "return_label",
]

ENGLISH = "en"
# The languages besides English, as Discord names them.
LOCALES = ("de", "es-ES", "fr", "ja", "pt-BR")
# Discord locales that read another table's messages.
_ALIASES = {"es-419": "es-ES"}
_CATEGORY_SHOWN_MAX = 40  # an unknown category's name, as shown in a sentence

_ENGLISH = load_english()
_TABLES: dict[str, Table] = {ENGLISH: _ENGLISH}
for _locale in LOCALES:
    if (_translation := load_translation(_locale, _ENGLISH)) is not None:
        _TABLES[_locale] = _translation
_KNOWN = frozenset(_ENGLISH.gifs) | frozenset(_ENGLISH.images)


def available_locales() -> tuple[str, ...]:
    """The languages besides English whose tables are present."""
    return tuple(locale for locale in LOCALES if locale in _TABLES)


def message_locale(locale: object) -> str:
    """The table for a Discord locale: its own, `es-419` → `es-ES`, else English. Anything but
    a known locale string (a forged payload's list or object among them) reads English."""
    if not isinstance(locale, str):
        return ENGLISH
    locale = _ALIASES.get(locale, locale)
    return locale if locale in _TABLES else ENGLISH


def _table(locale: str) -> Table:
    return _TABLES.get(locale) or _ENGLISH


# -- unknown categories -------------------------------------------------------------------------

# Markdown (and mention) characters of an unknown category's name, escaped with a backslash.
_MARKDOWN = re.compile(r"([\\*_~|`>#\[\]()<@:])")


def _key(category: str) -> str:
    return category.strip().lower()


def _plain(category: str) -> str:
    """An unknown category's name as words: "thumbs_up" → "thumbs up"."""
    words = " ".join(re.sub(r"[_\-]+", " ", category).split())
    if len(words) > _CATEGORY_SHOWN_MAX:
        words = words[: _CATEGORY_SHOWN_MAX - 1].rstrip() + "…"
    return words or "surprise"


def _fallback_fields(category: str) -> dict[str, str]:
    plain = _plain(category)
    return {
        "category": _MARKDOWN.sub(r"\\\1", plain),
        "article": "an" if plain[0].lower() in "aeiou" else "a",
    }


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _pick(templates: tuple[str, ...], rng: random.Random | None) -> str:
    return (rng or random).choice(templates)


# -- public API ---------------------------------------------------------------------------------


def action_sentence(
    category: str,
    case: Case,
    *,
    actor: str,
    target: str | None = None,
    locale: str = ENGLISH,
    rng: random.Random | None = None,
) -> str:
    """The sentence of an action, e.g. "**Alice** hugs **Bob**".

    `actor` and `target` must already be markdown-escaped; `target` is required for
    `Case.OTHER` and `Case.SEVERAL` (there: the names joined by `join_names`, each in bold)
    and ignored otherwise (the bot names itself "me" in `Case.BOT`)."""
    case = Case(case)
    if case in (Case.OTHER, Case.SEVERAL) and target is None:
        raise ValueError(f"{case} needs a target")
    table = _table(locale)
    values = {"a": actor, "b": target if target is not None else ""}
    entry = table.gifs.get(_key(category))
    if entry is not None:
        return _pick(entry.sentences[case], rng).format_map(values)
    values |= _fallback_fields(category)
    return _pick(table.fallback.sentences[case], rng).format_map(values)


def image_line(
    category: str, *, actor: str, locale: str = ENGLISH, rng: random.Random | None = None
) -> str:
    """The intro line of an image, e.g. "Here's a neko for you, **Alice**~" (actor escaped)."""
    table = _table(locale)
    entry = table.images.get(_key(category))
    if entry is not None:
        return _pick(entry.lines, rng).format_map({"a": actor})
    return _pick(table.fallback.lines, rng).format_map({"a": actor} | _fallback_fields(category))


def return_label(category: str, locale: str = ENGLISH) -> str | None:
    """The "Hug back" button label (≤ 30 characters); None when not reciprocal or unknown."""
    entry = _table(locale).gifs.get(_key(category))
    return entry.return_label if entry is not None else None


def is_reciprocal(category: str) -> bool:
    return return_label(category) is not None


def noun(category: str, count: int, locale: str = ENGLISH) -> str:
    """The counter noun: "hug" for 1, "hugs" otherwise (an unknown category: its name).
    French uses the singular for 0 too; Japanese has one form."""
    key = _key(category)
    table = _table(locale)
    entry = table.gifs.get(key) or table.images.get(key)
    if entry is not None:
        singular, plural = entry.noun
    else:
        singular = _plain(category)
        plural = singular + ("es" if singular.endswith(("s", "x", "z", "ch", "sh")) else "s")
        if table.locale != ENGLISH:
            plural = singular  # a name, not a word of the language
    one = abs(count) < 2 if table.locale == "fr" else count == 1
    return singular if one else plural


def description(category: str, kind: str, locale: str = ENGLISH) -> str:
    """The slash-command description of a category (plain text, 1-100 characters).

    `kind` is "gif" or "image" (a `bot.nekos.Kind` works too); it only matters for a
    category the table does not know."""
    kind = str(kind)
    if kind not in ("gif", "image"):
        raise ValueError(f"kind must be 'gif' or 'image', not {kind!r}")
    key = _key(category)
    table = _table(locale)
    primary, secondary = (table.gifs, table.images) if kind == "gif" else (table.images, table.gifs)
    entry = primary.get(key) or secondary.get(key)
    if entry is not None:
        return entry.description
    plain = _plain(category)
    fallback = table.fallback
    template = fallback.gif_description if kind == "gif" else fallback.image_description
    text = template.format_map(
        {"category": plain, "article": _fallback_fields(category)["article"]}
    )
    return _clip(text, DESCRIPTION_MAX)


def category_name(category: str, locale: str) -> str | None:
    """A category command's localized name; None for English or a category no table knows
    (its command keeps the name nekos.best gives it)."""
    table = _TABLES.get(locale)
    key = _key(category)
    entry = (table.gifs.get(key) or table.images.get(key)) if table is not None else None
    return entry.name if entry is not None and table is not _ENGLISH else None


def fixed_name(name: str, locale: str) -> str | None:
    """The localized name of a fixed command, subcommand or option; None if there is none."""
    table = _TABLES.get(locale)
    return table.names.get(name) if table is not None else None


def known_categories() -> frozenset[str]:
    """Every category the table has wording for (GIF and image)."""
    return _KNOWN


def message(key: str, locale: str = ENGLISH, **fields: Any) -> str:
    """The message `key` of messages.toml in `locale`, formatted with `fields` (extra fields are
    ignored). Raises KeyError for an unknown key or a missing field."""
    table = _table(locale)
    try:
        template = table.messages[key]
    except KeyError:
        raise KeyError(
            f"unknown message key {key!r}: add it to bot/wording/messages.toml"
        ) from None
    if missing := table.fields[key] - fields.keys():
        raise KeyError(f"message {key!r} needs the field(s) {', '.join(sorted(missing))}")
    return template.format_map(fields)


def join_names(names: Sequence[str], locale: str = ENGLISH) -> str:
    """ "A, B and C" in `locale` (names already escaped and formatted)."""
    if len(names) < 2:
        return "".join(names)
    first = message("list_separator", locale).join(names[:-1])
    return message("list_last", locale, first=first, last=names[-1])


@dataclass(frozen=True, slots=True)
class Phrase:
    """A message put into another one, in the other one's language (an error's field)."""

    key: str

    def resolve(self, locale: str) -> str:
        return message(self.key, locale)


@dataclass(frozen=True, slots=True)
class NameList:
    """Names joined in the language of the message they go into ("A, B and C")."""

    names: tuple[str, ...]

    def resolve(self, locale: str) -> str:
        return join_names(self.names, locale)


def resolved(fields: Mapping[str, Any], locale: str) -> dict[str, Any]:
    """`fields` with every `Phrase` and `NameList` put into words for `locale`."""
    return {
        k: v.resolve(locale) if isinstance(v, Phrase | NameList) else v for k, v in fields.items()
    }


def option_texts(command: str, *options: str) -> dict[str, str]:
    """The descriptions of a fixed command's options (`command_<command>_<option>` keys)."""
    return {option: message(f"command_{command}_{option}") for option in options}


def has_message(key: str) -> bool:
    return key in _ENGLISH.messages
