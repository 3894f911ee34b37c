"""Shared test setup: a fixed pseudonym key and paths to the contract."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT.parent / "shared" / "contract"
EXAMPLES = CONTRACT / "examples"

os.environ.setdefault("WATCHDOG_PSEUDONYM_KEY", "test-key-0123456789abcdef")

pytest_plugins = ["tests.services.fixtures", "tests.anomaly.model_fixtures"]


@pytest.fixture
def contract_dir() -> Path:
    if not CONTRACT.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the contract is missing at {CONTRACT}")
        pytest.skip("shared/contract not beside the repo")
    return CONTRACT
