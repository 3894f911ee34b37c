"""deploy/prometheus and deploy/alertmanager: promtool and amtool on the shipped files."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.services.procs import require_binary

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
RULES = PROM / "watchdog-rules.yml"
AM_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
RUNBOOK = ROOT / "README.md"


def run(argv: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def github_anchor(heading: str) -> str:
    """The id GitHub gives a Markdown heading."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def test_promtool_check_rules() -> None:
    result = run([require_binary("promtool"), "check", "rules", str(RULES)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests() -> None:
    tests = sorted((PROM / "tests").glob("*.yaml"))
    assert tests
    result = run([require_binary("promtool"), "test", "rules", *map(str, tests)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout


def test_example_prometheus_config() -> None:
    result = run([require_binary("promtool"), "check", "config", "prometheus.example.yml"],
                 cwd=PROM)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested_and_documented() -> None:
    tested: set[str] = set()
    for path in (PROM / "tests").glob("*.yaml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    tested.add(check["alertname"])
    runbook = RUNBOOK.read_text()
    anchors = {github_anchor(h) for h in re.findall(r"^#{2,4} (.+)$", runbook, re.M)}
    anchors |= set(re.findall(r'<a id="([^"]+)"', runbook))
    for rule in alert_rules():
        name = rule["alert"]
        assert name in tested, f"{name}: no promtool test expects it to fire"
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        ann = rule["annotations"]
        assert ann.get("summary"), name
        assert ann.get("description"), name
        assert ann["runbook_url"] == f"README.md#runbook-{name.lower()}", name
        assert f"runbook-{name.lower()}" in anchors, f"{name}: no runbook entry in {RUNBOOK}"


def test_required_alerts_exist() -> None:
    names = {r["alert"] for r in alert_rules()}
    assert {"WatchdogDown", "WatchdogNotReady", "WatchdogConsumerLagGrowing",
            "WatchdogInvalidInputRate", "WatchdogSinkFailing", "WatchdogSourceSilent",
            "WatchdogLogGap", "PrivacyCriticalViolation"} <= names


def test_amtool_check_config() -> None:
    result = run([require_binary("amtool"), "check-config", str(AM_CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(("labels", "receivers"), [
    (["severity=critical", "alertname=WatchdogDown"], "privacy-oncall,privacy-team-channel"),
    (["severity=critical", "alertname=PrivacyCriticalViolation", "rule=external_media"],
     "privacy-violations-pager,privacy-violations-channel"),
    (["severity=warning", "alertname=WatchdogNotReady"], "privacy-team-channel"),
    # violations the daemon sends to Alertmanager itself carry the contract's severities
    (["severity=high", "alertname=external_email", "rule=external_email",
      "service=watchdog"], "privacy-violations-channel"),
    (["severity=critical", "alertname=revoked_account", "rule=revoked_account",
      "service=watchdog"], "privacy-violations-pager,privacy-violations-channel"),
    (["alertname=SomethingElse"], "privacy-team-channel"),
])
def test_alertmanager_routing(labels: list[str], receivers: str) -> None:
    result = run([require_binary("amtool"), "config", "routes", "test",
                  f"--config.file={AM_CONFIG}", *labels])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers
