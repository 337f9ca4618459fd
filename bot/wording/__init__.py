"""Everything nekocord says, looked up from two data files. Pure Python: no Discord import.

- `actions.toml` holds the sentences of every known nekos.best category: for a GIF category
  the four cases of `Case` (several variants each, one picked at random), a counter noun, a
  slash-command description and, for reciprocal actions, a return-button label; for an image
  category an intro line, a noun and a description. A category the table does not know yet
  gets neutral wording from its `[fallback]` entry: never an error, never an empty string.
- `messages.toml` holds every other user-facing string, by flat key, for `message()`.

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
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

__all__ = [
    "Case",
    "WordingError",
    "action_sentence",
    "description",
    "has_message",
    "image_line",
    "is_reciprocal",
    "known_categories",
    "message",
    "noun",
    "option_texts",
    "return_label",
]

DESCRIPTION_MAX = 100  # Discord's limit for slash-command descriptions
RETURN_LABEL_MAX = 30  # ours; Discord allows 80 for a button label
_CATEGORY_SHOWN_MAX = 40  # an unknown category's name, as shown in a sentence


class Case(StrEnum):
    """Who an action targets."""

    OTHER = "other"  # another member
    SELF = "self"  # the actor themself
    BOT = "bot"  # the bot itself
    NONE = "none"  # nobody


class WordingError(ValueError):
    """The wording data is broken (raised at import, so a bad edit never ships)."""


@dataclass(frozen=True, slots=True)
class _Gif:
    sentences: Mapping[Case, tuple[str, ...]]
    noun: tuple[str, str]
    description: str
    return_label: str | None


@dataclass(frozen=True, slots=True)
class _Image:
    lines: tuple[str, ...]
    noun: tuple[str, str]
    description: str


@dataclass(frozen=True, slots=True)
class _Fallback:
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
        allowed = {"a", "b"} if case is Case.OTHER else {"a"}
        sentences[case] = _templates(
            entry.get(case.value),
            f"{where} case {case.value!r}",
            required=set(allowed),
            allowed=allowed | extra,
        )
    return sentences


def _parse_actions(
    data: Mapping[str, Any], source: str = "actions.toml"
) -> tuple[dict[str, _Gif], dict[str, _Image], _Fallback]:
    """The validated action table: (GIF entries, image entries, fallback)."""
    gifs: dict[str, _Gif] = {}
    images: dict[str, _Image] = {}
    _check_keys(data, source, {"gif", "image", "fallback"}, set())
    for name, entry in _table(data["gif"], f"{source} [gif]").items():
        where = f"{source} [gif.{name}]"
        _check_keys(
            entry,
            where,
            {"noun", "description", *(c.value for c in Case)},
            {"return_label"},
        )
        label = entry.get("return_label")
        if label is not None:
            label = _text(label, f"{where} return_label", limit=RETURN_LABEL_MAX)
        gifs[name.lower()] = _Gif(
            sentences=_case_templates(entry, where),
            noun=_noun(entry["noun"], where),
            description=_text(entry["description"], f"{where} description", limit=DESCRIPTION_MAX),
            return_label=label,
        )
    for name, entry in _table(data["image"], f"{source} [image]").items():
        where = f"{source} [image.{name}]"
        if name.lower() in gifs:
            raise WordingError(f"{where}: {name!r} is also a GIF category")
        _check_keys(entry, where, {"noun", "description", "line"}, set())
        images[name.lower()] = _Image(
            lines=_templates(entry["line"], f"{where} line", required={"a"}, allowed={"a"}),
            noun=_noun(entry["noun"], where),
            description=_text(entry["description"], f"{where} description", limit=DESCRIPTION_MAX),
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

    fallback = _Fallback(
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
    """The validated messages: key → template, and key → the fields it needs."""
    messages: dict[str, str] = {}
    fields: dict[str, frozenset[str]] = {}
    for key, value in data.items():
        where = f"{source} {key}"
        if not isinstance(value, str):
            raise WordingError(f"{where}: must be a string (keys are flat, no tables)")
        _text(value, where, limit=2000)
        fields[key] = frozenset(_fields(value, where))
        messages[key] = value
    return messages, fields


def _load(filename: str) -> dict[str, Any]:
    try:
        raw = resources.files(__name__).joinpath(filename).read_text(encoding="utf-8")
        return tomllib.loads(raw)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise WordingError(f"bot/wording/{filename}: cannot be read: {exc}") from exc


_GIFS, _IMAGES, _FALLBACK = _parse_actions(_load("actions.toml"))
_MESSAGES, _MESSAGE_FIELDS = _parse_messages(_load("messages.toml"))
_KNOWN = frozenset(_GIFS) | frozenset(_IMAGES)


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
    rng: random.Random | None = None,
) -> str:
    """The sentence of an action, e.g. "**Alice** hugs **Bob**".

    `actor` and `target` must already be markdown-escaped; `target` is required for
    `Case.OTHER` and ignored otherwise (the bot names itself "me" in `Case.BOT`)."""
    case = Case(case)
    if case is Case.OTHER and target is None:
        raise ValueError("Case.OTHER needs a target")
    values = {"a": actor, "b": target if target is not None else ""}
    entry = _GIFS.get(_key(category))
    if entry is not None:
        return _pick(entry.sentences[case], rng).format_map(values)
    values |= _fallback_fields(category)
    return _pick(_FALLBACK.sentences[case], rng).format_map(values)


def image_line(category: str, *, actor: str, rng: random.Random | None = None) -> str:
    """The intro line of an image, e.g. "Here's a neko for you, **Alice**~" (actor escaped)."""
    entry = _IMAGES.get(_key(category))
    if entry is not None:
        return _pick(entry.lines, rng).format_map({"a": actor})
    return _pick(_FALLBACK.lines, rng).format_map({"a": actor} | _fallback_fields(category))


def return_label(category: str) -> str | None:
    """The "Hug back" button label (≤ 30 characters); None when not reciprocal or unknown."""
    entry = _GIFS.get(_key(category))
    return entry.return_label if entry is not None else None


def is_reciprocal(category: str) -> bool:
    return return_label(category) is not None


def noun(category: str, count: int) -> str:
    """The counter noun: "hug" for 1, "hugs" otherwise (an unknown category: its name)."""
    key = _key(category)
    entry = _GIFS.get(key) or _IMAGES.get(key)
    if entry is not None:
        singular, plural = entry.noun
    else:
        singular = _plain(category)
        plural = singular + ("es" if singular.endswith(("s", "x", "z", "ch", "sh")) else "s")
    return singular if count == 1 else plural


def description(category: str, kind: str) -> str:
    """The slash-command description of a category (plain text, 1-100 characters).

    `kind` is "gif" or "image" (a `bot.nekos.Kind` works too); it only matters for a
    category the table does not know."""
    kind = str(kind)
    if kind not in ("gif", "image"):
        raise ValueError(f"kind must be 'gif' or 'image', not {kind!r}")
    key = _key(category)
    primary, secondary = (_GIFS, _IMAGES) if kind == "gif" else (_IMAGES, _GIFS)
    entry = primary.get(key) or secondary.get(key)
    if entry is not None:
        return entry.description
    plain = _plain(category)
    template = _FALLBACK.gif_description if kind == "gif" else _FALLBACK.image_description
    text = template.format_map(
        {"category": plain, "article": _fallback_fields(category)["article"]}
    )
    return _clip(text, DESCRIPTION_MAX)


def known_categories() -> frozenset[str]:
    """Every category the table has wording for (GIF and image)."""
    return _KNOWN


def message(key: str, **fields: Any) -> str:
    """The message `key` of messages.toml, formatted with `fields` (extra fields are ignored).

    Raises KeyError for an unknown key or a missing field."""
    try:
        template = _MESSAGES[key]
    except KeyError:
        raise KeyError(
            f"unknown message key {key!r}: add it to bot/wording/messages.toml"
        ) from None
    if missing := _MESSAGE_FIELDS[key] - fields.keys():
        raise KeyError(f"message {key!r} needs the field(s) {', '.join(sorted(missing))}")
    return template.format_map(fields)


def option_texts(command: str, *options: str) -> dict[str, str]:
    """The descriptions of a fixed command's options (`command_<command>_<option>` keys)."""
    return {option: message(f"command_{command}_{option}") for option in options}


def has_message(key: str) -> bool:
    return key in _MESSAGES
