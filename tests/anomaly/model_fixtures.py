"""The tiny anomaly model and its inputs, once per test run (session fixtures), for the
anomaly tests and the fuzz tests of the stage: a plugin of the root conftest
(``pytest_plugins``), so that every directory sees one definition; imported from a conftest
(``--import-mode=importlib`` gives each importer its own copy) they were trained twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.anomaly.conftest import baseline, directory_records, write_jsonl


@pytest.fixture(scope="session")
def tiny_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("anomaly-inputs")
    return {"events": write_jsonl(d / "events.jsonl", baseline()),
            "directory": write_jsonl(d / "directory.jsonl", directory_records(30))}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, tiny_inputs: dict[str, Path]) -> Path:
    """A small isolation forest trained on the tiny baseline (warm-up 6 h, 20 trees)."""
    from watchdog.anomaly.train import train

    out = tmp_path_factory.mktemp("models") / "tiny"
    train(str(tiny_inputs["events"]), str(out), directory=str(tiny_inputs["directory"]),
          trees=20, warmup=6 * 3600.0, target=5.0)
    return out
