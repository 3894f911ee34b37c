"""Detector = Reorderer + Engine + stages: disorder within lateness changes nothing; partitions
merge; duplicates raise nothing twice; late events still raise their alerts."""

from __future__ import annotations

import random

import msgspec
import orjson
import pytest

from tests.builders import KEY, at, event, login, policy
from tests.engine.scenario import DIRECTORY, SUBJECTS, events
from watchdog.alerts.model import Alert, encode_alert
from watchdog.alerts.pseudonym import Pseudonymizer
from watchdog.engine.detector import Detector
from watchdog.engine.engine import Engine
from watchdog.engine.ordering import DUPLICATE, LATE, QUEUED, Reorderer
from watchdog.events import AccessEvent, epoch
from watchdog.rules import ORDERED, RULE_IDS, SUPERSEDES, default_rules


def detector(lateness: float = 300.0, stages=(), early: bool = False) -> Detector:
    eng = Engine(policy(), Pseudonymizer(KEY), default_rules())
    for rec in DIRECTORY:
        eng.apply_directory(rec)
    for srec in SUBJECTS:
        eng.apply_subject(srec)
    return Detector(eng, Reorderer(lateness=lateness), stages, early=early)


def run_detector(evs, partitions=None, lateness: float = 300.0,
                 early: bool = False) -> list[bytes]:
    det = detector(lateness, early=early)
    if partitions:
        det.order.expect(set(partitions))  # assigned: wait for each before moving on
    out: list[Alert] = []
    for i, e in enumerate(evs):
        out += det.push(e, epoch(e.timestamp), partitions[i] if partitions else 0).alerts
    out += det.flush()
    return [encode_alert(a) for a in out]


def jitter(evs, rng: random.Random, within: float):
    return sorted(evs, key=lambda e: epoch(e.timestamp) + rng.uniform(0, within))


def test_out_of_order_within_lateness_gives_the_same_alerts_as_sorted_input():
    evs = events()
    expected = run_detector(evs)
    assert len(expected) > 18
    for seed in range(5):
        shuffled = jitter(evs, random.Random(seed), 299)
        assert run_detector(shuffled) == expected


def test_partitions_keyed_by_account_give_the_same_alerts():
    evs = events()
    expected = run_detector(evs)
    # one account's events in order on its partition; partitions interleave arbitrarily
    rng = random.Random(3)
    users = sorted({e.user.id for e in evs})
    parts = {u: i % 3 for i, u in enumerate(users)}
    queues: dict[int, list[AccessEvent]] = {0: [], 1: [], 2: []}
    for e in evs:
        queues[parts[e.user.id]].append(e)
    arrival, labels = [], []
    while any(queues.values()):
        p = rng.choice([k for k, q in queues.items() if q])
        arrival.append(queues[p].pop(0))
        labels.append(p)
    assert len(set(labels)) == 3
    assert run_detector(arrival, labels, lateness=0) == expected


def test_duplicates_raise_nothing_twice():
    evs = events()
    twice = [e for e in evs for _ in (0, 1)]
    assert run_detector(twice) == run_detector(evs)


def test_the_given_reorderer_is_used():
    order = Reorderer(lateness=5)
    assert detector().order is not order
    det = Detector(detector().engine, order)
    assert det.order is order


def test_late_events_still_raise_their_alerts():
    det = detector(lateness=0)
    first = event(when=at(minutes=10), dataset=None)
    assert not det.push(first, epoch(first.timestamp)).alerts
    late = event(when=at(minutes=1), dataset=None, dest={"kind": "external_media"},
                 action="copy")
    pushed = det.push(late, epoch(late.timestamp))
    assert [a.rule for a in pushed.alerts] == ["external_media"]
    assert pushed.outcome == LATE
    assert [ev for ev, _ in pushed.released] == [late]
    assert det.order.stats.late == 1


def test_push_says_what_it_did():
    det = detector(lateness=60)
    first = event(when=at(minutes=1), dataset=None, dest={"kind": "external_media"},
                  action="copy")
    queued = det.push(first, epoch(first.timestamp))
    assert (queued.outcome, queued.alerts, queued.released) == (QUEUED, (), ())
    redelivered = det.push(first, epoch(first.timestamp))
    assert redelivered.duplicate
    assert redelivered.outcome == DUPLICATE
    assert not redelivered.alerts
    assert not redelivered.released
    later = event(when=at(minutes=5), dataset=None)
    released = det.push(later, epoch(later.timestamp))  # moves the watermark past the first
    assert not released.duplicate
    assert released.outcome == QUEUED
    assert [ev for ev, _ in released.released] == [first]
    assert [a.rule for a in released.alerts] == ["external_media"]
    assert det.order.stats.duplicates == 1


class Recorder:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def observe(self, ev: AccessEvent, t: float) -> list[Alert]:
        self.seen.append(ev.event.id)
        return []

    def flush(self) -> list[Alert]:
        return [Alert(alert_id="anomaly:0", rule="anomaly", severity="medium",
                      ts="2026-11-18T01:00:00.000Z", user_id="e1", event_ids=("x",),
                      summary="flushed")]


def test_stages_see_every_event_in_event_time_order_and_flush_last():
    rec = Recorder()
    det = detector(stages=[rec])
    evs = events()
    for e in jitter(evs, random.Random(1), 200):
        det.push(e, epoch(e.timestamp))
    out = det.flush()
    assert rec.seen == [e.event.id for e in sorted(
        evs, key=lambda e: (epoch(e.timestamp), e.event.dataset or "",
                            e.event.sequence if isinstance(e.event.sequence, int) else -1,
                            e.event.id))]
    assert out[-1].rule == "anomaly"
    assert det.processed == len(evs)


# -- early: event-alone rules on arrival, ordered rules on release -----------------------------


def test_early_gives_the_same_alerts_in_any_arrival_order():
    evs = events()
    expected = sorted(run_detector(evs))
    rules = {orjson.loads(a)["rule"] for a in expected}
    assert rules & ORDERED  # both kinds are in the scenario
    assert rules - ORDERED
    assert sorted(run_detector(evs, early=True)) == expected
    for seed in range(5):
        shuffled = jitter(evs, random.Random(seed), 299)
        assert sorted(run_detector(shuffled, early=True)) == expected
    twice = [e for e in evs for _ in (0, 1)]
    assert sorted(run_detector(twice, early=True)) == expected


def test_early_alerts_do_not_wait_for_the_buffer():
    det = detector(lateness=300, early=True)
    copy = event(when=at(minutes=1), dataset=None, dest={"kind": "external_media"},
                 action="copy")
    alerts = det.push(copy, epoch(copy.timestamp)).alerts
    assert [a.rule for a in alerts] == ["external_media"]
    assert len(det.order) == 1  # still buffered: the ordered rules have not seen it yet
    assert [a.rule for a in det.flush()] == []  # and nothing twice on release
    # without early, the same alert waits for the release
    det = detector(lateness=300)
    assert not det.push(copy, epoch(copy.timestamp)).alerts
    assert [a.rule for a in det.flush()] == ["external_media"]


def test_ordered_rules_wait_for_the_buffer_even_early():
    det = detector(lateness=300, early=True)
    out: list[Alert] = []
    # failed logins past the brute-force threshold: a window rule, judged in order only
    for i in range(30):
        ev = login(outcome="failure", when=at(minutes=1, seconds=i))
        out += det.push(ev, epoch(ev.timestamp)).alerts
    assert "brute_force" not in {a.rule for a in out}
    assert "brute_force" in {a.rule for a in det.flush()}


def test_superseding_rules_run_in_the_same_phase_as_what_they_supersede():
    for winner, losers in SUPERSEDES.items():
        assert all((loser in ORDERED) == (winner in ORDERED) for loser in losers)
    assert set(RULE_IDS) >= ORDERED


def test_early_keeps_what_it_looked_up_only_while_the_event_waits():
    det = detector(lateness=300, early=True)
    evs = events()
    for e in [x for x in evs for _ in (0, 1)]:  # redelivered too
        det.push(e, epoch(e.timestamp))
        assert len(det._known) == len(det.order) + det.order.held()
    det.flush()
    assert det._known == {}


def test_early_may_be_turned_on_and_off_between_pushes():
    """The daemon judges on arrival only while caught up: a mix gives the same alerts."""
    evs = events()
    expected = sorted(run_detector(evs))
    det = detector(lateness=300, early=True)
    out: list[Alert] = []
    for i, e in enumerate(jitter(evs, random.Random(7), 200)):
        det.early = (i // 7) % 2 == 0
        out += det.push(e, epoch(e.timestamp)).alerts
    out += det.flush()
    assert sorted(encode_alert(a) for a in out) == expected
    assert det._known == {}


# -- a reused event.id with other content: processed, counted, told apart -------------------


@pytest.mark.parametrize("early", [False, True])
def test_a_reused_id_with_other_content_raises_its_own_alerts(early: bool):
    det = detector(lateness=60, early=early)
    first = event(id="same", when=at(minutes=1), dataset=None, action="copy",
                  dest={"kind": "external_media"})
    other = event(id="same", when=at(minutes=1), dataset=None, action="copy",
                  dest={"kind": "external_media"}, subject_ids=["c-2"])
    out = list(det.push(first, epoch(first.timestamp)).alerts)
    pushed = det.push(other, epoch(other.timestamp))
    assert pushed.conflict
    assert not pushed.duplicate
    out += pushed.alerts
    again = det.push(other, epoch(other.timestamp))  # its redelivery: a duplicate
    assert again.duplicate
    assert not again.conflict
    out += again.alerts
    out += det.flush()
    assert [a.rule for a in out] == ["external_media", "external_media"]
    assert len({a.alert_id for a in out}) == 2  # not taken for the first version's alert
    assert all(a.event_ids == ("same",) for a in out)
    assert det.order.stats.conflicts == 1
    assert det.processed == 2


def test_a_conflicts_alerts_are_the_same_early_or_not():
    """Which version of an id is "the conflict" is the one that arrives later: for one arrival
    order, early (the daemon) and not (replay) raise the same alerts; in any order, the same
    rules."""
    evs = events()
    reused = [msgspec.structs.replace(e, event=msgspec.structs.replace(
        e.event, id=evs[0].event.id)) for e in evs[1:6]]
    stream = [*evs, *reused]
    expected = run_detector(stream)
    assert len(expected) > len(run_detector(evs))  # the reused ids raised alerts of their own
    assert sorted(run_detector(stream, early=True)) == sorted(expected)

    def rules(alerts: list[bytes]) -> list[str]:
        return sorted(orjson.loads(a)["rule"] for a in alerts)

    for seed in range(3):
        shuffled = jitter(stream, random.Random(seed), 299)
        assert sorted(run_detector(shuffled, early=True)) == sorted(run_detector(shuffled))
        assert rules(run_detector(shuffled)) == rules(expected)
