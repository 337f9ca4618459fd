"""SQLite's `/config` change as one statement: the stored JSON is changed by SQLite's JSON
functions inside the upsert (never read into Python and written back), and rebuilt whole, so the
text stays exactly what `encode_settings` writes (keys sorted, compact, `disabled` sorted and
unique): equal settings store equal text.

A stored row the codec would refuse is changed as the defaults are: `_readable` is the codec's
checks (`bot.store.settings_codec`, `GuildSettings`) in SQL, and anything it refuses is taken as
`{}` by the statement. The returned text is still decoded by the codec, which has the last word.
"""

from __future__ import annotations

import json
import sqlite3

from bot.store.checks import MAX_ID
from bot.store.settings import MAX_CHANNELS, MAX_DISABLED, GuildSettings, SettingsChange
from bot.store.settings_codec import MAX_SETTINGS_CHARS, decode_settings, encode_settings

__all__ = [
    "BOOLEANS",
    "CHANGE_SETTINGS",
    "change_parameters",
    "change_settings",
    "change_statement",
]

# The boolean settings: JSON key (also the `SettingsChange` field and the statement's parameter)
# -> (its default, whether `encode_settings` leaves the key out at the default). One more boolean
# setting is one more entry here.
BOOLEANS: dict[str, tuple[bool, bool]] = {"pings": (True, False), "leaderboard": (True, True)}

_STORED = "guild_settings.settings"


def _member(key: str) -> str:
    """The stored (readable) object's value at `key` (the last one, as Python's parser takes
    it), NULL when missing; an array comes as JSON text."""
    return f"(SELECT value FROM json_each(base.doc) WHERE key = '{key}' ORDER BY id DESC LIMIT 1)"


def _all(array: str, condition: str) -> str:
    return f"NOT EXISTS (SELECT 1 FROM json_each({array}) WHERE NOT ({condition}))"


_INTEGER = "type = 'integer' AND typeof(value) = 'integer'"  # past 64 bits SQLite reads a real
_NAME = "type = 'text' AND length(value) BETWEEN 1 AND 64"
_CHANNEL = f"{_INTEGER} AND value BETWEEN 0 AND {MAX_ID}"
_COOLDOWN_VALUE = f"{_INTEGER} AND value BETWEEN 0 AND {2**31 - 1}"


def _array_of(element: str, extra: str) -> str:
    """A member that is an array of such elements; a CASE, as SQLite's AND may evaluate both
    sides and json_each of a non-array member's value (plain text) is an error."""
    return f"CASE WHEN m.type = 'array' THEN {_all('m.value', element)} AND {extra} ELSE 0 END"


def _at_most(count: int) -> str:
    return f"(SELECT count(DISTINCT value) FROM json_each(m.value)) <= {count}"


_ARRAY_CHECKS = {
    "disabled": _array_of(_NAME, _at_most(MAX_DISABLED)),
    "channels": _array_of(_CHANNEL, _at_most(MAX_CHANNELS)),
    "cooldown": "m.type = 'null' OR "
    + _array_of(_COOLDOWN_VALUE, "json_array_length(m.value) = 2"),
}
_ARRAY_VALUES = {
    "channels": f"""CASE WHEN :channels IS NOT NULL THEN json(:channels) ELSE (
        SELECT json_group_array(value) FROM (
            SELECT value FROM json_each({_member("channels")}) GROUP BY value ORDER BY min(id)
        )) END""",
    "cooldown": f"json(CASE WHEN :set_cooldown THEN :cooldown ELSE {_member('cooldown')} END)",
    "disabled": f"""(SELECT json_group_array(name) FROM (
        SELECT value AS name FROM json_each({_member("disabled")})
        UNION SELECT value FROM json_each(:disable)
        EXCEPT SELECT value FROM json_each(:enable)
        ORDER BY name))""",
}


def _readable(booleans: dict[str, tuple[bool, bool]]) -> str:
    """The stored text when the codec would read it, else NULL. A CASE, so that each test runs
    only on text that passed the ones before (json_valid never sees more than the size limit)."""
    checks = _ARRAY_CHECKS | {key: "m.type IN ('true', 'false')" for key in booleans}
    members = " ".join(f"WHEN '{key}' THEN {check}" for key, check in checks.items())
    return f"""CASE
    WHEN typeof({_STORED}) <> 'text' OR length({_STORED}) > {MAX_SETTINGS_CHARS} THEN NULL
    WHEN NOT json_valid({_STORED}) THEN NULL
    WHEN json_type({_STORED}) <> 'object' THEN NULL
    WHEN EXISTS (SELECT 1 FROM json_each({_STORED}) AS m WHERE NOT CASE m.key
        {members} ELSE 0 END) THEN NULL
    ELSE {_STORED} END"""


def _document(booleans: dict[str, tuple[bool, bool]]) -> str:
    """The changed settings' JSON, keys in encode_settings' order (sorted)."""
    values = _ARRAY_VALUES | {
        key: f"json(CASE WHEN coalesce(:{key}, {_member(key)}, {int(default)})"
        " THEN 'true' ELSE 'false' END)"
        for key, (default, _) in booleans.items()
    }
    document = "json_object({})".format(
        ", ".join(f"'{key}', {value}" for key, value in sorted(values.items()))
    )
    for key, (default, omitted) in booleans.items():
        if omitted:  # left out at its default, as encode_settings does
            document = (
                f"(SELECT CASE WHEN json_extract(d.doc, '$.{key}') = {int(default)}"
                f" THEN json_remove(d.doc, '$.{key}') ELSE d.doc END"
                f" FROM (SELECT {document} AS doc) AS d)"
            )
    return document


def change_statement(booleans: dict[str, tuple[bool, bool]]) -> str:
    """The upsert for these boolean settings. A guild without a row gets the change made to the
    defaults (`:fresh`, computed in Python as PostgreSQL's statement gets them); a stored row is
    changed where it is, under the write lock, a row the codec would refuse as `{}`."""
    return f"""
INSERT INTO guild_settings (guild_id, settings, updated_at) VALUES (:guild_id, :fresh, :now)
ON CONFLICT (guild_id) DO UPDATE SET
    settings = (
        SELECT {_document(booleans)}
        FROM (SELECT coalesce({_readable(booleans)}, '{{}}') AS doc) AS base
    ),
    updated_at = excluded.updated_at
RETURNING settings
"""


CHANGE_SETTINGS = change_statement(BOOLEANS)


def change_parameters(
    *, guild_id: int, change: SettingsChange, now: int, fresh: str
) -> dict[str, object]:
    """The statement's parameters (`:<key>` for each boolean, None to keep the stored value)."""
    parameters: dict[str, object] = {
        "guild_id": guild_id,
        "now": now,
        "fresh": fresh,
        "disable": json.dumps(sorted(change.disable)),
        "enable": json.dumps(sorted(change.enable)),
        "channels": None if change.channels is None else json.dumps(list(change.channels)),
        "set_cooldown": change.default_cooldown or change.cooldown is not None,
        "cooldown": None if change.cooldown is None else json.dumps(list(change.cooldown)),
    }
    for key in BOOLEANS:
        parameters[key] = getattr(change, key)
    return parameters


def change_settings(
    conn: sqlite3.Connection, *, guild_id: int, change: SettingsChange, now: int
) -> GuildSettings:
    fresh = encode_settings(change.applied_to(GuildSettings()))
    parameters = change_parameters(guild_id=guild_id, change=change, now=now, fresh=fresh)
    ((text,),) = conn.execute(CHANGE_SETTINGS, parameters).fetchall()
    # Strict: a result the codec refuses (more names than a guild may turn off) raises, and the
    # transaction is rolled back with the stored row as it was.
    return decode_settings(text)
