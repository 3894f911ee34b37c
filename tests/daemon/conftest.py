"""Fixtures of the daemon tests (helpers.py has the functions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon.helpers import World, make_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    w = make_world(tmp_path_factory.mktemp("world"))
    assert len(w.expected) >= 15, "the simulated world should raise alerts of most rules"
    return w


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small anomaly model trained on the insider world's baseline (tests.anomaly)."""
    from tests.anomaly.conftest import baseline, directory_records, write_jsonl
    from watchdog.anomaly.train import train

    d = tmp_path_factory.mktemp("anomaly-model")
    events = write_jsonl(d / "events.jsonl", baseline())
    directory = write_jsonl(d / "directory.jsonl", directory_records(30))
    out = d / "model"
    train(str(events), str(out), directory=str(directory), trees=20, warmup=6 * 3600.0,
          target=5.0)
    return out
