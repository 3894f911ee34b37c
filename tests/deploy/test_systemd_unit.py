"""deploy/systemd/watchdog.service: `systemd-analyze verify` says nothing, and the unit
has the settings the daemon relies on (notify, watchdog, credential, hardening)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.services.procs import require_binary

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "watchdog.service"


def unit_settings() -> dict[str, list[str]]:
    """KEY -> values of the [Service] section (keys may repeat)."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = require_binary("systemd-analyze")
    watchdog_bin = Path(sys.executable).parent / "watchdog"
    assert watchdog_bin.exists(), "the venv has no watchdog console script (pip install -e .)"
    text = UNIT.read_text()
    assert "ExecStart=/usr/bin/watchdog run " in text
    # verify insists that ExecStart's binary exists: point it at the venv's.
    unit = tmp_path / "watchdog.service"
    unit.write_text(text.replace("ExecStart=/usr/bin/watchdog ", f"ExecStart={watchdog_bin} "))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                            timeout=120, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_unit_contract() -> None:
    s = unit_settings()
    one = {k: v[-1] for k, v in s.items()}
    assert one["Type"] == "notify"
    assert one["NotifyAccess"] == "main"
    assert one["WatchdogSec"]
    assert one["ExecStart"] == "/usr/bin/watchdog run --config /etc/watchdog/watchdog.yaml"
    assert one["ExecReload"].endswith("kill -HUP $MAINPID")
    assert "pseudonym-key:/etc/watchdog/pseudonym.key" in s["LoadCredential"]
    for key, value in {
        "DynamicUser": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "NoNewPrivileges": "yes", "CapabilityBoundingSet": "",
        "StateDirectory": "watchdog", "ConfigurationDirectory": "watchdog",
    }.items():
        assert one.get(key) == value, key
    assert "@system-service" in s["SystemCallFilter"]
    assert set(one["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    # no secret in the environment
    assert not any("KEY" in env.upper() for env in s.get("Environment", []))

