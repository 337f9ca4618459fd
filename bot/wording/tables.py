"""The wording tables: parsing and validation of the TOML data, per language.

English lives in `actions.toml` and `messages.toml`; each translation in `locales/<locale>/`
with the same categories, keys and placeholders, plus localized command names. A broken entry
raises `WordingError` at import (naming the file, the category or key, and the case), so a bad
edit never ships.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

DESCRIPTION_MAX = 100  # Discord's limit for slash-command descriptions
RETURN_LABEL_MAX = 30  # ours; Discord allows 80 for a button label
_CATEGORY_SHOWN_MAX = 40  # an unknown category's name, as shown in a sentence


class Case(StrEnum):
    """Who an action targets."""

    OTHER = "other"  # another member
    SELF = "self"  # the actor themself
    BOT = "bot"  # the bot itself
    NONE = "none"  # nobody
    SEVERAL = "several"  # 2-5 others ({b} is their names, joined, each already bold)


class WordingError(ValueError):
    """The wording data is broken (raised at import, so a bad edit never ships)."""


@dataclass(frozen=True, slots=True)
class Gif:
    sentences: Mapping[Case, tuple[str, ...]]
    noun: tuple[str, str]
    description: str
    return_label: str | None
    name: str | None  # the localized command name (English: the category's own)


@dataclass(frozen=True, slots=True)
class Image:
    lines: tuple[str, ...]
    noun: tuple[str, str]
    description: str
    name: str | None


@dataclass(frozen=True, slots=True)
class Fallback:
    sentences: Mapping[Case, tuple[str, ...]]
    lines: tuple[str, ...]
    gif_description: str
    image_description: str


# -- validation ---------------------------------------------------------------------------------

_FORMATTER = string.Formatter()
_FALLBACK_EXTRA = frozenset({"category", "article"})


def _fields(template: str, where: str) -> set[str]:
    """The placeholder names of `template`; only plain `{name}` fields are allowed."""
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise WordingError(f"{where}: malformed braces in {template!r} ({exc})") from None
    names: set[str] = set()
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise WordingError(
                f"{where}: placeholder {{{name}}} in {template!r} must be a plain name "
                "(no positional fields, attributes or indexes)"
            )
        if spec or conversion:
            raise WordingError(
                f"{where}: placeholder {{{name}}} in {template!r} must not have a format spec "
                "or conversion"
            )
        names.add(name)
    return names


def _text(value: Any, where: str, *, limit: int | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise WordingError(f"{where}: must be a non-empty string, got {value!r}")
    if limit is not None and len(value) > limit:
        raise WordingError(f"{where}: {len(value)} characters, at most {limit} allowed")
    return value


def _templates(
    value: Any, where: str, *, required: set[str], allowed: frozenset[str] | set[str]
) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise WordingError(f"{where}: must be a non-empty list of sentences")
    out: list[str] = []
    for index, template in enumerate(value):
        spot = f"{where} variant {index + 1}"
        _text(template, spot)
        names = _fields(template, spot)
        if unknown := names - set(allowed):
            raise WordingError(
                f"{spot}: {template!r} uses {_braced(unknown)}; allowed here: {_braced(allowed)}"
            )
        if missing := required - names:
            raise WordingError(f"{spot}: {template!r} must use {_braced(missing)}")
        out.append(template)
    return tuple(out)


def _braced(names: set[str] | frozenset[str]) -> str:
    return ", ".join("{" + name + "}" for name in sorted(names)) or "nothing"


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise WordingError(f"{where}: must be a table, got {value!r}")
    return value


def _check_keys(
    entry: Any, where: str, required: set[str], optional: set[str]
) -> Mapping[str, Any]:
    entry = _table(entry, where)
    if missing := required - entry.keys():
        raise WordingError(f"{where}: missing {', '.join(sorted(missing))}")
    if unknown := entry.keys() - required - optional:
        raise WordingError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    return entry


def _noun(value: Any, where: str) -> tuple[str, str]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, str) and v.strip() for v in value)
    ):
        raise WordingError(f"{where}: noun must be [singular, plural], got {value!r}")
    return value[0], value[1]


def _case_templates(
    entry: Mapping[str, Any], where: str, extra: frozenset[str] = frozenset()
) -> dict[Case, tuple[str, ...]]:
    sentences: dict[Case, tuple[str, ...]] = {}
    for case in Case:
        allowed = {"a", "b"} if case in (Case.OTHER, Case.SEVERAL) else {"a"}
        sentences[case] = _templates(
            entry.get(case.value),
            f"{where} case {case.value!r}",
            required=set(allowed),
            allowed=allowed | extra,
        )
    return sentences


def _parse_actions(
    data: Mapping[str, Any], source: str = "actions.toml", *, named: bool = False
) -> tuple[dict[str, Gif], dict[str, Image], Fallback]:
    """The validated action table: (GIF entries, image entries, fallback). `named`: every
    entry carries its localized command `name` (a translation)."""
    name_key = {"name"} if named else set()
    gifs: dict[str, Gif] = {}
    images: dict[str, Image] = {}
    _check_keys(data, source, {"gif", "image", "fallback"}, set())
    for name, entry in _table(data["gif"], f"{source} [gif]").items():
        where = f"{source} [gif.{name}]"
        _check_keys(
            entry,
            where,
            {"noun", "description", *(c.value for c in Case), *name_key},
            {"return_label"},
        )
        label = entry.get("return_label")
        if label is not None:
            label = _text(label, f"{where} return_label", limit=RETURN_LABEL_MAX)
        gifs[name.lower()] = Gif(
            sentences=_case_templates(entry, where),
            noun=_noun(entry["noun"], where),
            description=_text(entry["description"], f"{where} description", limit=DESCRIPTION_MAX),
            return_label=label,
            name=_name(entry["name"], f"{where} name") if name_key else None,
        )
    for name, entry in _table(data["image"], f"{source} [image]").items():
        where = f"{source} [image.{name}]"
        if name.lower() in gifs:
            raise WordingError(f"{where}: {name!r} is also a GIF category")
        _check_keys(entry, where, {"noun", "description", "line", *name_key}, set())
        images[name.lower()] = Image(
            lines=_templates(entry["line"], f"{where} line", required={"a"}, allowed={"a"}),
            noun=_noun(entry["noun"], where),
            description=_text(entry["description"], f"{where} description", limit=DESCRIPTION_MAX),
            name=_name(entry["name"], f"{where} name") if name_key else None,
        )
    entry = data["fallback"]
    where = f"{source} [fallback]"
    _check_keys(
        entry,
        where,
        {"gif_description", "image_description", "line", *(c.value for c in Case)},
        set(),
    )

    def fallback_description(key: str) -> str:
        return _templates(entry[key], f"{where} {key}", required=set(), allowed=_FALLBACK_EXTRA)[0]

    fallback = Fallback(
        sentences=_case_templates(entry, where, _FALLBACK_EXTRA),
        lines=_templates(
            entry["line"], f"{where} line", required={"a"}, allowed={"a"} | _FALLBACK_EXTRA
        ),
        gif_description=fallback_description("gif_description"),
        image_description=fallback_description("image_description"),
    )
    return gifs, images, fallback


def _parse_messages(
    data: Mapping[str, Any], source: str = "messages.toml"
) -> tuple[dict[str, str], dict[str, frozenset[str]]]:
    """The validated messages: key → template, and key → the fields it needs (a translation's
    `[names]` table is read by `_parse_names`)."""
    messages: dict[str, str] = {}
    fields: dict[str, frozenset[str]] = {}
    for key, value in data.items():
        if key == "names" and isinstance(value, dict):
            continue
        where = f"{source} {key}"
        if not isinstance(value, str):
            raise WordingError(f"{where}: must be a string (keys are flat, no tables)")
        _text(value, where, limit=2000)
        fields[key] = frozenset(_fields(value, where))
        messages[key] = value
    return messages, fields


# Discord's rule for command and option names (localized ones included); lowercase only.
COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")


def _name(value: Any, where: str) -> str:
    name = _text(value, where)
    if not COMMAND_NAME.fullmatch(name) or name != name.lower():
        raise WordingError(f"{where}: {name!r} is not a valid command name")
    return name


def _parse_names(data: Mapping[str, Any], source: str) -> dict[str, str]:
    names = _table(data.get("names", {}), f"{source} [names]")
    return {str(k): _name(v, f"{source} [names.{k}]") for k, v in names.items()}


def _load(filename: str) -> dict[str, Any] | None:
    """The parsed TOML file under bot/wording, or None when it does not exist."""
    resource = resources.files(__package__).joinpath(filename)
    if not resource.is_file():
        return None
    try:
        return tomllib.loads(resource.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise WordingError(f"bot/wording/{filename}: cannot be read: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Table:
    """Everything one language says."""

    locale: str
    gifs: dict[str, Gif]
    images: dict[str, Image]
    fallback: Fallback
    messages: dict[str, str]
    fields: dict[str, frozenset[str]]
    names: dict[str, str]  # fixed command, subcommand and option names → localized


def load_english() -> Table:
    """English, from actions.toml and messages.toml."""
    table = _load_table("en", "")
    if table is None:
        raise WordingError("bot/wording/actions.toml and messages.toml are required")
    return table


def load_translation(locale: str, english: Table) -> Table | None:
    """A translation from locales/<locale>/, checked against English (same categories and
    keys, same placeholders, a valid name for every command); None when it is absent."""
    return _load_table(locale, f"locales/{locale}/", english)


def _load_table(locale: str, folder: str, english: Table | None = None) -> Table | None:
    actions, messages = _load(f"{folder}actions.toml"), _load(f"{folder}messages.toml")
    if actions is None or messages is None:
        return None
    where = f"bot/wording/{folder}"
    gifs, images, fallback = _parse_actions(
        actions, f"{where}actions.toml", named=english is not None
    )
    texts, fields = _parse_messages(messages, f"{where}messages.toml")
    table = Table(locale, gifs, images, fallback, texts, fields, _parse_names(messages, where))
    if english is not None:
        _check_parity(table, english, where)
    return table


def _check_parity(table: Table, english: Table, where: str) -> None:
    for what, ours, theirs in (
        ("GIF categories", table.gifs.keys(), english.gifs.keys()),
        ("image categories", table.images.keys(), english.images.keys()),
        ("messages", table.messages.keys(), english.messages.keys()),
    ):
        if ours != theirs:
            missing, extra = sorted(theirs - ours), sorted(ours - theirs)
            raise WordingError(f"{where}: {what} differ from English: {missing=} {extra=}")
    for key, needed in english.fields.items():
        if table.fields[key] != needed:
            raise WordingError(f"{where}messages.toml {key}: placeholders differ from English")
    for category, gif in english.gifs.items():
        if (gif.return_label is None) != (table.gifs[category].return_label is None):
            raise WordingError(f"{where}actions.toml [gif.{category}]: return_label as English")
