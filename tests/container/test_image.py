"""The image, built with podman from the Dockerfile and run: against the loopback stand-ins on
the host network it answers /hug as uid 10001, reports healthy and stops cleanly; without a
token it exits 2 with one line; it holds one copy of the app and exactly the locked versions;
and a README edit does not rebuild the dependency layer.

Deselected from a plain `pytest` (marker `container`); .ci/run runs it as its own step:

    scripts/container.sh tools && pytest -m container tests/container

scripts/container.sh builds the image (and, where no registry answers, a stand-in for
python:3.11-slim). Without podman the test is skipped, except under CI=true, where it fails.
Everything it creates has a unique name and is removed afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path

import pytest

from tests.container.build_files import ROOT, RUNTIME_LOCK, dockerfile_stages, read_lock
from tests.container.podman import Image, Podman, unique, wait_for_log
from tests.container.test_dockerfile import copied_sources
from tests.fakes.discord import FakeDiscord, make_user
from tests.fakes.nekos import FakeNekos
from tests.harness import TOKEN, bot_env

pytestmark = [pytest.mark.container, pytest.mark.timeout(600)]

# What the base image brings besides the lock: the installers themselves.
BASE_TOOLS = {"pip", "setuptools", "wheel"}


def build_steps(output: str) -> list[tuple[str, bool]]:
    """(instruction, taken from the cache) for each step podman's build output shows."""
    steps: list[tuple[str, bool]] = []
    for line in output.splitlines():
        if found := re.match(r"(?:\[\d+/\d+\] )?STEP \d+/\d+: (.*)$", line):
            steps.append((" ".join(found.group(1).split()), False))
        elif line.startswith("--> Using cache") and steps:
            steps[-1] = (steps[-1][0], True)
    return steps


def inside(podman: Podman, image: Image, script: str) -> object:
    """Run a Python snippet in a throwaway container of the image; its printed JSON."""
    result = podman.run("run", "--rm", "--network", "none", image.tag, "python", "-c", script)
    return json.loads(result.stdout)


def test_image_config_keeps_user_healthcheck_and_exec_form(podman: Podman, image: Image) -> None:
    (info,) = json.loads(podman.run("image", "inspect", image.tag).stdout)
    config = info["Config"]
    assert config["User"] == "10001:10001"  # numeric: runAsNonRoot can check it
    assert config["Cmd"] == ["python", "-m", "bot"] and not config.get("Entrypoint")
    # Kept only because the build uses the docker format (the OCI format drops it). podman
    # shows it next to Config, docker inside it.
    healthcheck = info.get("Healthcheck") or config.get("Healthcheck") or {}
    assert healthcheck.get("Test") == ["CMD", "python", "-m", "bot.health"], info


def test_without_a_token_exits_2_with_one_line(
    podman: Podman, image: Image, container_name: str
) -> None:
    run = podman.run("run", "--name", container_name, image.tag, check=False, timeout=60)
    assert run.returncode == 2, run.stderr
    # `podman logs` shows the container's own output, without podman's warnings.
    logs = podman.run("logs", container_name)
    lines = (logs.stdout + logs.stderr).strip().splitlines()
    assert len(lines) == 1 and "DISCORD_TOKEN" in lines[0], lines
    assert "Traceback" not in lines[0]


PID_1 = """
import json, os
status = dict(line.split(":", 1) for line in open("/proc/1/status"))
print(json.dumps({
    "uid": int(status["Uid"].split()[0]),
    "argv": open("/proc/1/cmdline").read().split("\\0")[:-1],
}))
"""


async def test_answers_hug_on_the_host_network_as_uid_10001_healthy_then_stops_cleanly(
    podman: Podman, image: Image, container_name: str
) -> None:
    async with FakeDiscord(token=TOKEN) as discord_api, FakeNekos() as nekos:
        env = bot_env(discord_api, nekos, Path("/data"))
        settings = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
        code, _, err = await podman.arun(
            "run", "--detach", "--name", container_name, "--network", "host", *settings, image.tag
        )
        assert code == 0, err
        await wait_for_log(podman, container_name, "Ready as")

        code, out, err = await podman.arun("exec", container_name, "python", "-c", PID_1)
        assert code == 0, err
        assert json.loads(out) == {"uid": 10001, "argv": ["python", "-m", "bot"]}

        code, out, err = await podman.arun("healthcheck", "run", container_name)
        assert code == 0, out + err

        bob = make_user(name="bob")
        handle = await discord_api.interact(discord_api.slash("hug", {"user": bob}))
        message = await handle.wait_message(timeout=20)
        assert message["content"] == f"<@{bob['id']}>"
        assert message["embeds"][0]["image"]["url"].startswith(nekos.base_url + "/hug/")

        started = time.monotonic()
        code, _, err = await podman.arun("stop", "--time", "10", container_name)
        took = time.monotonic() - started
        assert code == 0, err
        _, exit_code, _ = await podman.arun(
            "inspect", "--format", "{{.State.ExitCode}}", container_name
        )
        _, out, err = await podman.arun("logs", container_name)
    logs = out + err
    assert exit_code.strip() == "0", logs
    assert took < 5, took
    assert "Stopped cleanly" in logs
    assert TOKEN not in logs


APP_FILES = """
import json, os, bot, cogs
hits = []
for directory, subdirs, files in os.walk("/"):
    subdirs[:] = [s for s in subdirs if os.path.join(directory, s) not in ("/proc", "/sys", "/dev")]
    if directory.endswith("/bot") and "__main__.py" in files:
        hits.append(directory + "/__main__.py")
    if directory.endswith("/cogs") and "actions.py" in files:
        hits.append(directory + "/actions.py")
print(json.dumps({"bot": bot.__file__, "cogs": cogs.__file__, "hits": sorted(hits)}))
"""


def test_the_app_is_in_site_packages_once(podman: Podman, image: Image) -> None:
    found = inside(podman, image, APP_FILES)
    assert isinstance(found, dict)
    site = os.path.dirname(os.path.dirname(found["bot"]))
    assert site.endswith("/site-packages"), found
    assert found["cogs"].startswith(site + "/"), found
    assert found["hits"] == [f"{site}/bot/__main__.py", f"{site}/cogs/actions.py"], found


def test_installed_distributions_are_exactly_the_lock(podman: Podman, image: Image) -> None:
    found = inside(
        podman,
        image,
        "import json, platform, importlib.metadata as m\n"
        "print(json.dumps({'python': platform.python_version(),"
        " 'dists': {d.metadata['Name']: d.version for d in m.distributions()}}))",
    )
    assert isinstance(found, dict)
    environment = {
        "python_version": ".".join(found["python"].split(".")[:2]),
        "python_full_version": found["python"],
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_python_implementation": "CPython",
        "implementation_name": "cpython",
    }
    locked = {
        name: str(pin.version)
        for name, pin in read_lock(RUNTIME_LOCK).items()
        if pin.applies(environment)
    }
    installed = {re.sub(r"[-_.]+", "-", name).lower(): v for name, v in found["dists"].items()}
    assert installed.pop("nekocord", None), installed
    for tool in BASE_TOOLS:
        installed.pop(tool, None)
    assert installed == locked


def test_a_readme_edit_keeps_the_dependency_layer(
    podman: Podman, image: Image, tmp_path: Path
) -> None:
    """Rebuild from a copy of the build context whose README changed: the app is rebuilt and
    carries the edit, the dependency layer comes from the cache (nothing is downloaded again)."""
    context = tmp_path / "context"
    context.mkdir()
    sources = {"Dockerfile", ".dockerignore"}
    for stage in dockerfile_stages():
        for instruction in stage:
            if instruction.keyword == "COPY" and "--from" not in instruction.arguments:
                sources |= copied_sources(instruction)
    for source in sources:
        if (ROOT / source).is_dir():
            shutil.copytree(
                ROOT / source, context / source, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(ROOT / source, context / source)
    edit = f"An edit ({uuid.uuid4().hex})."
    with open(context / "README.md", "a") as readme:
        readme.write(f"\n{edit}\n")
    tag = f"localhost/{unique('readme')}:latest"
    output = ""
    try:
        output = podman.build(tag, context)
        steps = build_steps(output)
        dependencies = [cached for step, cached in steps if "-r /tmp/requirements.lock" in step]
        readme = [cached for step, cached in steps if re.match(r"COPY .*README\.md", step)]
        assert dependencies == [True], steps
        assert readme == [False], steps  # the edit was seen
        assert "Collecting" not in output and "Downloading" not in output
        # ...and reached the image (the README is the package's long description).
        description = podman.run(
            "run",
            "--rm",
            "--network",
            "none",
            tag,
            "python",
            "-c",
            "import importlib.metadata as m; print(m.metadata('nekocord')['Description'])",
        ).stdout
        assert edit in description
    finally:
        podman.remove_image(tag, output)
