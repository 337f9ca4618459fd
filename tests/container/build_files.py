"""Readers for the files that decide what the image and CI install: the lock files written by
scripts/lock.sh (uv's requirements format, with hashes and `# via` notes), pyproject.toml's
requirements and the Dockerfile's instructions."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
PROJECT = "nekocord (pyproject.toml)"  # how uv names pyproject.toml in a `# via` note


@dataclass
class Pin:
    name: NormalizedName
    version: Version
    marker: Marker | None
    hashes: set[str] = field(default_factory=set)
    via: set[str] = field(default_factory=set)

    def applies(self, environment: dict[str, str] | None = None) -> bool:
        return self.marker is None or self.marker.evaluate(environment)


def read_lock(path: Path) -> dict[NormalizedName, Pin]:
    pins: dict[NormalizedName, Pin] = {}
    current: Pin | None = None
    in_via = False
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        if not line.startswith((" ", "#")):
            requirement = Requirement(line.rstrip(" \\"))
            (spec,) = requirement.specifier  # exactly one `==` per line
            assert spec.operator == "==", line
            current = Pin(
                canonicalize_name(requirement.name), Version(spec.version), requirement.marker
            )
            assert current.name not in pins, f"{path.name}: {current.name} pinned twice"
            pins[current.name] = current
            in_via = False
        elif current is not None and (found := re.search(r"--hash=(\S+)", line)):
            current.hashes.add(found.group(1))
        elif current is not None and (found := re.match(r"\s*# via ?(.*)$", line)):
            in_via = True
            if found.group(1):
                current.via.add(found.group(1).strip())
        elif current is not None and in_via and (found := re.match(r"\s*#   (.+)$", line)):
            current.via.add(found.group(1).strip())
    return pins


def pyproject_requirements(*extras: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = list(project.get("dependencies", []))
    for extra in extras:
        texts += project.get("optional-dependencies", {}).get(extra, [])
    return [Requirement(text) for text in texts]


@dataclass
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY...
    arguments: str  # continuation lines joined


def dockerfile_stages(path: Path = ROOT / "Dockerfile") -> list[list[Instruction]]:
    """The Dockerfile's instructions, one list per stage (each starts with its FROM)."""
    stages: list[list[Instruction]] = []
    logical = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, arguments = logical.partition(" ")
        instruction = Instruction(keyword.upper(), " ".join(arguments.split()))
        if instruction.keyword == "FROM":
            stages.append([])
        stages[-1].append(instruction)
        logical = ""
    return stages
