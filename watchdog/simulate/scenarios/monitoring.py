"""The monitoring itself going blind: log_gap (``user_id`` of the alert is the dataset)."""

from __future__ import annotations

import random

from watchdog.simulate import catalog as C
from watchdog.simulate.clock import MINUTE, SECOND
from watchdog.simulate.scenarios.context import Context
from watchdog.simulate.scenarios.registry import scenario
from watchdog.simulate.stream import Silence


@scenario("sequence_gap", "log_gap")
def sequence_gap(ctx: Context, rng: random.Random) -> None:
    """A dataset's forwarder drops a batch: its next event skips sequence numbers."""
    t = ctx.when(rng, "any", MINUTE)
    dataset = rng.choice(C.DATASETS).name
    ev = ctx.batch_event(t, dataset, rng, seq_skip=rng.randint(3, 400))
    ctx.expect(ev, "log_gap", user_id=dataset)


@scenario("silent_source", "log_gap", exclusive=True)
def silent_source(ctx: Context, rng: random.Random) -> None:
    """A dataset goes silent for longer than ``source_silence_minutes`` while the others
    keep sending; the first event of another dataset after the threshold shows it."""
    silence = int(ctx.thresholds["source_silence_minutes"]) * MINUTE
    outage = silence + rng.randint(10, 40) * MINUTE
    t = ctx.when(rng, "quiet", outage)  # leaves working hours to the other scenarios
    names = [d.name for d in C.DATASETS]
    dataset = rng.choice(names)
    other = rng.choice([n for n in names if n != dataset])
    ctx.batch_event(t, dataset, rng)  # the last event before the outage
    shows = t + silence + SECOND
    ctx.silences.append(Silence(dataset, t, t + outage, t + silence, shows))
    ctx.expect(ctx.batch_event(shows, other, rng), "log_gap", user_id=dataset)
