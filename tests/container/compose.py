"""Reading a compose file as `docker compose` does, for the few things the tests take from it:
YAML itself (anchors, aliases and `<<` merge keys) is PyYAML's; compose's own `${VAR}`
interpolation is done here, strictly: a form it does not know is an error, not left as is."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.container.build_files import ROOT

SCALE_FILE = ROOT / "docker-compose.scale.yml"

# `$$` (a literal `$`), or `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}`,
# `${NAME?error}`; any other `$` is refused.
_DOLLAR = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                     r"(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")  # fmt: skip


def load(path: Path = SCALE_FILE) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    if not isinstance(loaded, dict) or not isinstance(loaded.get("services"), dict):
        raise ValueError(f"{path.name}: no `services` mapping")
    return loaded


def variables_used(text: str) -> set[str]:
    """The names of every `${NAME...}` in `text`."""
    return {found["name"] for found in _DOLLAR.finditer(text) if found["name"]}


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Compose's substitution of `${...}` from `variables` (what compose reads from .env and
    the shell). `:-`/`:?` treat an empty value as unset, `-`/`?` only a missing one."""
    out, position = [], 0
    for found in _DOLLAR.finditer(text):
        if "$" in text[position : found.start()]:
            raise ValueError(f"unsupported `$` form in {text!r}")
        out.append(text[position : found.start()])
        position = found.end()
        if found["escaped"]:
            out.append("$")
            continue
        name, op, arg = found["name"], found["op"], found["arg"]
        value = variables.get(name)
        unset = value is None or (value == "" and op is not None and op.startswith(":"))
        if unset and op is not None and op.endswith("?"):
            raise ValueError(f"{name} is required: {arg}")
        if unset and op is not None and op.endswith("-"):
            value = arg
        out.append(value or "")
    if "$" in text[position:]:
        raise ValueError(f"unsupported `$` form in {text!r}")
    out.append(text[position:])
    return "".join(out)


def environment(
    compose: Mapping[str, Any], service: str, variables: Mapping[str, str]
) -> dict[str, str]:
    """A service's `environment:` mapping, interpolated. Values must be strings or numbers
    (compose refuses booleans and nulls there; YAML makes `yes` a boolean)."""
    declared = compose["services"][service].get("environment", {})
    if not isinstance(declared, dict):
        raise ValueError(f"{service}: `environment` is not a mapping")
    env = {}
    for name, value in declared.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"{service}: {name} must be a string, not {value!r}")
        env[str(name)] = interpolate(str(value), variables)
    return env
