"""Fixtures for the simulator's tests: one small world (100 accounts x 3 days), built once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from watchdog.simulate import SimConfig, World, build_world, write_world

SMALL = SimConfig(accounts=100, days=3)  # Sunday 2026-11-01 to Tuesday: a weekend day too


@pytest.fixture(scope="session")
def small_world() -> World:
    return build_world(SMALL)


@pytest.fixture(scope="session")
def small_events(small_world: World) -> list[dict[str, Any]]:
    return list(small_world.events())


@pytest.fixture(scope="session")
def small_dir(small_world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("simulated")
    write_world(small_world, out)
    return out
