"""Rendering deploy/helm/nekocord with the pinned helm (scripts/helm.sh), and reading what it
renders: the tests of tests/helm share these."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "nekocord"
HELM_SCRIPT = ROOT / "scripts" / "helm.sh"
VALUE_SETS = sorted((CHART / "ci").glob("*-values.yaml"))
RELEASE = "nekocord"
# The Kubernetes versions the chart supports: Chart.yaml's kubeVersion (the pod-index label
# came in 1.28) to the newest schemas kubernetes-validate ships.
OLDEST, NEWEST = "1.28.0", "1.37.0"

Manifest = dict[str, Any]


def helm() -> str:
    """The pinned helm's path; skips without it (fails under CI=true: .ci/run installs it)."""
    found = subprocess.run([str(HELM_SCRIPT), "path"], capture_output=True, text=True)
    if found.returncode != 0:
        reason = "helm is not installed: run scripts/helm.sh install"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found.stdout.strip()


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm(), *args], capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )


def render_text(values: Path | None = None, *sets: str, kube_version: str = NEWEST) -> str:
    args = ["template", RELEASE, str(CHART), "--kube-version", kube_version]
    if values is not None:
        args += ["-f", str(values)]
    for item in sets:
        args += ["--set", item]
    result = run_helm(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def render(values: Path | None = None, *sets: str, kube_version: str = NEWEST) -> list[Manifest]:
    """Every object the chart renders with these values."""
    text = render_text(values, *sets, kube_version=kube_version)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def value_set(name: str) -> Path:
    path = CHART / "ci" / f"{name}-values.yaml"
    assert path.is_file(), path
    return path


def one(manifests: list[Manifest], kind: str) -> Manifest:
    (found,) = [m for m in manifests if m["kind"] == kind]
    return found


def kinds(manifests: list[Manifest]) -> list[str]:
    return sorted(m["kind"] for m in manifests)


def container(manifests: list[Manifest]) -> Manifest:
    (bot,) = one(manifests, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    return bot


def env_of(manifests: list[Manifest]) -> dict[str, Any]:
    """The bot container's env, by name: a plain value, or its `valueFrom`."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(manifests)["env"]}
