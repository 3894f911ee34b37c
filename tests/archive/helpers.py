"""A small simulated world written to JSONL, and an archive of it, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchdog.cli import main
from watchdog.simulate import SimConfig, build_world, write_world


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    write_world(build_world(SimConfig(accounts=100, days=3)), out)
    rc = main(["replay", "--events", str(out / "events.jsonl"), "--directory",
               str(out / "directory.jsonl"), "--subjects", str(out / "subjects.jsonl"),
               "--policy", str(out / "policy.yaml"), "--out", str(out / "alerts.jsonl")])
    assert rc == 0
    return out


def write_archive(world: Path, out: Path, *extra: str) -> int:
    return main(["archive", "write", "--events", str(world / "events.jsonl"),
                 "--directory", str(world / "directory.jsonl"),
                 "--subjects", str(world / "subjects.jsonl"),
                 "--alerts", str(world / "alerts.jsonl"), "--out", str(out), *extra])
