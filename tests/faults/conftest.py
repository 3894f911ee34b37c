"""Fixtures of the fault-injection tests (harness.py has the machinery)."""

from __future__ import annotations

import pytest

from tests.faults.harness import FaultWorld, make_fault_world


@pytest.fixture(scope="session")
def fault_world(tmp_path_factory: pytest.TempPathFactory) -> FaultWorld:
    w = make_fault_world(tmp_path_factory.mktemp("fault-world"))
    assert len(w.expected) >= 30, "the simulated stream should raise alerts of most rules"
    return w
