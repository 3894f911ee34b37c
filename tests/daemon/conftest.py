"""Fixtures of the daemon tests (helpers.py has the functions)."""

from __future__ import annotations

import pytest

from tests.daemon.helpers import World, make_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    w = make_world(tmp_path_factory.mktemp("world"))
    assert len(w.expected) >= 15, "the simulated world should raise alerts of most rules"
    return w
