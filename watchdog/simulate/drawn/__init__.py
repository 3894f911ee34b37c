"""Insider cases whose parameters are drawn at random (``params``): bursts, sustained changes
of leavers, low-and-slow exports and off-pattern access, at 1.5x-50x an account's own usual
rate (``usual``), planned into a simulated world after its training part (``plan``,
``inject``) with their ground truth (``case``). ``bench/bench_anomaly.py`` measures the
anomaly detector on them."""

from watchdog.simulate.drawn.case import Case
from watchdog.simulate.drawn.params import FAMILIES, RANGES, Params, draw
from watchdog.simulate.drawn.plan import Planned, default_per_family, drawn_world, plan_cases

__all__ = ["FAMILIES", "RANGES", "Case", "Params", "Planned", "default_per_family", "draw",
           "drawn_world", "plan_cases"]
