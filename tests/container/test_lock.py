"""The lock files pin what pyproject.toml asks for, and are the ones the image and CI install.

When one of these fails after a change to pyproject.toml, rerun `scripts/lock.sh`.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.container.build_files import (
    DEV_LOCK,
    PROJECT,
    ROOT,
    RUNTIME_LOCK,
    Pin,
    dockerfile_stages,
    pyproject_requirements,
    read_lock,
)

RELOCK = "pyproject.toml changed without relocking: run scripts/lock.sh"
LOCKS = {
    # lock file -> the pyproject extras it covers
    RUNTIME_LOCK: (),
    DEV_LOCK: ("dev",),
}


@pytest.fixture(params=list(LOCKS), ids=lambda path: path.name)
def lock(request: pytest.FixtureRequest) -> tuple[Path, tuple[str, ...]]:
    return request.param, LOCKS[request.param]


def test_every_pyproject_requirement_is_pinned_within_its_range(lock) -> None:
    path, extras = lock
    pins = read_lock(path)
    for requirement in pyproject_requirements(*extras):
        pin = pins.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{path.name} lacks {requirement}: {RELOCK}"
        assert requirement.specifier.contains(pin.version, prereleases=True), (
            f"{path.name} pins {pin.name}=={pin.version}, outside {requirement}: {RELOCK}"
        )


def test_nothing_is_locked_that_pyproject_no_longer_asks_for(lock) -> None:
    """Every pin is there for a requirement pyproject still has, or for another pin."""
    path, extras = lock
    pins = read_lock(path)
    direct = {canonicalize_name(r.name) for r in pyproject_requirements(*extras)}
    for pin in pins.values():
        if PROJECT in pin.via:
            assert pin.name in direct, f"{path.name} still pins {pin.name}: {RELOCK}"
        parents = {canonicalize_name(p) for p in pin.via if p != PROJECT and " " not in p}
        assert PROJECT in pin.via or parents & pins.keys(), (
            f"{path.name}: nothing requires {pin.name} any more: {RELOCK}"
        )


def test_every_pin_is_exact_and_hashed(lock) -> None:
    path, _ = lock
    pins = read_lock(path)
    assert pins, path
    for pin in pins.values():
        assert pin.hashes and all(h.startswith("sha256:") for h in pin.hashes), pin.name


def test_dev_lock_pins_the_bots_dependencies_as_the_image_does() -> None:
    runtime, dev = read_lock(RUNTIME_LOCK), read_lock(DEV_LOCK)
    for name, pin in runtime.items():
        assert name in dev, f"{DEV_LOCK.name} lacks {name}: run scripts/lock.sh"
        assert (dev[name].version, dev[name].hashes) == (pin.version, pin.hashes), name


def test_the_image_and_ci_install_from_the_locks() -> None:
    final = dockerfile_stages()[-1]
    runs = [i.arguments for i in final if i.keyword == "RUN" and "pip install" in i.arguments]
    assert any(
        re.search(r"pip install --require-hashes -r \S*requirements\.lock", run) for run in runs
    ), runs
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"pip install .*--require-hashes -r requirements-dev\.lock", ci)
    assert re.search(r"pip install .*--no-deps -e \.", ci)
    assert "pip check" in ci


def _installed_mismatches(pins: dict[str, Pin]) -> list[str]:
    problems = []
    for pin in pins.values():
        if not pin.applies():
            continue
        try:
            installed = importlib.metadata.version(pin.name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{pin.name} is not installed")
            continue
        if str(pin.version) != installed:
            problems.append(f"{pin.name} {installed} installed, {pin.version} locked")
    return problems


def test_this_environment_runs_the_locked_versions() -> None:
    """CI (.ci/run) installs requirements-dev.lock: the tests run the versions the image gets.
    The lock must also be complete: every locked distribution's own requirements are locked."""
    pins = read_lock(DEV_LOCK)
    problems = _installed_mismatches(pins)
    if problems and os.environ.get("CI") != "true":
        pytest.skip(
            "this environment was not installed from requirements-dev.lock "
            f"({'; '.join(problems[:3])}); .ci/run does"
        )
    assert not problems, problems
    for pin in pins.values():
        if not pin.applies():
            continue
        for text in importlib.metadata.requires(pin.name) or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            needed = pins.get(canonicalize_name(requirement.name))
            assert needed is not None, f"{pin.name} needs {requirement}: run scripts/lock.sh"
            assert requirement.specifier.contains(needed.version, prereleases=True), (
                pin.name,
                requirement,
                needed.version,
            )
