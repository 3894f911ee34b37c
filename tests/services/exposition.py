"""The daemon's /metrics text as ``name{labels}`` -> value, for tests and benches.

Keys are the sample lines' text before the value, exactly as exposed, so a test can look up
``watchdog_queue_depth{queue="reorder"}`` as written."""

from __future__ import annotations

from typing import Any


def samples(text: str) -> dict[str, float]:
    """Every ``watchdog_`` sample of an exposition."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("watchdog_"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def total(found: dict[str, float], name: str) -> float:
    """The sum of ``name``'s samples over all their labels."""
    return sum(v for k, v in found.items() if k.split("{")[0] == name)


def metric_value(metric: Any) -> float:
    """A counter's or gauge's value (a labelled child too) through prometheus_client's public
    ``collect()``, not its private ``_value``."""
    (family,) = metric.collect()
    return next(s.value for s in family.samples if s.name in (family.name, f"{family.name}_total"))
