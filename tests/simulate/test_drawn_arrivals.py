"""The injected reads of a drawn case follow its rate: a Poisson process at the account's
usual rate times the onset's ramp, whatever that rate (the old sampler drew each gap at the
rate where it started, so a gradual onset at under a few reads an hour waited out its ramp)."""

from __future__ import annotations

import random

import pytest

from watchdog.simulate.clock import HOUR
from watchdog.simulate.drawn.inject import arrivals
from watchdog.simulate.drawn.params import Params, ramp, reaches


def _p(intensity: float, onset: str, hours: float) -> Params:
    return Params(family="burst", intensity=intensity, onset=onset, role="engineer",
                  time_of_day="morning", duration_ms=int(hours * HOUR), workdays=0,
                  leaver=False, new_address=False)


def _expected(per_hour: float, p: Params, a: float, b: float) -> float:
    """The ramp's integral from fraction ``a`` to ``b`` of the case, in reads."""
    h = p.duration_ms / HOUR
    if p.onset == "sudden":
        return per_hour * p.intensity * (b - a) * h
    steps = 2000
    total = 0.0
    for i in range(steps):
        f = a + (b - a) * (i + 0.5) / steps
        total += 1.0 + (p.intensity - 1.0) * min(1.0, 2.0 * f)
    return per_hour * total / steps * (b - a) * h


@pytest.mark.parametrize(("per_hour", "intensity", "onset", "hours"), [
    (0.76, 8.4, "gradual", 3.9),  # an engineer's burst that came out as one read
    (0.87, 12.6, "gradual", 2.1),
    (1.5, 5.2, "gradual", 7.4),
    (6.0, 30.0, "gradual", 1.2),
    (2.0, 7.0, "sudden", 1.4),
    (3.0, 1.0, "sudden", 8.0),
])
def test_reads_follow_the_ramp(per_hour: float, intensity: float, onset: str,
                               hours: float) -> None:
    p = _p(intensity, onset, hours)
    rng = random.Random(7)
    start, end = 0, int(hours * HOUR)
    first_hour = whole = 0
    n = 400
    for _ in range(n):
        ts = arrivals(rng, start, end, per_hour, p)
        assert ts == sorted(ts)
        assert all(start < t < end for t in ts)
        whole += len(ts)
        first_hour += sum(t <= HOUR for t in ts)
    want = _expected(per_hour, p, 0.0, 1.0)
    # the mean of 400 Poisson counts: within 4 standard errors of the ramp's integral
    assert abs(whole / n - want) <= 4 * (want / n) ** 0.5 + 0.05 * want
    want_1h = _expected(per_hour, p, 0.0, min(1.0, 1.0 / hours))
    assert abs(first_hour / n - want_1h) <= 4 * (want_1h / n) ** 0.5 + 0.05 * want_1h


def test_a_flat_rate_without_a_case() -> None:
    rng = random.Random(3)
    counts = [len(arrivals(rng, 0, 10 * HOUR, 4.0, None)) for _ in range(300)]
    assert sum(counts) / len(counts) == pytest.approx(40.0, rel=0.05)


@pytest.mark.parametrize("intensity", [2.0, 2.5, 5.0, 9.0, 50.0])
def test_reaches_is_where_the_ramp_gets_to_a_level(intensity: float) -> None:
    for level in (1.5, 2.0, 5.0):
        at = reaches("gradual", intensity, level)
        if level > intensity:
            assert at is None
            continue
        assert at is not None
        p = _p(intensity, "gradual", 2.0)
        assert ramp(p, at) == pytest.approx(level)
        assert ramp(p, at * 0.99) < level
    assert reaches("sudden", intensity, 2.0) == 0.0
