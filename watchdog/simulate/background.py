"""Batch jobs: every dataset's steady machine traffic, and the nightly hand-overs.

Each dataset's job writes an event every 20 to 240 seconds around the clock, so no dataset
is ever silent for the policy's ``source_silence_minutes`` (30) in clean traffic. The
identity provider's share is service-account logins. Hand-overs to processors run at night
in large batches, under the ``bulk_export`` role's hourly limit.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from watchdog.simulate import catalog as C
from watchdog.simulate.behaviour import BATCH, HANDOVERS
from watchdog.simulate.clock import HOUR, MINUTE, SECOND, Calendar
from watchdog.simulate.ids import derive
from watchdog.simulate.org import Account
from watchdog.simulate.render import Factory
from watchdog.simulate.steps import StepRunner

MAX_GAP = 240 * SECOND
Event = tuple[int, dict[str, Any]]


class Background:
    def __init__(self, seed: int, cal: Calendar, services: list[Account], factory: Factory,
                 runner: StepRunner) -> None:
        self.seed = seed
        self.cal = cal
        self.services = services
        self.by_dataset = {s.dataset: s for s in services}
        self.factory = factory
        self.runner = runner

    def sources(self) -> list[Iterator[Event]]:
        return [self._steady(d.name) for d in C.DATASETS] + [self._handovers()]

    def _steady(self, dataset: str) -> Iterator[Event]:
        rng = random.Random(derive(self.seed, "steady", dataset))
        fac, runner = self.factory, self.runner
        svc = self.by_dataset[dataset]
        table = BATCH[dataset]
        steps = [s for _, s in table]
        cum = list(accumulate(w for w, _ in table))
        budget = [1 << 60]
        cur: list[Any] = [None]
        t = self.cal.start + rng.randint(0, 90) * SECOND
        while t < self.cal.end:
            ts = fac.floor(dataset, t)
            if dataset == C.IDP:
                who = self.services[int(rng.random() * len(self.services))]
                yield ts, fac.event(ts, dataset, "login",
                                    {"id": who.user_id, "roles": list(who.roles)},
                                    ip=who.ip, host=who.host)
            else:
                step = rng.choices(steps, cum_weights=cum)[0]
                got = runner.data(step, ts, rng, cur, budget)
                if got is not None:
                    yield ts, fac.event(ts, dataset, step.action, {"id": svc.user_id},
                                        ip=svc.ip, host=svc.host, data=got[0], dest=got[1])
            t += rng.randint(20 * SECOND, MAX_GAP)

    def _handovers(self) -> Iterator[Event]:
        fac, runner = self.factory, self.runner
        for day in self.cal.days:
            rng = random.Random(derive(self.seed, "handover", day.index))
            for dataset, hour, weekdays, step in HANDOVERS:
                t = day.start + hour * HOUR + rng.randint(0, 40 * MINUTE)
                if day.weekday not in weekdays or not self.cal.start <= t < self.cal.end:
                    continue
                svc = self.by_dataset[dataset]
                got = runner.data(step, t, rng, [None], [1 << 60])
                if got is not None:
                    ts = fac.floor(dataset, t)
                    yield ts, fac.event(ts, dataset, step.action, {"id": svc.user_id},
                                        ip=svc.ip, host=svc.host, data=got[0], dest=got[1])
