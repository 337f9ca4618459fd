"""Running podman for the container tests: the `Podman` wrapper (with the private
containers.conf of scripts/container.sh), unique names for what a test creates, and waiting for
a container's output. The fixtures that build the image once per session are in conftest.py."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.container.build_files import ROOT

SCRIPT = ROOT / "scripts" / "container.sh"


def unique(prefix: str) -> str:
    return f"nekocord-test-{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Podman:
    """podman with this environment (CONTAINERS_CONF): `run` checks the exit code, `arun` awaits."""

    env: dict[str, str]

    def run(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"podman {' '.join(args)}: exit {result.returncode}\n{result.stderr}"
            )
        return result

    async def arun(self, *args: str, timeout: float = 60) -> tuple[int, str, str]:
        """As `run`, without blocking the event loop the stand-ins answer from."""
        process = await asyncio.create_subprocess_exec(
            "podman",
            *args,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    def build(self, tag: str, context: Path = ROOT) -> str:
        result = subprocess.run(
            [str(SCRIPT), "build", tag],
            env={**self.env, "CONTEXT": str(context)},
            capture_output=True,
            text=True,
            timeout=480,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout

    def remove_image(self, tag: str, build_output: str) -> None:
        """The tag (podman only untags an image that has others), then the intermediate images
        this build made; those it took from the cache belong to earlier builds and stay."""
        self.run("rmi", tag, check=False)
        for image_id in reversed(made_by_build(build_output)):
            self.run("rmi", image_id, check=False)


def made_by_build(output: str) -> list[str]:
    made, cached = [], False
    for line in output.splitlines():
        if re.match(r"(?:\[\d+/\d+\] )?STEP \d+/\d+: ", line):
            cached = False
        elif line.startswith("--> Using cache"):
            cached = True
        elif (found := re.fullmatch(r"--> ([0-9a-f]{11,64})", line)) and not cached:
            made.append(found.group(1))
    return made


async def wait_for_log(podman: Podman, name: str, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        _, out, err = await podman.arun("logs", name)
        if text in out + err:
            return out + err
        _, running, _ = await podman.arun("inspect", "--format", "{{.State.Running}}", name)
        if running.strip() != "true":
            raise AssertionError(f"the container stopped before {text!r}:\n{out}{err}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{text!r} not in the container's output:\n{out}{err}")
        await asyncio.sleep(0.25)


@dataclass
class Image:
    """The image built from the checkout (conftest.py's `image` fixture)."""

    tag: str
    build_output: str
    build_seconds: float
