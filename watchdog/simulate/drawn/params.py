"""The parameters of a drawn insider case, and the ranges they are drawn from.

Every family draws its intensity log-uniformly (a multiple of the account's own usual rate,
see ``usual``), its duration log-uniformly (short families) or as a number of working days
(long ones), a sudden or gradual onset, a role, and a time of day. The ranges are fixed
here, not tuned: an evaluation draws cases from them with seeds no one tuned on.

- ``burst``: a mass read of customers, 20 minutes to 8 hours, 1.5x-50x the account's usual
  customers per hour, during or just after business hours;
- ``sustained``: a leaver (notice given 0-3 working days before) reads 1.5x-6x its usual
  customers every working day for 5-15 working days, then departs; half of these cases are
  drawn inside 2x-3x, the issue's target band, so that band has enough cases to measure;
- ``low_and_slow``: many small exports to the internal share (each under every rule's
  threshold), 1.5x-20x the customers the account usually takes out a day, every working day
  for 3-15 working days; half of them are leavers;
- ``off_pattern``: reads at night, at a weekend or before work, often from an address the
  account never used, 20 minutes to 4 hours, 1.5x-50x its usual customers per hour.

A gradual onset ramps the rate (per hour for short families, per day for long ones) from the
account's usual up to the drawn intensity over the first half of the case.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from watchdog.simulate.clock import HOUR, MINUTE

FAMILIES = ("burst", "sustained", "low_and_slow", "off_pattern")


@dataclass(frozen=True, slots=True)
class Range:
    """Where a family's parameters come from."""

    intensity: tuple[float, float]
    minutes: tuple[float, float] = (0.0, 0.0)  # short families: duration
    workdays: tuple[int, int] = (0, 0)  # long families: working days
    roles: tuple[str, ...] = ()
    times: tuple[str, ...] = ()
    leaver: float = 0.0  # probability the account gave notice and leaves after the case
    band: tuple[float, float] | None = None  # half the cases are drawn inside this band


RANGES: dict[str, Range] = {
    "burst": Range((1.5, 50.0), minutes=(20.0, 480.0),
                   roles=("support_agent", "billing", "marketing", "engineer"),
                   times=("morning", "afternoon", "evening")),
    "sustained": Range((1.5, 6.0), workdays=(5, 15),
                       roles=("support_agent", "billing", "marketing"),
                       times=("working_day",), leaver=1.0, band=(2.0, 3.0)),
    "low_and_slow": Range((1.5, 20.0), workdays=(3, 15), roles=("support_agent", "billing"),
                          times=("working_day",), leaver=0.5),
    "off_pattern": Range((1.5, 50.0), minutes=(20.0, 240.0),
                         roles=("support_agent", "billing", "marketing", "engineer"),
                         times=("night", "weekend", "before_open")),
}
LONG = frozenset({"sustained", "low_and_slow"})


@dataclass(frozen=True, slots=True)
class Params:
    """One case's drawn parameters (what the generator is asked for)."""

    family: str
    intensity: float
    onset: str  # sudden | gradual
    role: str
    time_of_day: str
    duration_ms: int  # short families; 0 for long ones
    workdays: int  # long families; 0 for short ones
    leaver: bool
    new_address: bool


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def draw(rng: random.Random, family: str, *, max_workdays: int | None = None) -> Params:
    """A case of ``family``; ``max_workdays`` caps long cases to the period left."""
    r = RANGES[family]
    lo, hi = r.intensity
    if r.band is not None and rng.random() < 0.5:
        lo, hi = r.band
    intensity = _log_uniform(rng, lo, hi)
    duration = workdays = 0
    if family in LONG:
        top = r.workdays[1] if max_workdays is None else min(r.workdays[1], max_workdays)
        if top < r.workdays[0]:
            raise ValueError(f"the period leaves {max_workdays} working days for a "
                             f"'{family}' case, which needs {r.workdays[0]}: simulate more days")
        workdays = rng.randint(r.workdays[0], top)
    else:
        duration = int(_log_uniform(rng, *r.minutes) * MINUTE)
        duration -= duration % 1000
    return Params(family=family, intensity=intensity,
                  onset=rng.choice(("sudden", "gradual")), role=rng.choice(r.roles),
                  time_of_day=rng.choice(r.times), duration_ms=duration, workdays=workdays,
                  leaver=rng.random() < r.leaver,
                  new_address=family == "off_pattern" and rng.random() < 0.6)


def ramp(p: Params, fraction: float) -> float:
    """The multiple of the usual rate at ``fraction`` (0..1) of the case."""
    if p.onset == "sudden":
        return p.intensity
    return 1.0 + (p.intensity - 1.0) * min(1.0, 2.0 * fraction)


def reaches(onset: str, intensity: float, level: float) -> float | None:
    """The fraction (0..1) of a case at which :func:`ramp` first reaches ``level`` times the
    usual rate; None if it never does."""
    if intensity < level:
        return None
    if onset == "sudden" or level <= 1.0:
        return 0.0
    return (level - 1.0) / (2.0 * (intensity - 1.0))


def hours(ms: int) -> float:
    return ms / HOUR
