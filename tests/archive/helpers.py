"""A small simulated world written to JSONL, and an archive of it, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchdog.archive.store import ACCESS_KEY_ENV, SECRET_KEY_ENV
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


def s3_keys_in_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The S3 keys in a credentials directory (as systemd LoadCredential= or a Kubernetes
    Secret volume gives them), none in the environment: as the daemon and commands take them."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "archive-s3-access-key-id").write_text("test")
    (creds / "archive-s3-secret-access-key").write_text("test")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.delenv(ACCESS_KEY_ENV, raising=False)
    monkeypatch.delenv(SECRET_KEY_ENV, raising=False)
