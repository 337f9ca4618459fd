"""Fixtures of the container tests: podman (with scripts/container.sh's containers.conf and
base image) and the image built from the checkout, both once per session so that every module
runs the same image and it is built once; plus a unique container name removed afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.container.podman import SCRIPT, Image, Podman, unique


@pytest.fixture(scope="session")
def podman() -> Podman:
    if shutil.which("podman") is None:
        reason = "podman is not installed (`scripts/container.sh tools` installs it on Debian)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    conf = subprocess.run(
        [str(SCRIPT), "conf"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    env = {**os.environ, "CONTAINERS_CONF": conf}
    base = subprocess.run(
        [str(SCRIPT), "base"], env=env, capture_output=True, text=True, timeout=480
    )
    assert base.returncode == 0, base.stderr[-3000:]
    return Podman(env)


@pytest.fixture(scope="session")
def image(podman: Podman) -> Iterator[Image]:
    tag = f"localhost/{unique('image')}:latest"
    started = time.monotonic()
    output = podman.build(tag)
    try:
        yield Image(tag, output, time.monotonic() - started)
    finally:
        podman.remove_image(tag, output)


@pytest.fixture
def container_name(podman: Podman) -> Iterator[str]:
    name = unique("run")
    try:
        yield name
    finally:
        podman.run("rm", "--force", "--volumes", name, check=False)
