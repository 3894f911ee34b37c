"""The insider scenarios plug into the simulator and declare their ground truth."""

from __future__ import annotations

from collections import Counter

import pytest

from watchdog.simulate import SimConfig, build_world
from watchdog.simulate.insiders import INSIDERS, NOT_BEFORE
from watchdog.simulate.scenarios.registry import SCENARIOS


@pytest.fixture(scope="module")
def world():
    return build_world(SimConfig(accounts=200, days=25, violations_per_rule=1, insiders=1))


def test_every_insider_scenario_is_in_the_truth(world) -> None:
    cases = Counter(t["scenario"] for t in world.ground_truth if t["rule"] == "anomaly")
    assert set(cases) == set(INSIDERS)
    assert cases["many_customers_browse"] >= 120
    start = world.calendar.start
    lo = start + NOT_BEFORE * (world.calendar.end - start)
    from datetime import datetime

    for t in world.ground_truth:
        if t["rule"] == "anomaly":
            ms = datetime.fromisoformat(t["ts"].replace("Z", "+00:00")).timestamp() * 1000
            assert ms >= lo  # the first 40% of the period stays a clean baseline


def test_rules_they_also_break_are_declared(world) -> None:
    also = {t["rule"] for t in world.ground_truth if t["scenario"] in INSIDERS}
    assert also == {"anomaly", "external_media", "category_not_permitted"}
    # off in the simulated policy (contract 1.1 commitments): declared, expecting nothing
    off = {t["rule"] for t in world.silent if t["scenario"] in INSIDERS}
    assert off == {"off_hours_access"}


def test_not_registered_by_default() -> None:
    assert not set(INSIDERS) & set(SCENARIOS)
