"""deploy/helm/nekocord rendered with the pinned helm (no cluster): lint, Kubernetes' own
schemas of the oldest and newest supported version in strict mode, and what the rendered
objects must say. ServiceMonitor and CloudNativePG's Cluster are CRDs, which the schemas do not
know: their fields are checked here instead."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

import bot
from bot.app import SHUTDOWN_GRACE
from tests.helm.chart import (
    CHART,
    NEWEST,
    OLDEST,
    ROOT,
    VALUE_SETS,
    Manifest,
    container,
    env_of,
    kinds,
    one,
    render,
    render_text,
    run_helm,
    value_set,
)

CRDS = {"ServiceMonitor": "monitoring.coreos.com/v1", "Cluster": "postgresql.cnpg.io/v1"}
TOKEN = "MTAxMDEwMTAxMDEwMTAxMDEw.GabcDE.abcdefghijklmnopqrstuvwxyz012345"
DATABASE_URL = "postgresql://nekocord:ci-password@postgres.example:5432/nekocord"


def values_of(name: str) -> dict[str, Any]:
    return yaml.safe_load(value_set(name).read_text())


def test_there_are_the_value_sets_ci_renders() -> None:
    names = {path.name for path in VALUE_SETS}
    assert {"one-pod-values.yaml", "three-pods-values.yaml", "existing-secret-values.yaml"} <= names


def test_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == bot.__version__
    assert chart["kubeVersion"] == f">={OLDEST}-0"
    assert "dependencies" not in chart  # renders offline: no subcharts


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda p: p.stem)
def test_helm_lint_is_clean(values: Path) -> None:
    result = run_helm("lint", str(CHART), "--strict", "-f", str(values))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda p: p.stem)
def test_rendered_objects_match_the_kubernetes_schemas(values: Path, version: str) -> None:
    manifests = render(values, kube_version=version)
    validated = []
    for manifest in manifests:
        if manifest["kind"] in CRDS:
            assert manifest["apiVersion"] == CRDS[manifest["kind"]]
            continue
        kubernetes_validate.validate(manifest, version, strict=True)
        validated.append(manifest["kind"])
    assert {"StatefulSet", "Service", "PodDisruptionBudget"} <= set(validated)


def test_strict_validation_would_catch_an_unknown_field() -> None:
    statefulset = one(render(value_set("one-pod")), "StatefulSet")
    statefulset["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, NEWEST, strict=True)


def undocumented_keys(lines: list[str]) -> list[str]:
    """Keys without a comment: going up from a key, over its siblings and their blocks, the
    first line at its own indentation that is not a key must be a comment."""
    missing = []
    for number, line in enumerate(lines):
        key = re.match(r"^( *)([A-Za-z][A-Za-z0-9]*):", line)
        if not key:
            continue
        indent = len(key.group(1))
        for above in reversed(lines[:number]):
            depth = len(above) - len(above.lstrip())
            if not above.strip() or depth > indent:
                continue
            if depth == indent and re.match(r"^ *[A-Za-z][A-Za-z0-9]*:", above):
                continue  # a sibling: documented together
            if depth < indent or not above.lstrip().startswith("#"):
                missing.append(key.group(2))
            break
        else:
            missing.append(key.group(2))
    return missing


def test_values_yaml_documents_every_value() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    assert undocumented_keys(["a:", "  # doc", "  b: 1"]) == ["a"]  # the check itself
    assert not undocumented_keys(lines)
    schema = yaml.safe_load((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(defaults) <= set(schema["properties"])
    assert schema["additionalProperties"] is False  # a misspelt value is an error


# -- the pods' shards -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "pods", "count", "per_pod"),
    [("one-pod", 1, 2, 2), ("three-pods", 3, 12, 4), ("existing-secret", 2, 2, 1)],
)
def test_each_pod_gets_its_index_and_the_shard_split(
    name: str, pods: int, count: int, per_pod: int
) -> None:
    manifests = render(value_set(name))
    statefulset = one(manifests, "StatefulSet")
    assert statefulset["spec"]["replicas"] == pods
    assert statefulset["spec"]["podManagementPolicy"] == "Parallel"
    env = env_of(manifests)
    assert env["SHARD_COUNT"] == str(count)
    assert env["SHARDS_PER_POD"] == str(per_pod)
    assert env["POD_INDEX"] == {
        "fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}
    }
    assert "SHARD_IDS" not in env
    assert env["METRICS_HOST"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    service = one(manifests, "Service")
    assert service["spec"]["clusterIP"] == "None"
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]


def test_shards_that_do_not_split_evenly_are_refused() -> None:
    result = run_helm(
        "template", "x", str(CHART), "-f", str(value_set("one-pod")),
        "--set", "shards.count=5", "--set", "shards.pods=2",
    )  # fmt: skip
    assert result.returncode != 0
    assert "shards.count (5) must be a multiple of shards.pods (2)" in result.stderr


@pytest.mark.parametrize("variable", ["SHARD_IDS", "POD_INDEX", "DATABASE_URL", "METRICS_HOST"])
def test_settings_the_chart_owns_cannot_be_set_through_env(variable: str) -> None:
    result = run_helm(
        "template", "x", str(CHART), "-f", str(value_set("one-pod")), "--set", f"env.{variable}=1"
    )
    assert result.returncode != 0 and "SHARD_COUNT" not in result.stdout


def test_probes_are_on_the_metrics_port() -> None:
    manifests = render(value_set("three-pods"))
    bot_container = container(manifests)
    (port,) = bot_container["ports"]
    assert port["name"] == "metrics"
    assert str(port["containerPort"]) == env_of(manifests)["METRICS_PORT"] == "9100"
    paths = {
        probe: (bot_container[probe]["httpGet"]["path"], bot_container[probe]["httpGet"]["port"])
        for probe in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    assert paths == {
        "startupProbe": ("/readyz", "metrics"),
        "readinessProbe": ("/readyz", "metrics"),
        "livenessProbe": ("/livez", "metrics"),
    }
    # Generous: IDENTIFYs of 12 shards in one bucket take a minute; the window is 6 minutes.
    startup = bot_container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 12 * 5.25 + 120
    assert bot_container["livenessProbe"]["timeoutSeconds"] == 1  # the loop answers within 1 s


def test_the_grace_period_covers_the_bots_drain() -> None:
    spec = one(render(value_set("one-pod")), "StatefulSet")["spec"]["template"]["spec"]
    # shutdown(): SHUTDOWN_GRACE for interactions in flight, 2 s for the gateway to close.
    assert spec["terminationGracePeriodSeconds"] >= SHUTDOWN_GRACE + 2 + 10


def dockerfile_user() -> tuple[int, int]:
    (user,) = re.findall(r"^USER (\S+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit(), "a numeric USER, for runAsNonRoot"
    return int(uid), int(gid)


def test_pods_run_locked_down_as_the_images_user() -> None:
    manifests = render(value_set("three-pods"))
    pod = one(manifests, "StatefulSet")["spec"]["template"]["spec"]
    uid, gid = dockerfile_user()
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": gid,
        "fsGroup": gid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    bot_container = container(manifests)
    assert bot_container["securityContext"] == {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    # DATA_DIR is writable: an emptyDir mounted there.
    mounts = {m["mountPath"]: m["name"] for m in bot_container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts[env_of(manifests)["DATA_DIR"]]]


def test_resources_grow_with_the_shards_of_a_pod() -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["resources"]

    def expected(figure: dict[str, int], shards: int) -> int:
        return figure["base"] + figure["perShard"] * shards

    for name, shards in (("one-pod", 2), ("three-pods", 4)):
        resources = container(render(value_set(name)))["resources"]
        memory, cpu = defaults["memoryMiB"], defaults["cpuMillis"]
        assert resources["requests"]["memory"] == f"{expected(memory['request'], shards)}Mi"
        assert resources["limits"]["memory"] == f"{expected(memory['limit'], shards)}Mi"
        assert resources["requests"]["cpu"] == f"{expected(cpu['request'], shards)}m"
        assert resources["limits"]["cpu"] == f"{expected(cpu['limit'], shards)}m"


def test_a_drain_takes_one_pod_at_a_time() -> None:
    manifests = render(value_set("three-pods"))
    pdb = one(manifests, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    statefulset = one(manifests, "StatefulSet")
    assert pdb["spec"]["selector"] == statefulset["spec"]["selector"]


# -- secrets ----------------------------------------------------------------------------------


def secret_refs(manifests: list[Manifest]) -> dict[str, tuple[str, str]]:
    env = env_of(manifests)
    refs = {}
    for name in ("DISCORD_TOKEN", "DATABASE_URL"):
        ref = env[name]["secretKeyRef"]
        refs[name] = (ref["name"], ref["key"])
    return refs


def test_the_chart_made_secret_holds_the_token_and_database_url() -> None:
    manifests = render(value_set("one-pod"))
    secret = one(manifests, "Secret")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    refs = secret_refs(manifests)
    name = secret["metadata"]["name"]
    assert data[refs["DISCORD_TOKEN"][1]] == TOKEN and refs["DISCORD_TOKEN"][0] == name
    assert data[refs["DATABASE_URL"][1]] == DATABASE_URL and refs["DATABASE_URL"][0] == name
    annotations = one(manifests, "StatefulSet")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/secret" in annotations  # a new token rolls the pods


def test_an_existing_secret_is_referenced_not_made() -> None:
    manifests = render(value_set("existing-secret"))
    assert "Secret" not in kinds(manifests)
    assert secret_refs(manifests) == {
        "DISCORD_TOKEN": ("nekocord-credentials", "token"),
        "DATABASE_URL": ("nekocord-credentials", "url"),
    }


def test_cloudnativepg_makes_the_database_and_its_secret_is_read() -> None:
    manifests = render(value_set("cloudnativepg"))
    cluster = one(manifests, "Cluster")
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster["spec"]["instances"] == 2
    assert cluster["spec"]["bootstrap"]["initdb"] == {"database": "nekocord", "owner": "nekocord"}
    assert cluster["spec"]["storage"]["size"] == "5Gi"
    # The operator writes <cluster>-app with the connection URI under `uri`.
    refs = secret_refs(manifests)
    assert refs["DATABASE_URL"] == (f"{cluster['metadata']['name']}-app", "uri")
    secret = one(manifests, "Secret")
    assert set(secret["data"]) == {"discord-token"}
    assert "Cluster" not in kinds(render(value_set("one-pod")))


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda p: p.stem)
def test_no_secret_in_plain_text_or_a_configmap(values: Path) -> None:
    text = render_text(values)
    assert TOKEN not in text and "ci-password" not in text
    manifests = [doc for doc in yaml.safe_load_all(text) if doc]
    for configmap in (m for m in manifests if m["kind"] == "ConfigMap"):
        blob = yaml.safe_dump(configmap)
        assert TOKEN not in blob and "ci-password" not in blob
        assert not {"DISCORD_TOKEN", "DATABASE_URL"} & set(configmap.get("data", {}))
    env = env_of(manifests)
    assert "secretKeyRef" in env["DISCORD_TOKEN"] and "secretKeyRef" in env["DATABASE_URL"]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["database.url=postgresql://h/d"], "set discord.token, or existingSecret.name"),
        (["discord.token=x"], "set database.url"),
    ],
)
def test_missing_credentials_are_refused(sets: list[str], message: str) -> None:
    args = ["template", "x", str(CHART)]
    for item in sets:
        args += ["--set", item]
    result = run_helm(*args)
    assert result.returncode != 0 and message in result.stderr


# -- optional objects -------------------------------------------------------------------------


def test_the_service_monitor_only_when_enabled() -> None:
    assert "ServiceMonitor" not in kinds(render(value_set("one-pod")))
    manifests = render(value_set("three-pods"))
    monitor = one(manifests, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s"}
    ]
    service = one(manifests, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert [p["name"] for p in service["spec"]["ports"]] == ["metrics"]


def test_the_network_policy_lets_through_only_metrics_dns_database_and_https() -> None:
    assert "NetworkPolicy" not in kinds(render(value_set("one-pod")))
    policy = one(render(value_set("three-pods")), "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert ingress["from"] == values_of("three-pods")["networkPolicy"]["metricsFrom"]
    egress_ports = sorted(
        (p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]
    )
    assert egress_ports == [(53, "TCP"), (53, "UDP"), (443, "TCP"), (5432, "TCP")]


def test_notes_name_each_pods_shards() -> None:
    result = run_helm(
        "install", "--dry-run=client", "nekocord", str(CHART), "-f", str(value_set("three-pods"))
    )
    assert result.returncode == 0, result.stderr
    notes = result.stdout.partition("NOTES:")[2]
    for line in ("nekocord-0: shards 0-3", "nekocord-1: shards 4-7", "nekocord-2: shards 8-11"):
        assert line in notes


def test_the_readmes_kubernetes_section_names_values_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.partition("## Running on Kubernetes")[2].partition("\n## ")[0]
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    found = re.findall(r"`(?:--set )?([a-z][A-Za-z]*(?:\.[a-z][A-Za-z]*)+)[=`]", section)
    named = {name for name in found if name.rpartition(".")[2] not in ("yaml", "json", "txt")}
    assert {"shards.count", "existingSecret.name", "metrics.serviceMonitor.enabled"} <= named
    for dotted in named:
        node: Any = defaults
        for part in dotted.split("."):
            assert isinstance(node, dict) and part in node, f"README names {dotted}"
            node = node[part]
