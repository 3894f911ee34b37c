"""Fuzzing event-time ordering and deduplication: no event is lost, none is seen twice.

The Reorderer holds events until every live partition has passed them. Under any sequence of
pushes (random partitions, out-of-order and equal times, redeliveries), idle partitions,
rebalances and bounds on what it remembers, every event pushed is either released exactly once
or counted as a duplicate — ``released + duplicates == pushed`` (an id reused with other
content is a conflict, released) — and the release order is
event-time order except for events it reports as late. Through the whole Detector: how
events are spread over partitions does not change the alerts, and a redelivered event
(same ``event.id``) is dropped once, so the alerts are exactly those without it.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from hypothesis import event, example, given
from hypothesis import strategies as st

from tests.fuzz._scenarios import run_scenario, scenarios, unique_ids
from tests.fuzz._support import T0, fuzz
from watchdog.alerts.model import encode_alert
from watchdog.engine.ordering import Reorderer
from watchdog.events import AccessEvent, EventInfo, User


def _event(i: int, t: float, dataset: str, seq: int | None, user: str = "u") -> AccessEvent:
    info = EventInfo(id=f"ev-{i}", action="read", dataset=dataset) if seq is None else \
        EventInfo(id=f"ev-{i}", action="read", dataset=dataset, sequence=seq)
    return AccessEvent(timestamp=datetime.fromtimestamp(t, UTC), event=info, user=User(id=user))


_KIND = st.sampled_from(("push",) * 6 + ("again",) * 2 + ("idle", "assign"))
_TIME = st.one_of(st.integers(0, 20).map(float), st.floats(0, 7200, allow_nan=False))
_PARTITION = st.integers(0, 3)
_DATASET = st.sampled_from(("", "a", "b"))
_SEQ = st.none() | st.integers(0, 5)
_USER = st.sampled_from(("u", "u", "other"))
_PARTITIONS = st.sets(_PARTITION)


@st.composite
def operations(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """push (id, time, partition, dataset, sequence, user), idle (partition), assign
    (partitions). A redelivery pushes an earlier event again (same id, time, dataset and
    sequence) on any partition, as the same document or (a buggy producer) another one."""
    n_ids = draw(st.integers(1, 30))
    ops: list[tuple[Any, ...]] = []
    pushes: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(1, 80))):
        kind = draw(_KIND)
        if kind == "again" and pushes:
            _, i, t, _, dataset, seq, _ = pushes[draw(st.integers(0, len(pushes) - 1))]
            ops.append(("push", i, t, draw(_PARTITION), dataset, seq, draw(_USER)))
        elif kind in ("push", "again"):
            ops.append(("push", draw(st.integers(0, n_ids - 1)), T0 + draw(_TIME),
                        draw(_PARTITION), draw(_DATASET), draw(_SEQ), "u"))
            pushes.append(ops[-1])
        elif kind == "idle":
            ops.append(("idle", draw(_PARTITION)))
        else:
            ops.append(("assign", draw(_PARTITIONS)))
    return ops


@fuzz("order_reorderer", 100)
@given(ops=operations(),
       lateness=st.sampled_from((0.0, 1.0, 300.0)),
       horizon=st.sampled_from((0.0, 5.0, 3600.0, float("inf"))),
       remembered=st.sampled_from((1, 2, 5, 1_000_000)))
# Found by this test: an id forgotten (past max_remembered) while its event is still pending,
# then another document under that id: the heap compared the two events -> TypeError.
@example(ops=[("push", 0, T0 + 50, 1, "", None, "u"), ("push", 1, T0 + 100, 0, "", None, "u"),
              ("push", 2, T0 + 60, 1, "", None, "u"),
              ("push", 1, T0 + 100, 0, "", None, "other")],
         lateness=0.0, horizon=3600.0, remembered=1)
def test_reorderer_never_loses_an_event(ops: list[tuple[Any, ...]], lateness: float,
                                        horizon: float, remembered: int) -> None:
    r = Reorderer(lateness=lateness, dedupe_horizon=horizon, max_remembered=remembered)
    pushed: Counter[int] = Counter()  # id() of the event objects pushed and not duplicates
    released: Counter[int] = Counter()
    in_order: list[tuple[float, str, int, str]] = []  # keys of releases not reported late
    pushes = 0
    made: dict[int, AccessEvent] = {}

    def take(out: list[tuple[AccessEvent, float]], late_one: bool) -> None:
        keys = []
        for ev, t in out:
            released[id(ev)] += 1
            assert ev.timestamp.timestamp() == t
            keys.append(_key(ev))
        # one release is in the total order (time, dataset, sequence, id) ...
        assert keys == sorted(keys)
        if not late_one:
            in_order.extend(keys)

    for op in ops:
        if op[0] == "push":
            _, i, t, partition, dataset, seq, user = op
            ev = _event(i, t, dataset, seq, user)
            made[id(ev)] = ev  # keep it alive: ids of objects must stay unique
            dups, late = r.stats.duplicates, r.stats.late
            out = r.push(ev, ev.timestamp.timestamp(), partition)
            pushes += 1
            if r.stats.duplicates == dups:
                pushed[id(ev)] += 1
            else:
                assert out == []
            take(out, r.stats.late > late)
        elif op[0] == "idle":
            take(r.idle(op[1]), False)
        else:
            r.assign(op[1])
    take(r.flush(), False)
    assert len(r) == 0
    assert r.stats.released + r.stats.duplicates == pushes
    assert released == pushed  # every event kept was released exactly once
    # ... and across releases event time never goes back except for a late event. (Not the
    # whole key: an event arriving with exactly the time of the last release, behind peers
    # of that time with a greater key, is released after them without counting as late.)
    times = [k[0] for k in in_order]
    assert times == sorted(times), "released out of event-time order without being late"
    if remembered >= pushes and horizon == float("inf"):
        # nothing forgotten: every id is released once per content (another content under a
        # known id is a conflict, processed), all redeliveries are duplicates
        versions = Counter(made[k].event.id for k in released.elements())
        assert r.stats.conflicts == sum(n - 1 for n in versions.values())
        if max(versions.values(), default=0) <= 4:  # (past 4 versions, one is not remembered)
            ids = Counter((made[k].event.id, made[k]) for k in released.elements())
            assert all(n == 1 for n in ids.values()), ids
    event(f"late={min(r.stats.late, 3)}")
    event(f"duplicates={min(r.stats.duplicates, 3)}")


# -- through the Detector ----------------------------------------------------------------------
@st.composite
def partitioned(draw: st.DrawFn) -> tuple[dict[str, Any], list[int], list[int]]:
    """A scenario with unique event ids, a partition for every event, and an interleaving of
    the partitions (each partition in event-time order, as Kafka keeps one key's order)."""
    sc = unique_ids(draw(scenarios(max_events=30)))
    events = sc["events"]
    sc["lateness"] = draw(st.sampled_from((60.0, 300.0, 3600.0)))
    parts = draw(st.lists(st.integers(0, 2), min_size=len(events), max_size=len(events)))
    # arrival order: repeatedly take the next event of a randomly chosen partition
    arrival = draw(st.permutations(range(len(events))))
    return sc, parts, list(arrival)


def _key(ev: AccessEvent) -> tuple[float, str, int, str]:
    seq = ev.event.sequence
    return (ev.timestamp.timestamp(), ev.event.dataset or "", seq if isinstance(seq, int)
            else -1, ev.event.id)


@fuzz("order_partitions", 30, slow=True)
@given(case=partitioned())
def test_partitioning_does_not_change_the_alerts(
        case: tuple[dict[str, Any], list[int], list[int]]) -> None:
    sc, parts, arrival = case
    late: list[int] = []

    def in_one_partition(evs: list[AccessEvent]) -> list[tuple[int, int]]:
        return [(i, 0) for i in sorted(range(len(evs)), key=lambda i: _key(evs[i]))]

    def spread(evs: list[AccessEvent]) -> list[tuple[int, int]]:
        # each partition in its own event-time order; partitions interleaved by ``arrival``
        queues: dict[int, list[int]] = {}
        for i in sorted(range(len(evs)), key=lambda i: _key(evs[i])):
            queues.setdefault(parts[i], []).append(i)
        order = []
        for i in arrival:  # the i-th arrival comes from the partition of event i
            order.append((queues[parts[i]].pop(0), parts[i]))
        # an event arriving behind the watermark (a partition first heard of late) is
        # processed at once, out of order: then the alerts may rightly differ
        high: dict[int, float] = {}
        released_upto = float("-inf")
        for i, p in order:
            t = evs[i].timestamp.timestamp()
            if t <= released_upto:  # (equal: a tie released after its peers)
                late.append(i)
            high[p] = max(high.get(p, t), t)
            released_upto = max(released_upto, min(high.values()) - sc["lateness"])
        return order

    reference = [encode_alert(a) for a in run_scenario(sc, in_one_partition)]
    alerts = [encode_alert(a) for a in run_scenario(sc, spread)]
    event("some late" if late else "none late")
    if not late:
        assert alerts == reference


@fuzz("order_redelivery", 30, slow=True)
@given(sc=scenarios(max_events=30, spans=(600.0, 3600.0)), data=st.data())
def test_redelivered_events_are_dropped_once(sc: dict[str, Any], data: st.DataObject) -> None:
    sc = unique_ids(sc)
    n = len(sc["events"])
    # each event delivered 1..3 times: the copies come later, on any partition
    copies = data.draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    order: list[tuple[int, int]] = []
    pending: list[tuple[int, int]] = []
    for i in range(n):
        order.append((i, sc["plan"][i][0]))
        pending.extend((i, data.draw(st.integers(0, 2))) for _ in range(copies[i] - 1))
        while pending and data.draw(st.booleans()):
            order.append(pending.pop(data.draw(st.integers(0, len(pending) - 1))))
    order.extend(pending)

    once = [encode_alert(a) for a in run_scenario(sc)]
    redelivered = [encode_alert(a) for a in run_scenario(sc, lambda _evs: order)]
    assert redelivered == once
