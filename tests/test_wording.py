"""The wording table: every category, every case, every message — and the loader's guards."""

from __future__ import annotations

import random
import re
import string
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from bot import wording
from bot.wording import Case, WordingError, tables

# fmt: off
GIF_CATEGORIES = [
    "angry", "baka", "bite", "bleh", "blowkiss", "blush", "bonk", "bored", "carry", "clap",
    "confused", "cry", "cuddle", "dance", "facepalm", "feed", "handhold", "handshake", "happy",
    "highfive", "hug", "kabedon", "kick", "kiss", "lappillow", "laugh", "lurk", "nod", "nom",
    "nope", "nya", "pat", "peck", "poke", "pout", "punch", "run", "salute", "shake", "shocked",
    "shoot", "shrug", "sip", "slap", "sleep", "smile", "smug", "spin", "stare", "tableflip",
    "teehee", "think", "thumbsup", "tickle", "wag", "wave", "wink", "yawn", "yeet",
]
# fmt: on
IMAGE_CATEGORIES = ["husbando", "kitsune", "neko", "waifu"]
MUST_BE_RECIPROCAL = ["hug", "pat", "kiss", "highfive", "handshake", "cuddle", "poke"]

A = "ACTOR"
B = "TARGET"


def _raw_actions() -> dict:
    return tomllib.loads(resources.files("bot.wording").joinpath("actions.toml").read_text("utf-8"))


def _raw_messages() -> dict[str, str]:
    text = resources.files("bot.wording").joinpath("messages.toml").read_text("utf-8")
    return tomllib.loads(text)


RAW = _raw_actions()
MESSAGES = _raw_messages()


def _every(category: str, case: Case, **names: str) -> list[str]:
    """Every variant of a case, formatted (the table's own templates, in order)."""
    return [t.format_map({"a": A, "b": B} | names) for t in RAW["gif"][category][case.value]]


# -- the table ----------------------------------------------------------------------------------


def test_table_knows_exactly_the_categories_of_today() -> None:
    assert len(GIF_CATEGORIES) == 59
    assert set(RAW["gif"]) == set(GIF_CATEGORIES)
    assert set(RAW["image"]) == set(IMAGE_CATEGORIES)
    assert wording.known_categories() == frozenset(GIF_CATEGORIES + IMAGE_CATEGORIES)


@pytest.mark.parametrize("category", GIF_CATEGORIES)
def test_every_gif_category_has_every_case(category: str) -> None:
    entry = RAW["gif"][category]
    for case in Case:
        variants = entry[case.value]
        assert variants, (category, case)
        assert all(v.strip() for v in variants), (category, case)
        assert len(set(variants)) == len(variants), f"duplicate variant in {category}.{case}"

    for text in _every(category, Case.OTHER):
        assert A in text and B in text, (category, text)
    for template in entry["several"]:  # {b} arrives joined, each name already bold
        assert "{a}" in template and "{b}" in template, (category, template)
        assert "**{b}**" not in template, (category, template)
    for case in (Case.SELF, Case.BOT, Case.NONE):
        for template in entry[case.value]:
            assert "{b}" not in template, (category, case, template)
            assert A in template.format_map({"a": A}), (category, case, template)

    # Self is its own sentence, not the other sentence with the actor twice.
    others = set(_every(category, Case.OTHER, b=A))
    for template in entry["self"]:
        text = template.format_map({"a": A})
        assert text not in others, (category, text)
        assert text.count(A) == 1, (category, text)

    # The loader picks among exactly those variants.
    rng = random.Random(7)
    for case in Case:
        target = B if case in (Case.OTHER, Case.SEVERAL) else None
        for _ in range(5):
            sentence = wording.action_sentence(category, case, actor=A, target=target, rng=rng)
            assert sentence in _every(category, case)


def test_the_four_cases_read_differently() -> None:
    for category in ["hug", "pat", "blush", "sleep", "slap", "wave", "think", "cry"]:
        firsts = {
            wording.action_sentence(
                category, case, actor=A, target=B, rng=random.Random(0)
            ).replace(B, A)
            for case in Case
            if case is not Case.SEVERAL
        }
        assert len(firsts) == 4, category
        assert not (set(_every(category, Case.SELF)) & set(_every(category, Case.NONE)))
        assert not (set(_every(category, Case.BOT)) & set(_every(category, Case.NONE)))


def test_common_actions_have_several_variants() -> None:
    for category in ["hug", "pat", "kiss", "cuddle", "poke", "slap", "wave", "blush"]:
        for case in (Case.OTHER, Case.BOT):
            assert len(RAW["gif"][category][case.value]) >= 2, (category, case)


def test_examples_from_the_issue() -> None:
    assert "**Alice** hugs **Bob**" in _every("hug", Case.OTHER, a="Alice", b="Bob")
    assert "**Alice** blushes at **Bob**" in _every("blush", Case.OTHER, a="Alice", b="Bob")
    assert "**Alice** falls asleep on **Bob**'s shoulder" in _every(
        "sleep", Case.OTHER, a="Alice", b="Bob"
    )
    assert "**Alice** hugs me! Aww, thank you~" in _every("hug", Case.BOT, a="Alice")
    assert "**Alice** is blushing" in _every("blush", Case.NONE, a="Alice")


def test_other_requires_a_target_and_cases_accept_plain_strings() -> None:
    with pytest.raises(ValueError):
        wording.action_sentence("hug", Case.OTHER, actor=A)
    assert wording.action_sentence("hug", "none", actor=A)  # type: ignore[arg-type]
    assert wording.action_sentence("HUG", Case.NONE, actor=A) in _every("hug", Case.NONE)


# -- reciprocal, nouns, descriptions ------------------------------------------------------------


def test_reciprocal_actions_have_short_return_labels() -> None:
    for category in MUST_BE_RECIPROCAL:
        assert wording.is_reciprocal(category), category
    for category in GIF_CATEGORIES:
        label = wording.return_label(category)
        assert wording.is_reciprocal(category) is (label is not None)
        if label is not None:
            assert 1 <= len(label) <= 30, (category, label)
    assert wording.return_label("hug") == "Hug back"
    assert wording.return_label("highfive") == "High-five back"
    for category in ["sleep", "yawn", "think", "carry", "glomp", "neko"]:
        assert wording.return_label(category) is None, category
        assert not wording.is_reciprocal(category)


def test_nouns() -> None:
    assert wording.noun("hug", 1) == "hug"
    assert wording.noun("hug", 7) == "hugs"
    assert wording.noun("hug", 0) == "hugs"
    assert wording.noun("kiss", 2) == "kisses"
    assert wording.noun("highfive", 1) == "high five"
    assert wording.noun("highfive", 3) == "high fives"
    assert wording.noun("stare", 2) == "stares"
    assert wording.noun("neko", 2) == "nekos"
    assert wording.noun("glomp", 1) == "glomp"
    assert wording.noun("glomp", 2) == "glomps"
    assert wording.noun("smooch", 2) == "smooches"
    for category in wording.known_categories():
        assert wording.noun(category, 1).strip() and wording.noun(category, 2).strip()


def test_descriptions_fit_discord() -> None:
    for category in GIF_CATEGORIES:
        assert 1 <= len(wording.description(category, "gif")) <= 100, category
    for category in IMAGE_CATEGORIES:
        assert 1 <= len(wording.description(category, "image")) <= 100, category
    assert wording.description("hug", "gif") == "Hug someone (or get a hug)"
    for kind in ("gif", "image"):
        for category in ["glomp", "uppercut", "x" * 300, "", "a_b-c"]:
            text = wording.description(category, kind)
            assert 1 <= len(text) <= 100, (category, kind, text)
    assert "an uppercut GIF" in wording.description("uppercut", "gif")
    with pytest.raises(ValueError):
        wording.description("hug", "video")


# -- unknown categories -------------------------------------------------------------------------


@pytest.mark.parametrize("category", ["glomp", "uppercut", "thumbs_up", "we*ird_`name`", ""])
def test_unknown_category_never_fails(category: str) -> None:
    for case in Case:
        target = B if case in (Case.OTHER, Case.SEVERAL) else None
        text = wording.action_sentence(category, case, actor=A, target=target)
        assert text.strip() and A in text
        assert (B in text) is (case in (Case.OTHER, Case.SEVERAL))
        assert "{" not in text
    assert A in wording.image_line(category, actor=A)
    assert wording.return_label(category) is None


def test_unknown_category_reads_naturally() -> None:
    assert wording.action_sentence("glomp", Case.OTHER, actor="**A**", target="**B**") == (
        "****A**** sends a *glomp* to ****B****"
    )
    assert "an *uppercut*" in wording.action_sentence("uppercut", Case.NONE, actor=A)
    # Markdown in an unknown category's name cannot break out of its italics.
    text = wording.action_sentence("we*ird", Case.NONE, actor=A)
    assert "*we\\*ird*" in text


# -- images -------------------------------------------------------------------------------------


@pytest.mark.parametrize("category", IMAGE_CATEGORIES)
def test_image_lines(category: str) -> None:
    lines = RAW["image"][category]["line"]
    assert lines
    rng = random.Random(3)
    for _ in range(5):
        text = wording.image_line(category, actor=A, rng=rng)
        assert text in [line.format_map({"a": A}) for line in lines]
        assert category in text.lower()
    assert "Here's a neko for you, **Alice**~" in [
        line.format_map({"a": "Alice"}) for line in RAW["image"]["neko"]["line"]
    ]


# -- names are values, never templates ----------------------------------------------------------

TRICKY_NAMES = ["{b}", "{a}{0}{}", "{x.__class__}", "}{", "**bold**", "\\_under\\_", "%s %(a)s"]


@pytest.mark.parametrize("name", TRICKY_NAMES)
def test_names_pass_through_literally(name: str) -> None:
    for category in ["hug", "sleep", "glomp"]:
        for case in Case:
            target = "other" if case in (Case.OTHER, Case.SEVERAL) else None
            text = wording.action_sentence(category, case, actor=name, target=target)
            assert name in text
            if case in (Case.OTHER, Case.SEVERAL):
                text = wording.action_sentence(category, case, actor="me", target=name)
                assert name in text
    assert name in wording.image_line("neko", actor=name)
    assert name in wording.message("error_not_your_button", name=name)


# -- messages -----------------------------------------------------------------------------------


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def test_every_message_formats_and_fits() -> None:
    assert MESSAGES
    for key, template in MESSAGES.items():
        assert isinstance(template, str), key
        fields = {name: f"<{name}>" for name in _placeholders(template)}
        text = wording.message(key, **fields)
        assert text.strip(), key
        assert len(text) <= 2000, key
        assert wording.has_message(key)
        for name in fields:
            assert f"<{name}>" in text, (key, name)


def test_message_limits_by_kind() -> None:
    for key, template in MESSAGES.items():
        if key.startswith(("command_", "option_")):
            assert 1 <= len(template) <= 100, key
        if key.startswith("menu_"):
            assert 1 <= len(template) <= 32, key
        if key.startswith("label_"):
            assert len(template) <= 80, key
        if key.endswith("_title") or key.startswith("field_"):
            assert len(template) <= 256, key


FIXED_COMMANDS = ["search", "source", "action", "image", "stats", "optout", "optin", "forgetme"]


def test_fixed_commands_are_described_and_in_help() -> None:
    help_text = wording.message("help_commands")
    for name in [*FIXED_COMMANDS, "help"]:
        assert 1 <= len(wording.message(f"command_{name}")) <= 100, name
        assert f"`/{name}`" in help_text, name
    assert wording.message("menu_image_credit") == "Image credit"
    for name in ["Hug", "Pat", "Cuddle", "Kiss", "Poke", "High-five"]:
        assert wording.message("menu_action", action=name) == name


def test_keys_other_modules_use() -> None:
    """The keys the renderer and the error path ask for, with the fields they pass."""
    assert wording.message("error_rate_limited", seconds=3) == (
        "nekos.best is busy right now — try again in 3 s."
    )
    assert wording.message(
        "counter_line", target="Bob", total=7, noun=wording.noun("hug", 7), pair=3, actor="Alice"
    ) == ("Bob has received 7 hugs — 3 from Alice")
    assert "“cats”" in wording.message("search_title", query="cats", count=2)
    assert wording.message("stats_row", given=1, received=2)
    assert wording.message("error_query_length", min=3, max=150) == (
        "Search text must be 3–150 characters."
    )
    assert "“cats”" in wording.message("search_no_results", query="cats")
    example = "https://nekos.best/api/v2/neko/<id>.png"
    assert example in wording.message("error_not_nekos_url", example=example)
    assert wording.message("error_option_range", option="amount", min=1, max=10) == (
        "`amount` must be from 1 to 10."
    )
    assert wording.message("error_option_length", option="message", min=1, max=200) == (
        "`message` must be 1–200 characters long."
    )
    assert wording.message("error_target_opted_out", name="<@1>") == (
        "<@1> has opted out of actions."
    )
    for key in [
        "label_another",
        "label_source",
        "label_returned",
        "label_invite",
        "credit_title",
        "credit_unknown",
        "field_anime",
        "field_artist",
        "field_source",
        "error_asset_missing",
        "error_unavailable",
        "error_internal",
        "error_bad_option",
        "error_unreadable",
        "error_command_gone",
        "error_guild_only",
        "error_not_allowed",
        "error_restarting",
        "help_title",
        "help_intro",
        "help_actions",
        "help_images",
        "help_other",
        "help_commands",
        "help_footer",
        "stats_empty",
        "stats_actions",
        "stats_partners",
        "dm_note",
        "error_no_links",
        "error_store",
        "error_already_returned",
        "error_reroll_expired",
        "optout_done",
        "optin_done",
        "forget_done",
        "option_user",
        "option_message",
        "option_amount",
    ]:
        assert wording.message(key), key


def test_message_errors_are_clear() -> None:
    assert not wording.has_message("no_such_key")
    with pytest.raises(KeyError, match="no_such_key"):
        wording.message("no_such_key")
    with pytest.raises(KeyError, match="seconds"):
        wording.message("error_rate_limited")
    assert wording.message("error_category_gone", category="glomp", extra="ignored")


# -- the loader refuses broken data -------------------------------------------------------------


def _broken(category: str, case: str, variants: object) -> dict:
    data = _raw_actions()
    data["gif"][category][case] = variants
    return data


@pytest.mark.parametrize(
    ("case", "variants", "complaint"),
    [
        ("other", ["**{a}** hugs nobody"], "{b}"),
        ("self", ["**{a}** hugs **{b}**"], "{b}"),
        ("none", [], "non-empty"),
        ("bot", ["   "], "non-empty"),
        ("none", ["**{a}** hugs {c}"], "{c}"),
        ("none", ["**{a!r}** hugs"], "conversion"),
        ("none", ["**{a.x}** hugs"], "plain name"),
        ("none", ["**{a}** hugs {"], "malformed"),
    ],
)
def test_broken_table_is_refused_with_its_location(
    case: str, variants: object, complaint: str
) -> None:
    with pytest.raises(WordingError) as caught:
        tables._parse_actions(_broken("hug", case, variants))
    assert "gif.hug" in str(caught.value) and repr(case) in str(caught.value)
    assert complaint in str(caught.value)


def test_missing_case_and_long_labels_are_refused() -> None:
    data = _raw_actions()
    del data["gif"]["pat"]["bot"]
    with pytest.raises(WordingError, match=r"gif\.pat.*bot"):
        tables._parse_actions(data)
    data = _raw_actions()
    data["gif"]["pat"]["return_label"] = "P" * 31
    with pytest.raises(WordingError, match=r"gif\.pat.*return_label"):
        tables._parse_actions(data)
    data = _raw_actions()
    data["gif"]["pat"]["descripton"] = "typo"
    with pytest.raises(WordingError, match="descripton"):
        tables._parse_actions(data)


def test_broken_messages_are_refused() -> None:
    with pytest.raises(WordingError, match="oops"):
        tables._parse_messages({"oops": "{0}"})
    with pytest.raises(WordingError, match="nested"):
        tables._parse_messages({"nested": {"key": "value"}})
    with pytest.raises(WordingError, match="empty"):
        tables._parse_messages({"empty": ""})


def test_every_key_the_code_asks_for_exists() -> None:
    """A literal key in `message("…")` / `UserError("…")` anywhere in bot/ or cogs/ exists."""
    root = Path(__file__).resolve().parent.parent
    call = re.compile(r"\b(?:message|has_message|UserError)\(\s*\"([a-z0-9_]+)\"")
    missing = [
        f"{path.relative_to(root)}: {key}"
        for folder in ("bot", "cogs")
        for path in sorted((root / folder).rglob("*.py"))
        if "wording" not in path.parts
        for key in call.findall(path.read_text(encoding="utf-8"))
        if not wording.has_message(key)
    ]
    assert not missing, missing
