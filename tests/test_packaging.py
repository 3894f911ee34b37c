"""What the package ships and where it refuses to run: the example config and default model
found through the package, the lock file covering every dependency, and the clash with PyPI's
unrelated ``watchdog``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from watchdog import packaged
from watchdog.anomaly import store
from watchdog.collision import foreign_watchdog

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "watchdog", *args], capture_output=True,
                          text=True, timeout=60, check=False, cwd=ROOT,
                          env={**os.environ, **(env or {})})


def test_config_example_prints_the_shipped_example_and_refuses_to_overwrite(
        tmp_path: Path) -> None:
    out = run_cli("config", "example")
    assert out.returncode == 0
    assert out.stdout == packaged.example_config().read_text()
    target = tmp_path / "watchdog.yaml"
    assert run_cli("config", "example", "--out", str(target)).returncode == 0
    assert target.read_text() == out.stdout
    again = run_cli("config", "example", "--out", str(target))
    assert again.returncode == 2
    assert "File exists" in again.stderr


def test_default_names_the_packaged_model() -> None:
    assert packaged.resolve_model("default") == packaged.default_model()
    assert packaged.resolve_model("./default") == Path("default")
    model = store.load("default")  # checksums verified, features match
    assert model is not None
    paths = run_cli("config", "paths").stdout
    assert str(packaged.default_model()) in paths


def _fake_foreign(site: Path) -> None:
    info = site / "watchdog-6.0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: watchdog\nVersion: 6.0.0\n")
    (info / "top_level.txt").write_text("watchdog\n")


def test_pypi_watchdog_in_the_same_environment_is_a_clear_error(tmp_path: Path) -> None:
    assert foreign_watchdog() is None  # this environment is clean
    _fake_foreign(tmp_path)
    reason = foreign_watchdog([str(tmp_path)])
    assert reason is not None
    assert "watchdog-6.0.0.dist-info" in reason
    assert "environment of its own" in reason
    out = run_cli("check-policy", env={"PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}"})
    assert out.returncode == 2
    (line,) = out.stderr.splitlines()
    assert line.startswith("watchdog: error: PyPI's 'watchdog'")


def _requirement_names(specs: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", s, maxsplit=1)[0].lower().replace("_", "-")
            for s in specs}


def test_lock_pins_every_declared_dependency_and_the_bounded_formats() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _requirement_names(project["dependencies"]
                                  + project["optional-dependencies"]["dev"])
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", (ROOT / "requirements.lock")
                           .read_text(), flags=re.M))
    locked = {n.lower().replace("_", "-") for n in pins}
    assert declared <= locked, f"run `make lock`: {sorted(declared - locked)} not locked"
    bounded = {s.split(">=")[0]: s for s in project["dependencies"]
               if s.startswith(("scikit-learn", "skops"))}
    assert all("<" in spec for spec in bounded.values()), bounded


@pytest.mark.parametrize("target", ["setup", "lock"])
def test_makefile_installs_from_and_rebuilds_the_lock(target: str) -> None:
    make = (ROOT / "Makefile").read_text()
    if target == "setup":
        assert "pip install -q -c $(LOCK) -e '.[dev]'" in make
    else:
        assert re.search(r"^lock:", make, flags=re.M)
        assert "pip-compile" in make
