"""bench/bench_assignment.py: rolling restarts through the real assignors' code. With the
claims of watchdog-state no partition ends with an owner that has not learnt it; with
aiokafka's round robin, member ids new at every start move most of them."""

from __future__ import annotations

import random

from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

from bench.bench_assignment import rolling_restart
from watchdog.daemon.sources.kafka_assignor import StateAssignor


def test_a_rolling_restart_keeps_every_partition_with_its_history() -> None:
    rnd = random.Random(7)
    state = StateAssignor(lambda: {}, max_behind=10_000_000)
    for n_inst, n_parts in ((2, 4), (3, 7), (4, 12), (6, 6), (3, 2)):
        for _ in range(20):
            assert rolling_restart(state.assign, n_inst, n_parts, rnd) == 0.0
    rr = [rolling_restart(RoundRobinPartitionAssignor.assign, 3, 12, rnd) for _ in range(20)]
    assert sum(rr) / len(rr) > 0.5  # the bench measures a difference that exists
