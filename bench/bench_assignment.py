"""How many partitions a rolling restart leaves with an instance that has not learnt them.

Anomaly instances learn their accounts' behaviour and keep it in a file of their own
(``model_state``); what a partition's new owner has not learnt, it learns afresh (days without
day-scale evidence: docs/anomaly-evaluation.md, "Restarts without the learnt state"). This
replays rolling restarts (each instance in turn leaves, the others take its partitions over,
it joins again with a new member id, as every Kafka client does at a start) through the real
assignors' code: aiokafka's round robin and watchdog's ``watchdog-state``
(:mod:`watchdog.daemon.sources.kafka_assignor`), with the claims the daemon would make. Pure
(no broker): the group protocol hands the leader the members' metadata and nothing else.

    .venv/bin/python bench/bench_assignment.py [--trials 300]

Reports, per instances x partitions, the share of partitions whose owner after the rolling
restart has not learnt them since the start (mean over trials, member ids drawn at random).
"""

from __future__ import annotations

import argparse
import random
import uuid
from collections.abc import Callable

from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata

from watchdog.daemon.sources.kafka_assignor import Claim, StateAssignor, encode_claims

TOPIC = "access-logs"


class _Cluster:
    def __init__(self, n: int) -> None:
        self.n = n

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(range(self.n)) if topic == TOPIC else None


class _Instance:
    """One daemon: its member id (new at each start), what it reads, and per partition the
    offset it has learnt it from (0: since the start)."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.member = ""
        self.restart()
        self.owned: set[int] = set()
        self.since: dict[int, int] = {}
        self.saved: dict[int, Claim] = {}  # the file, before the first assignment

    def restart(self) -> None:
        self.member = f"watchdog-{uuid.UUID(int=self.rnd.getrandbits(128))}"

    def claims(self, at: int) -> dict[int, Claim]:
        out = dict(self.saved)
        out.update({p: Claim(self.since[p], at) for p in self.owned})
        return out


def _rebalance(assign: Callable[..., dict[str, object]], members: list[_Instance], n: int,
               at: int) -> None:
    meta = {i.member: ConsumerProtocolMemberMetadata(0, [TOPIC],
                                                     encode_claims({TOPIC: i.claims(at)}))
            for i in members}
    got = assign(_Cluster(n), meta)
    for i in members:
        mine = {p for _t, ps in got[i.member].assignment for p in ps}  # type: ignore[attr-defined]
        for p in mine - i.owned:
            # restored from the file (its history) if it claims it, else learnt from now on
            i.since[p] = i.saved[p].since if p in i.saved else at
        i.owned, i.saved = mine, {}


def rolling_restart(assign: Callable[..., dict[str, object]], n_inst: int, n_parts: int,
                    rnd: random.Random) -> float:
    """The share of partitions whose owner has not learnt them since the start."""
    inst = [_Instance(rnd) for _ in range(n_inst)]
    at = 1_000
    _rebalance(assign, inst, n_parts, 0)
    for i in inst:
        i.since = dict.fromkeys(i.owned, 0)
    for leaving in inst:
        at += 1_000
        leaving.saved = {p: Claim(leaving.since[p], at) for p in leaving.owned}  # at shutdown
        leaving.owned, leaving.since = set(), {}
        _rebalance(assign, [i for i in inst if i is not leaving], n_parts, at)
        at += 100
        leaving.restart()
        _rebalance(assign, inst, n_parts, at)
    return sum(1 for i in inst for p in i.owned if i.since[p] != 0) / n_parts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    state = StateAssignor(lambda: {}, max_behind=10_000_000)
    print("| instances | partitions | round robin: learnt afresh | watchdog-state |")
    print("|---|---|---|---|")
    for n_inst, n_parts in ((2, 4), (2, 12), (3, 12), (5, 24), (8, 48)):
        rr = [rolling_restart(RoundRobinPartitionAssignor.assign, n_inst, n_parts, rnd)
              for _ in range(args.trials)]
        ws = [rolling_restart(state.assign, n_inst, n_parts, rnd) for _ in range(args.trials)]
        print(f"| {n_inst} | {n_parts} | {sum(rr) / len(rr):.0%} | {sum(ws) / len(ws):.0%} |")


if __name__ == "__main__":
    main()
