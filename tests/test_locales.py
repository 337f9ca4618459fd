"""The translations (bot/wording/locales): complete, same placeholders, valid command names, and
really translated (English copied into a locale cannot pass)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from bot import wording
from bot.wording import Case, tables

WORDING = Path(wording.__file__).parent
ENGLISH_ACTIONS = tomllib.loads((WORDING / "actions.toml").read_text("utf-8"))
ENGLISH_MESSAGES = tomllib.loads((WORDING / "messages.toml").read_text("utf-8"))
NAME = re.compile(r"^[-_\w]{1,32}$")
FIELD = re.compile(r"\{(\w+)\}")

# Values a language may keep as in English: names, loanwords, pure placeholders or punctuation.
SAME_AS_ENGLISH = {
    "menu_action",
    "footer_anime",
    "stats_partner_row",
    "board_row",
    "board_pair_row",
    "board_footer_empty",
    "list_separator",
    "help_title",
    "kind_gif",
    "command_search_type_gif",
}
LOANWORDS = {"baka", "bakas", "bonk", "bonks", "facepalm", "facepalms", "kabedon", "kabedons"}
LOANWORDS |= {"nya", "nyas", "neko", "nekos", "waifu", "waifus", "husbando", "husbandos"}
LOANWORDS |= {"kitsune", "yeet", "yeets", "snack", "snacks"}


def load(locale: str, name: str) -> dict:
    return tomllib.loads((WORDING / "locales" / locale / name).read_text("utf-8"))


def test_every_language_is_there() -> None:
    assert wording.available_locales() == wording.LOCALES == ("de", "es-ES", "fr", "ja", "pt-BR")


@pytest.mark.parametrize("locale", wording.LOCALES)
def test_same_keys_and_placeholders_as_english(locale: str) -> None:
    actions, messages = load(locale, "actions.toml"), load(locale, "messages.toml")
    assert set(actions["gif"]) == set(ENGLISH_ACTIONS["gif"])
    assert set(actions["image"]) == set(ENGLISH_ACTIONS["image"])
    assert set(messages) - {"names"} == set(ENGLISH_MESSAGES)
    for key, english in ENGLISH_MESSAGES.items():
        assert set(FIELD.findall(messages[key])) == set(FIELD.findall(english)), key
    for category, entry in actions["gif"].items():
        for case in Case:
            for template in entry[case.value]:
                fields = set(FIELD.findall(template))
                expected = {"a", "b"} if case in (Case.OTHER, Case.SEVERAL) else {"a"}
                assert fields == expected, (category, case, template)
        assert ("return_label" in entry) == ("return_label" in ENGLISH_ACTIONS["gif"][category])
        assert len(entry["noun"]) == 2


@pytest.mark.parametrize("locale", wording.LOCALES)
def test_nothing_is_left_in_english(locale: str) -> None:
    actions, messages = load(locale, "actions.toml"), load(locale, "messages.toml")
    same = [
        key
        for key, english in ENGLISH_MESSAGES.items()
        if messages[key] == english and key not in SAME_AS_ENGLISH
    ]
    assert same == [], same
    for kind in ("gif", "image"):
        for category, entry in actions[kind].items():
            english = ENGLISH_ACTIONS[kind][category]
            assert entry["description"] != english["description"], (category, "description")
            for case in (*Case, "line"):
                key = case.value if isinstance(case, Case) else case
                if key in english:
                    copied = set(entry[key]) & set(english[key])
                    assert not copied, (category, key, copied)
            if entry["noun"] == english["noun"]:
                assert set(entry["noun"]) <= LOANWORDS, (category, entry["noun"])


@pytest.mark.parametrize("locale", wording.LOCALES)
def test_command_names_are_valid_everywhere(locale: str) -> None:
    """Discord refuses the whole registration for one bad localized name."""
    actions, messages = load(locale, "actions.toml"), load(locale, "messages.toml")
    names = [entry["name"] for kind in ("gif", "image") for entry in actions[kind].values()]
    names += list(messages["names"].values())
    for name in names:
        assert NAME.fullmatch(name) and name == name.lower() and "'" not in name, name
    categories = [entry["name"] for kind in ("gif", "image") for entry in actions[kind].values()]
    assert len(set(categories)) == len(categories), "two categories share a name"
    fixed = {messages["names"][c] for c in ("action", "image", "search", "source", "help")}
    assert not fixed & set(categories), "a category takes a fixed command's name"
    required = {"action", "image", "search", "source", "help", "stats", "optout", "optin"}
    required |= {"forgetme", "config", "user", "user2", "user5", "message", "amount", "category"}
    assert required <= set(messages["names"])


def test_which_language_a_message_uses() -> None:
    assert wording.message_locale("de") == "de"
    assert wording.message_locale("es-419") == "es-ES"
    assert wording.message_locale("en-GB") == "en"
    assert wording.message_locale("ko") == "en"
    assert wording.message_locale(None) == "en"


def test_plural_rules() -> None:
    assert wording.noun("hug", 1, "de") != wording.noun("hug", 2, "de")
    assert wording.noun("hug", 0, "fr") == wording.noun("hug", 1, "fr")  # French: 0 is singular
    assert wording.noun("hug", 0, "de") == wording.noun("hug", 2, "de")
    assert wording.noun("hug", 5, "ja") == wording.noun("hug", 1, "ja")


@pytest.mark.parametrize("locale", wording.LOCALES)
def test_an_unknown_category_reads_naturally(locale: str) -> None:
    for case in Case:
        target = "**B**" if case in (Case.OTHER, Case.SEVERAL) else None
        text = wording.action_sentence("glomp", case, actor="A", target=target, locale=locale)
        assert "glomp" in text and "A" in text and "{" not in text
    description = wording.description("glomp", "gif", locale)
    assert "glomp" in description and description != wording.description("glomp", "gif")
    assert wording.category_name("glomp", locale) is None  # it keeps nekos.best's name


def test_a_broken_translation_fails_at_load() -> None:
    english = wording.tables.load_english()
    broken = tables._parse_actions(
        {**ENGLISH_ACTIONS, "gif": {**ENGLISH_ACTIONS["gif"]}}, named=False
    )
    assert broken[0].keys() == english.gifs.keys()
    with pytest.raises(wording.WordingError):
        tables._name("hug it", "test")
    with pytest.raises(wording.WordingError):
        tables._name("Umarmen", "test")
