"""The public API: defaults, planning before generation, laziness, the scenario registry."""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import random
import tracemalloc
from datetime import datetime, timedelta, timezone

import pytest

from watchdog.simulate import SimConfig, World, build_world
from watchdog.simulate.catalog import RULES, RULES_ON
from watchdog.simulate.scenarios import BENIGN, SCENARIOS, Context, scenario
from watchdog.simulate.scenarios.registry import for_rule


def test_config_defaults() -> None:
    cfg = SimConfig()
    assert (cfg.seed, cfg.accounts, cfg.days, cfg.violations_per_rule) == (7, 2000, 30, 5)
    assert cfg.subject_count == 40_000
    assert cfg.start == datetime(2026, 11, 1, tzinfo=timezone(timedelta(hours=9)))
    assert cfg.start.utcoffset() == timedelta(hours=9)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 8  # type: ignore[misc]


@pytest.mark.parametrize("bad", [
    {"start": datetime(2026, 11, 1)},  # naive
    {"accounts": 99},
    {"days": 0},
    {"violations_per_rule": -1},
])
def test_config_rejects(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        SimConfig(**bad)  # type: ignore[arg-type]


def test_plan_is_known_before_any_event(small_world: World) -> None:
    w = small_world
    assert w.policy["organization"]
    assert w.policy["roles"]
    assert len(w.directory) > 100
    assert w.subjects
    assert w.ground_truth
    # an obligation's line names the record that started it, every other line an event
    assert all(t["event_id"] in w.planned_event_ids
               or t["event_id"].startswith(("directory/", "subjects/")) for t in w.ground_truth)


def test_events_are_lazy(small_world: World) -> None:
    it = small_world.events()
    assert inspect.isgenerator(it)
    first = list(itertools.islice(it, 5))
    assert len(first) == 5
    it.close()


def test_every_rule_but_anomaly_has_a_scenario() -> None:
    for rule in RULES:
        if rule != "anomaly":
            assert for_rule(rule), rule
    for sc in SCENARIOS.values():
        assert sc.rule in RULES
        assert sc.rule in sc.raises
        assert sc.description
    assert BENIGN


def test_violations_per_rule_is_honoured() -> None:
    w = build_world(SimConfig(accounts=100, days=3, violations_per_rule=2, benign_per_kind=0))
    per_rule: dict[str, set[str]] = {}
    for t in w.ground_truth:
        per_rule.setdefault(t["rule"], set()).add(t["scenario"])
    # 3 days hold no 14-day erasure window: those scenarios are skipped, and said so
    assert set(per_rule) == set(RULES_ON) - {"anomaly", "erasure_overdue"}
    assert {"erasure_one_resource_left", "erasure_delete_failed"} <= set(w.skipped)
    none = build_world(SimConfig(accounts=100, days=3, violations_per_rule=0))
    assert none.ground_truth == []


def test_a_registered_scenario_is_planned() -> None:
    """The extension point the anomaly scenarios will use."""
    def leaver(ctx: Context, rng: random.Random) -> None:
        t, a = ctx.slot(rng, "marketing", "business")
        ev = ctx.access(t, a, "mkt.audit", "read", "mkt.profiles", ("contact",),
                        purpose="marketing", ids=ctx.customers(rng))
        ctx.expect(ev, "anomaly")

    scenario("test_leaver", "anomaly")(leaver)
    try:
        w = build_world(SimConfig(accounts=100, days=3, violations_per_rule=1))
        got = [t for t in w.ground_truth if t["rule"] == "anomaly"]
        assert [t["scenario"] for t in got] == ["test_leaver"]
    finally:
        del SCENARIOS["test_leaver"]


@pytest.mark.parametrize("start", ["2026-11-07", "2026-11-08"])  # Saturday, Sunday
def test_a_weekend_plans_what_fits_and_names_what_it_skips(start: str) -> None:
    """issue 15: `simulate --days 2` failed depending on the weekday. A period without a
    working day plans the scenarios that fit (nights, weekends) and skips the others."""
    w = build_world(SimConfig(accounts=100, days=2 if start.endswith("7") else 1,
                              start=datetime.fromisoformat(start + "T00:00:00+09:00")))
    assert w.skipped
    assert "departed_reads_customers" in w.skipped  # needs business hours
    assert w.ground_truth  # the night and weekend ones are there


@pytest.mark.slow
def test_memory_does_not_grow_with_events() -> None:
    """The stream holds one pending event per live session, never the events so far."""
    w = build_world(SimConfig(accounts=100, days=6, violations_per_rule=1, benign_per_kind=0))
    total = sum(1 for _ in w.events())

    def peak(limit: int) -> int:
        tracemalloc.start()
        try:
            for _ in itertools.islice(w.events(), limit):
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak(total) < 1.5 * peak(total // 2)
