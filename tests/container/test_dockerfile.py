"""The Dockerfile's layering, read statically (tests/container/test_image.py builds and runs it).

- The dependency layer is built from the lock file alone: editing the README, pyproject.toml or
  the code does not re-download every dependency.
- The app is installed once, into site-packages, from a wheel built in a stage of its own,
  without touching the dependencies; no source tree is copied into the image for
  `python -m bot` to pick up instead.
"""

from __future__ import annotations

import re

from tests.container.build_files import Instruction, dockerfile_stages

APP_SOURCES = {"bot", "cogs", "pyproject.toml", "README.md", "."}


def copied_sources(instruction: Instruction) -> set[str]:
    words = [w for w in instruction.arguments.split() if not w.startswith("--")]
    return {w.rstrip("/").removeprefix("./") or "." for w in words[:-1]}


def final_stage() -> list[Instruction]:
    return dockerfile_stages()[-1]


def dependency_install_index(stage: list[Instruction]) -> int:
    (index,) = [
        n
        for n, i in enumerate(stage)
        if i.keyword == "RUN" and re.search(r"pip install .*-r \S*requirements\.lock", i.arguments)
    ]
    return index


def test_the_base_image_is_unchanged() -> None:
    for stage in dockerfile_stages():
        assert re.fullmatch(r"python:3\.11-slim( AS \w+)?", stage[0].arguments), stage[0]


def test_dependency_layer_is_built_from_the_lock_file_alone() -> None:
    stage = final_stage()
    index = dependency_install_index(stage)
    before = [i for i in stage[:index] if i.keyword in ("COPY", "ADD")]
    assert [copied_sources(i) for i in before] == [{"requirements.lock"}], before
    assert "--require-hashes" in stage[index].arguments


def test_the_app_is_installed_without_dependencies_after_them() -> None:
    stage = final_stage()
    index = dependency_install_index(stage)
    app = [i for i in stage[index + 1 :] if i.keyword == "RUN" and "pip install" in i.arguments]
    assert len(app) == 1, app
    assert "--no-deps" in app[0].arguments and ".whl" in app[0].arguments
    assert "pip check" in app[0].arguments


def test_no_source_tree_in_the_final_image() -> None:
    """Only the wheel stage sees bot/ and cogs/; the final image gets the wheel, installs it and
    deletes it in one step, so site-packages holds the only copy."""
    stage = final_stage()
    for instruction in stage:
        if instruction.keyword in ("COPY", "ADD"):
            assert not copied_sources(instruction) & APP_SOURCES, instruction
    wheels = [i for i in stage if i.keyword == "COPY" and "--from=" in i.arguments]
    assert len(wheels) == 1, wheels
    target = wheels[0].arguments.split()[-1]
    (install,) = [i for i in stage if i.keyword == "RUN" and target in i.arguments]
    assert f"rm -rf {target}" in install.arguments
    assert not any(i.keyword == "WORKDIR" for i in stage), "a WORKDIR invites a copy next to it"
    env = " ".join(i.arguments for i in stage if i.keyword == "ENV")
    assert "PYTHONSAFEPATH=1" in env  # `python -m bot` never imports from the working directory
