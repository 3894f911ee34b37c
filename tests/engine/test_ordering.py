"""Reorderer: event-time order across partitions, independent of arrival; duplicates dropped;
late events processed rather than lost."""

from __future__ import annotations

import random

import orjson
import pytest

from tests.builders import at, decode_event, event, event_doc, login
from watchdog.decode import Decoder
from watchdog.engine.ordering import DUPLICATE, Reorderer
from watchdog.events import AccessEvent, epoch

decode = Decoder(AccessEvent).decode


def ev(seconds: float, **kw) -> AccessEvent:
    return login(when=at(seconds=seconds), **kw)


def t_of(e: AccessEvent) -> float:
    return epoch(e.timestamp)


def key(e: AccessEvent):
    seq = e.event.sequence
    return (t_of(e), e.event.dataset or "", seq if isinstance(seq, int) else -1, e.event.id)


def push_all(r: Reorderer, evs, partition: int = 0):
    out = []
    for e in evs:
        out.extend(r.push(e, t_of(e), partition))
    return out


def test_disorder_within_lateness_is_released_in_order():
    rng = random.Random(7)
    evs = [ev(i * 10) for i in range(300)]
    # arrival order: sort by time plus a jitter below the lateness
    shuffled = sorted(evs, key=lambda e: t_of(e) + rng.uniform(0, 299))
    assert shuffled != evs
    r = Reorderer(lateness=300)
    released = push_all(r, shuffled) + r.flush()
    assert [e for e, _ in released] == evs
    assert r.stats.late == 0
    assert r.stats.released == 300


def test_nothing_is_released_before_the_watermark_passes_it():
    r = Reorderer(lateness=60)
    assert r.push(ev(0), t_of(ev(0))) == []
    e = ev(30)
    assert r.push(e, t_of(e)) == []
    later = ev(61)
    released = r.push(later, t_of(later))
    assert [t for _, t in released] == [t_of(ev(0))]
    assert len(r) == 2


def test_equal_times_are_ordered_by_dataset_sequence_and_id_not_arrival():
    same = at()
    evs = [event(when=same, dataset="b", sequence=1, id="x1"),
           event(when=same, dataset="a", sequence=9, id="x2"),
           event(when=same, dataset="a", sequence=2, id="x3"),
           event(when=same, dataset="a", sequence=2, id="x0")]
    orders = set()
    for perm in ([0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]):
        r = Reorderer()
        out = push_all(r, [evs[i] for i in perm]) + r.flush()
        orders.add(tuple(e.event.id for e, _ in out))
    assert orders == {("x0", "x3", "x2", "x1")}


def test_two_partitions_release_in_global_order():
    r = Reorderer(lateness=0)
    p0 = [ev(i * 60) for i in range(0, 20, 2)]   # even minutes
    p1 = [ev(i * 60) for i in range(1, 20, 2)]   # odd minutes
    out = []
    for a, b in zip(p0, p1, strict=True):
        out += r.push(a, t_of(a), 0)
        out += r.push(b, t_of(b), 1)
    out += r.flush()
    times = [t for _, t in out]
    assert times == sorted(times)
    assert len(out) == 20
    assert r.stats.late == 0


def test_a_lagging_partition_holds_the_others_back():
    r = Reorderer(lateness=0)
    out = r.push(ev(0), t_of(ev(0)), 1)
    ahead = [ev(s) for s in (100, 200, 300)]
    for e in ahead:
        out += r.push(e, t_of(e), 0)
    assert [t for _, t in out] == [t_of(ev(0))]  # partition 1 is still at second 0
    out = r.push(ev(150), t_of(ev(150)), 1)
    assert [t for _, t in out] == [t_of(ev(100)), t_of(ev(150))]
    # partition 1 has nothing more to say: stop waiting for it
    out = r.idle(1)
    assert [t for _, t in out] == [t_of(ev(200)), t_of(ev(300))]


def test_an_expected_partition_holds_back_before_its_first_event():
    r = Reorderer(lateness=0)
    r.expect({0, 1})
    assert push_all(r, [ev(0), ev(100)], 0) == []  # partition 1 has not delivered yet
    out = r.push(ev(50), t_of(ev(50)), 1)
    assert [t for _, t in out] == [t_of(ev(0)), t_of(ev(50))]
    assert [t for _, t in r.idle(1)] == [t_of(ev(100))]


def test_hours_apart_partitions_still_merge_in_order():
    # a backlog: partition 0 is read hours ahead of partition 1
    r = Reorderer(lateness=300)
    p0 = [ev(3600 * 5 + i) for i in range(50)]
    p1 = [ev(i * 600) for i in range(40)]
    out = r.push(p1[0], t_of(p1[0]), 1)
    out += push_all(r, p0, 0)
    out += push_all(r, p1[1:], 1)
    out += r.flush()
    times = [t for _, t in out]
    assert times == sorted(times)
    assert len(out) == 90


def test_duplicates_are_dropped_pending_or_released():
    r = Reorderer(lateness=0)
    a = ev(0, id="dup-1")
    assert len(r.push(a, t_of(a))) == 1
    assert r.push(a, t_of(a)) == []  # already released
    b = ev(10, id="dup-2")
    r2 = Reorderer(lateness=60)
    r2.push(b, t_of(b))
    assert r2.push(b, t_of(b)) == []  # still pending
    assert len(r2.flush()) == 1
    assert r.stats.duplicates == 1
    assert r2.stats.duplicates == 1


def test_a_redelivery_is_the_same_content_however_it_is_written():
    r = Reorderer(lateness=0)
    doc = event_doc(id="same", when="2026-11-18T10:00:00+09:00")
    first = decode_event(doc)
    assert len(r.push(first, t_of(first))) == 1
    # other key order, other spacing, the same instant in another offset, an unknown field
    raw = (b'{ "user": {"id": "e1"}, "extra": 1, "@timestamp": "2026-11-18T01:00:00Z", '
           + orjson.dumps({k: v for k, v in doc.items() if k not in ("user", "@timestamp")})[1:])
    again = decode(raw)
    assert again is not first
    assert r.push(again, t_of(again)) == []
    assert (r.stats.duplicates, r.stats.conflicts, r.conflict) == (1, 0, False)


@pytest.mark.parametrize("lateness", [0.0, 60.0])  # the first released, or still pending
def test_a_reused_id_with_other_content_is_a_conflict_and_processed(lateness: float):
    r = Reorderer(lateness=lateness)
    first = event(id="same", when=at(seconds=0))
    other = event(id="same", when=at(seconds=0), action="export")  # one field differs
    r.push(first, t_of(first))
    r.push(other, t_of(other))
    assert r.conflict
    assert r.last != DUPLICATE
    assert (r.stats.duplicates, r.stats.conflicts) == (0, 1)
    # a redelivery of either version is a duplicate; a third version is another conflict
    assert r.push(other, t_of(other)) == []
    assert r.push(first, t_of(first)) == []
    assert not r.conflict
    third = event(id="same", when=at(seconds=5))  # another time is other content
    r.push(third, t_of(third))
    assert r.conflict
    released = r.flush() if lateness else []
    assert r.stats.released == 3
    assert (r.stats.duplicates, r.stats.conflicts) == (2, 2)
    assert len(released) == (3 if lateness else 0)


def test_a_conflict_is_known_across_a_new_generation_of_remembered_ids():
    r = Reorderer(lateness=0, dedupe_horizon=60)
    first = event(id="same", when=at(seconds=0))
    other = event(id="same", when=at(seconds=0), action="export")
    r.push(first, t_of(first))
    r.push(other, t_of(other))
    later = ev(61)
    r.push(later, t_of(later))  # a new generation: "same" is remembered in the old one
    assert r.push(other, t_of(other)) == []
    assert r.push(first, t_of(first)) == []
    assert r.stats.duplicates == 2


def test_ids_are_forgotten_after_the_dedupe_horizon():
    r = Reorderer(lateness=0, dedupe_horizon=60)
    first = ev(0, id="again")
    r.push(first, t_of(first))
    later = ev(600)
    r.push(later, t_of(later))
    again = ev(601, id="again")
    assert len(r.push(again, t_of(again))) == 1


def test_remembered_ids_stay_bounded_in_a_burst():
    r = Reorderer(lateness=0, dedupe_horizon=1e9, max_remembered=100)
    for i in range(1000):
        e = ev(i, id=f"burst-{i}")
        r.push(e, t_of(e))
        assert len(r._seen) + len(r._seen_old) <= 102
    recent = ev(999, id="burst-999")
    assert r.push(recent, t_of(recent)) == []  # the latest ids are still known


def test_a_pending_id_is_known_however_long_it_waits():
    # partition 1 is hours behind: partition 0's events wait while many generations pass
    r = Reorderer(lateness=0, dedupe_horizon=60)
    r.expect({0, 1})
    ahead = ev(36000, id="waiting")
    r.push(ahead, t_of(ahead), 0)
    for i in range(100):
        e = ev(i * 300)
        r.push(e, t_of(e), 1)
    assert r.push(ahead, t_of(ahead), 0) == []
    assert r.stats.duplicates == 1


def test_pending_ids_are_not_copied_again_and_again(monkeypatch):
    """A backlog: thousands of events wait while the other partition crosses many dedupe
    horizons; a new generation copies the pending ids, so it must not come with every release."""
    copied: list[int] = []
    original = Reorderer._next_generation

    def counting(self: Reorderer) -> None:
        copied.append(len(self))
        original(self)

    monkeypatch.setattr(Reorderer, "_next_generation", counting)
    r = Reorderer(lateness=0, dedupe_horizon=60)
    r.expect({0, 1})
    for i in range(2000):
        e = ev(1_000_000 + i)
        r.push(e, t_of(e), 0)
    for i in range(2000):
        e = ev(i * 120)
        r.push(e, t_of(e), 1)
    assert len(r) == 2000
    assert sum(copied) <= 3 * 2000


def test_late_events_are_processed_not_lost():
    r = Reorderer(lateness=10)
    out = push_all(r, [ev(0), ev(100), ev(200)])
    assert [t for _, t in out] == [t_of(ev(0)), t_of(ev(100))]
    late = ev(50)
    released = r.push(late, t_of(late))
    assert [e.event.id for e, _ in released] == [late.event.id]
    assert r.stats.late == 1
    assert len(r.flush()) == 1  # ev(200)


def test_flush_releases_everything():
    r = Reorderer(lateness=10_000)
    push_all(r, [ev(s) for s in (5, 1, 3)])
    assert len(r) == 3
    assert [t - t_of(ev(0)) for _, t in r.flush()] == [1, 3, 5]
    assert len(r) == 0


def test_assign_drops_revoked_partitions():
    r = Reorderer(lateness=0)
    r.push(ev(0), t_of(ev(0)), 1)
    out = push_all(r, [ev(100), ev(200)], 0)
    assert out == []
    r.assign({0})
    later = ev(300)
    out = r.push(later, t_of(later), 0)
    assert [t for _, t in out] == [t_of(ev(100)), t_of(ev(200)), t_of(ev(300))]


@pytest.mark.parametrize("seed", range(5))
def test_random_arrival_gives_the_sorted_order(seed):
    rng = random.Random(seed)
    evs = [event(when=at(seconds=rng.randrange(0, 3000)), dataset=rng.choice("abc"),
                 sequence=rng.randrange(5), subject_ids=None, categories=None, purpose=None)
           for _ in range(200)]
    arrival = sorted(evs, key=lambda e: t_of(e) + rng.uniform(0, 100))
    r = Reorderer(lateness=120)
    out = push_all(r, arrival) + r.flush()
    assert [e for e, _ in out] == sorted(evs, key=key)
