"""The archive's maintenance as shipped: daily (compact, then verify) and hourly (compact: the
open day by tier). The Kubernetes CronJobs of components/archive-maintenance (rendered,
validated offline, their commands run by watchdog's own CLI on an archive) and the systemd
services and timers (`systemd-analyze verify`)."""

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
def cronjobs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    docs = render(tree_with_secrets(tmp_path_factory, "k8s-archive") / "overlays" / "archive")
    for doc in docs:
        validate(doc)
    jobs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "CronJob"}
    assert set(jobs) == {"watchdog-archive-maintenance", "watchdog-archive-compact"}
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    for job in jobs.values():  # the daemon's image, service account and Secret
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        dep = deployment["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == dep["serviceAccountName"]
        assert {c["image"] for c in pod.get("initContainers", []) + pod["containers"]} == {
            dep["containers"][0]["image"]}
        secret = next(v for v in pod["volumes"] if v["name"] == "credentials")
        assert secret["secret"]["secretName"] == next(
            v for v in dep["volumes"] if v["name"] == "credentials")["secret"]["secretName"]
        assert job["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    return jobs


@pytest.fixture(scope="module")
def cronjob(cronjobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return cronjobs["watchdog-archive-maintenance"]


def _commands(job: dict[str, Any]) -> list[list[str]]:
    """Each container's args, in the order they run, with $(VAR) expanded as Kubernetes does."""
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    out = []
    for c in pod.get("initContainers", []) + pod["containers"]:
        env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
        assert env["CREDENTIALS_DIRECTORY"] == "/run/credentials/watchdog"
        out.append([re.sub(r"\$\((\w+)\)", lambda m, env=env: env[m[1]], a) for a in c["args"]])
    return out


def test_the_cronjob_compacts_then_verifies_one_at_a_time(cronjob: dict[str, Any]) -> None:
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert _commands(cronjob) == [["archive", "compact", LOCATION],
                                  ["archive", "verify", LOCATION]]


def _hours(field: str) -> set[int]:
    out: set[int] = set()
    for part in field.split(","):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def test_the_hourly_compaction_keeps_out_of_the_daily_window(
        cronjobs: dict[str, dict[str, Any]]) -> None:
    hourly = cronjobs["watchdog-archive-compact"]
    assert hourly["spec"]["concurrencyPolicy"] == "Forbid"
    assert _commands(hourly) == [["archive", "compact", LOCATION]]
    minute, hours, *rest = hourly["spec"]["schedule"].split()
    d_minute, d_hours, *d_rest = cronjobs["watchdog-archive-maintenance"]["spec"][
        "schedule"].split()
    assert rest == d_rest == ["*", "*", "*"]
    (daily,) = _hours(d_hours)
    assert _hours(hours) == set(range(24)) - {daily, daily + 1}
    # the run before the daily one ends (its deadline) before the daily one starts
    deadline = hourly["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
    assert (daily - 1) * 60 + int(minute) + deadline / 60 <= daily * 60 + int(d_minute)


def test_its_commands_run_on_an_archive(cronjobs: dict[str, dict[str, Any]], world_dir: Path,
                                        tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    assert main(["archive", "write", "--events", str(world_dir / "events.jsonl"),
                 "--out", str(archive), "--segment-rows", "500"]) == 0
    for job in cronjobs.values():
        for args in _commands(job):
            assert main([a.replace(LOCATION, str(archive)) for a in args]) == 0


UNITS = ("watchdog-archive-maintenance.service", "watchdog-archive-maintenance.timer",
         "watchdog-archive-compact.service", "watchdog-archive-compact.timer")
_LOCKED = "ExecStart=/usr/bin/flock %S/watchdog/archive-maintenance.lock /usr/bin/watchdog "


@pytest.mark.parametrize("unit", UNITS)
def test_systemd_analyze_verify(unit: str, tmp_path: Path) -> None:
    analyze = require_binary("systemd-analyze")
    flock = require_binary("flock")
    watchdog_bin = Path(sys.executable).parent / "watchdog"
    assert watchdog_bin.exists(), "the venv has no watchdog console script (pip install -e .)"
    for name in UNITS:
        text = (SYSTEMD / name).read_text()
        (tmp_path / name).write_text(text.replace("/usr/bin/watchdog ", f"{watchdog_bin} ")
                                     .replace("/usr/bin/flock ", f"{flock} "))
    daily = (SYSTEMD / "watchdog-archive-maintenance.service").read_text()
    hourly = (SYSTEMD / "watchdog-archive-compact.service").read_text()
    # both compact under one lock (never two compactions, never verify midway through one)
    assert [ln for ln in daily.splitlines() if ln.startswith("ExecStart=")] == [
        _LOCKED + "archive compact ${WATCHDOG_ARCHIVE}",
        _LOCKED + "archive verify ${WATCHDOG_ARCHIVE}"]
    assert [ln for ln in hourly.splitlines() if ln.startswith("ExecStart=")] == [
        _LOCKED + "archive compact ${WATCHDOG_ARCHIVE}"]
    for service in (daily, hourly):
        assert "User=watchdog" in service  # the daemon's dynamic user: its archive's owner
        assert "StateDirectory=watchdog" in service  # where the lock is
    assert "OnCalendar=hourly" in (SYSTEMD / "watchdog-archive-compact.timer").read_text()
    result = subprocess.run([analyze, "verify", str(tmp_path / unit)], capture_output=True,
                            text=True, timeout=120, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_compaction_has_room_to_sort_a_large_day_on_disk(
        cronjobs: dict[str, dict[str, Any]]) -> None:
    """A day above compact.MEMORY_ROWS spills to the temporary directory (10M events: 5.3 GB
    measured): the Jobs' /tmp must hold it, and systemd's must be disk, not tmpfs."""
    for job in cronjobs.values():
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
        assert tmp["emptyDir"]["sizeLimit"] == "8Gi"
        for c in pod.get("initContainers", []) + pod["containers"]:
            assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    for unit in ("watchdog-archive-compact.service", "watchdog-archive-maintenance.service"):
        text = (SYSTEMD / unit).read_text()
        assert "\nEnvironment=TMPDIR=/var/tmp\n" in text
        assert "\nPrivateTmp=yes\n" in text
