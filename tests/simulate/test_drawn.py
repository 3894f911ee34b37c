"""``watchdog.simulate.drawn``: drawn insider cases stay inside their documented ranges, and
their ground truth is exactly what the world emits for them."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime
from functools import cache
from typing import Any

import pytest

from watchdog.simulate import SimConfig, World
from watchdog.simulate.clock import DAY, HOUR, MINUTE
from watchdog.simulate.drawn import FAMILIES, RANGES, Planned, draw, drawn_world
from watchdog.simulate.drawn.inject import EXPORT_SIZE
from watchdog.simulate.drawn.params import LONG, ramp
from watchdog.simulate.drawn.usual import EXPORTS, READS, usual

TRAIN_DAYS = 10
CFG = SimConfig(accounts=100, days=21, seed=5, violations_per_rule=0, benign_per_kind=0)


def _ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp).timestamp() * 1000)


@pytest.mark.parametrize("family", FAMILIES)
def test_drawn_parameters_stay_in_their_ranges(family: str) -> None:
    r = RANGES[family]
    got = [draw(random.Random(i), family) for i in range(400)]
    for p in got:
        assert r.intensity[0] <= p.intensity <= r.intensity[1]
        assert 1.5 <= p.intensity <= 50
        assert p.role in r.roles
        assert p.time_of_day in r.times
        assert p.onset in ("sudden", "gradual")
        if family in LONG:
            assert r.workdays[0] <= p.workdays <= r.workdays[1]
            assert p.duration_ms == 0
        else:
            assert r.minutes[0] * MINUTE <= p.duration_ms <= r.minutes[1] * MINUTE
            assert p.workdays == 0
    # every documented value is drawn, not just one corner of the range
    assert {p.onset for p in got} == {"sudden", "gradual"}
    assert {p.role for p in got} == set(r.roles)
    assert {p.time_of_day for p in got} == set(r.times)
    assert min(p.intensity for p in got) < r.intensity[0] * 1.3
    assert max(p.intensity for p in got) > r.intensity[1] / 1.3
    if r.band is not None:  # half in the target band, so it has cases to measure
        inside = sum(r.band[0] <= p.intensity <= r.band[1] for p in got) / len(got)
        assert 0.5 < inside < 0.8
    assert sum(p.leaver for p in got) / len(got) == pytest.approx(r.leaver, abs=0.08)


def test_long_cases_fit_the_period_or_are_refused() -> None:
    p = draw(random.Random(1), "sustained", max_workdays=6)
    assert 5 <= p.workdays <= 6
    with pytest.raises(ValueError, match="simulate more days"):
        draw(random.Random(1), "sustained", max_workdays=4)


def test_onset_ramps_from_usual_to_the_peak() -> None:
    p = draw(random.Random(3), "burst")
    sudden = p.__class__(**{**{f: getattr(p, f) for f in p.__slots__}, "onset": "sudden"})
    gradual = p.__class__(**{**{f: getattr(p, f) for f in p.__slots__}, "onset": "gradual"})
    assert ramp(sudden, 0.0) == ramp(sudden, 1.0) == p.intensity
    assert ramp(gradual, 0.0) == 1.0
    assert ramp(gradual, 0.25) == pytest.approx(1 + (p.intensity - 1) / 2)
    assert ramp(gradual, 0.5) == ramp(gradual, 1.0) == p.intensity


def test_usual_rates_follow_the_workload() -> None:
    for role in READS:
        one, two = usual(role, 1.0, 34.0), usual(role, 2.0, 34.0)
        assert 0 < one.subjects_per_hour < two.subjects_per_hour
        assert one.events_per_day == pytest.approx(34.0)
    for role in EXPORTS:
        assert usual(role, 1.0, 34.0).exported_per_day > 0


@cache
def _world() -> tuple[World, Planned, list[dict[str, Any]]]:
    world, planned = drawn_world(CFG, per_family=2, train_days=TRAIN_DAYS)
    return world, planned, list(world.events())


def test_every_family_is_planned_after_the_training_part() -> None:
    world, planned, _ = _world()
    assert not planned.skipped
    assert sorted(c.family for c in planned.cases) == sorted(FAMILIES * 2)
    train_end = world.calendar.start + TRAIN_DAYS * DAY
    for c in planned.cases:
        assert train_end <= c.start_ms <= c.end_ms < world.calendar.end
        assert c.events >= 1
        assert c.subjects >= 1
        assert c.usual > 0
        if c.family in LONG:
            assert c.duration_ms >= (c.workdays - 1) * DAY
        else:
            assert c.end_ms - c.start_ms <= c.duration_ms


def test_ground_truth_is_exactly_the_injected_events() -> None:
    world, planned, events = _world()
    truth = [t for t in world.ground_truth if t["scenario"].startswith("drawn_")]
    assert {t["rule"] for t in truth} == {"anomaly"}
    assert len(world.ground_truth) == len(truth)  # a clean world: nothing else is injected
    emitted = {e["event"]["id"]: e for e in events}
    by_user: dict[str, list[int]] = defaultdict(list)
    for t in truth:
        ev = emitted[t["event_id"]]  # every declared event is in the stream
        assert ev["user"]["id"] == t["user_id"]
        by_user[t["user_id"]].append(_ms(ev["@timestamp"]))
    assert sum(c.events for c in planned.cases) == len(truth)
    for c in planned.cases:
        mine = [t for t in by_user[c.user_id] if c.start_ms - 1000 <= t <= c.end_ms + 1000]
        assert len(mine) == c.events, c.case_id
    injected = set(world.planned_event_ids)
    for c in planned.cases:
        if c.family in LONG:
            continue
        # the account's clean traffic pauses while a short case runs: all it does is the case
        during = [e for e in events if e["user"]["id"] == c.user_id
                  and c.start_ms - 1000 <= _ms(e["@timestamp"]) <= c.end_ms + 1000]
        assert {e["event"]["id"] for e in during} <= injected


def test_intensity_is_what_was_injected_and_exports_stay_small() -> None:
    world, planned, events = _world()
    for c in planned.cases:
        if c.events >= 40 and c.family not in LONG:
            assert c.achieved == pytest.approx(c.intensity, rel=0.4), c.case_id
    ids = set(world.planned_event_ids)
    for e in events:
        if e["event"]["id"] in ids and e["event"]["action"] in ("download", "export"):
            assert len(e["data"]["subject_ids"]) <= EXPORT_SIZE[1]


def test_leavers_give_notice_before_and_depart_after() -> None:
    world, planned, _ = _world()
    docs = defaultdict(list)
    for d in world.directory:
        docs[d["user_id"]].append(d)
    leavers = [c for c in planned.cases if c.leaver]
    assert any(c.family == "sustained" for c in leavers)
    for c in leavers:
        assert c.notice_at_ms is not None
        assert c.departs_ms is not None
        assert c.notice_at_ms < c.start_ms
        assert c.end_ms < c.departs_ms <= c.end_ms + 12 * HOUR
        notice = [d for d in docs[c.user_id] if "notice_at" in d]
        assert [_ms(d["notice_at"]) for d in notice] == [c.notice_at_ms]
        assert notice[0]["status"] == "active"
        assert [_ms(d["effective"]) for d in docs[c.user_id]
                if d["status"] == "departed"] == [c.departs_ms]
    for c in planned.cases:
        if not c.leaver:
            assert not any("notice_at" in d for d in docs[c.user_id])
