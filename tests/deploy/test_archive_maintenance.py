"""The archive's daily maintenance (compact, then verify) as shipped: the Kubernetes CronJob of
components/archive-maintenance (rendered, validated offline, its commands run by watchdog's
own CLI on an archive) and the systemd service and timer (`systemd-analyze verify`)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.archive.helpers import world_dir
from tests.deploy.test_kubernetes import render, tree_with_secrets, validate
from tests.services.procs import require_binary
from watchdog.cli import main

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "deploy" / "systemd"
LOCATION = "s3://privacy-archive/watchdog"
__all__ = ["world_dir"]  # the fixture, shared with tests/archive


@pytest.fixture(scope="module")
def cronjob(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    docs = render(tree_with_secrets(tmp_path_factory, "k8s-archive") / "overlays" / "archive")
    for doc in docs:
        validate(doc)
    (job,) = (d for d in docs if d["kind"] == "CronJob")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    # the daemon's image, service account and Secret
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    dep = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == dep["serviceAccountName"]
    assert {c["image"] for c in pod["initContainers"] + pod["containers"]} == {
        dep["containers"][0]["image"]}
    secret = next(v for v in pod["volumes"] if v["name"] == "credentials")
    assert secret["secret"]["secretName"] == next(
        v for v in dep["volumes"] if v["name"] == "credentials")["secret"]["secretName"]
    assert job["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    return job


def _commands(job: dict[str, Any]) -> list[list[str]]:
    """Each container's args, in the order they run, with $(VAR) expanded as Kubernetes does."""
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    out = []
    for c in pod["initContainers"] + pod["containers"]:
        env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
        assert env["CREDENTIALS_DIRECTORY"] == "/run/credentials/watchdog"
        out.append([re.sub(r"\$\((\w+)\)", lambda m, env=env: env[m[1]], a) for a in c["args"]])
    return out


def test_the_cronjob_compacts_then_verifies_one_at_a_time(cronjob: dict[str, Any]) -> None:
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert _commands(cronjob) == [["archive", "compact", LOCATION],
                                  ["archive", "verify", LOCATION]]


def test_its_commands_run_on_an_archive(cronjob: dict[str, Any], world_dir: Path,
                                        tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    assert main(["archive", "write", "--events", str(world_dir / "events.jsonl"),
                 "--out", str(archive), "--segment-rows", "500"]) == 0
    for args in _commands(cronjob):
        assert main([a.replace(LOCATION, str(archive)) for a in args]) == 0


@pytest.mark.parametrize("unit", ["watchdog-archive-maintenance.service",
                                  "watchdog-archive-maintenance.timer"])
def test_systemd_analyze_verify(unit: str, tmp_path: Path) -> None:
    analyze = require_binary("systemd-analyze")
    watchdog_bin = Path(sys.executable).parent / "watchdog"
    assert watchdog_bin.exists(), "the venv has no watchdog console script (pip install -e .)"
    for name in ("watchdog-archive-maintenance.service", "watchdog-archive-maintenance.timer"):
        text = (SYSTEMD / name).read_text()
        (tmp_path / name).write_text(text.replace("/usr/bin/watchdog ", f"{watchdog_bin} "))
    service = (SYSTEMD / "watchdog-archive-maintenance.service").read_text()
    assert "ExecStart=/usr/bin/watchdog archive compact ${WATCHDOG_ARCHIVE}" in service
    assert "ExecStart=/usr/bin/watchdog archive verify ${WATCHDOG_ARCHIVE}" in service
    assert "User=watchdog" in service  # the daemon's dynamic user: its archive's owner
    result = subprocess.run([analyze, "verify", str(tmp_path / unit)], capture_output=True,
                            text=True, timeout=120, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == "", result.stderr
