"""Windowed rules keep bounded state on event time (issue 12): idle keys are swept without
changing any alert, a burst of new keys past the cap drops the idlest (counted), and replay and
the daemon keep and drop the same, so they raise the same alerts."""

from __future__ import annotations

import random

import pytest

from tests.builders import KEY, at, engine, event, feed, login, policy
from watchdog.alerts.model import Alert, encode_alert
from watchdog.alerts.pseudonym import Pseudonymizer
from watchdog.engine.detector import Detector
from watchdog.engine.engine import Engine
from watchdog.engine.ordering import Reorderer
from watchdog.events import AccessEvent, epoch
from watchdog.rules import bounded, default_rules
from watchdog.rules.bounded import Bounded

WINDOWED = {"brute_force", "bulk_export", "reidentification"}
# low thresholds: the windows of the stream below cross them now and then
POLICY = policy(thresholds={"failed_logins": 3, "bulk_export_subjects_per_hour": 60})


def stream(seed: int = 1, accounts: int = 60, n: int = 3000) -> list[AccessEvent]:
    """Three days of failed logins, exports and reads of anonymised and identified data by
    a few busy accounts and many occasional ones, in event-time order."""
    rng = random.Random(seed)
    out: list[AccessEvent] = []
    t = 0.0
    for i in range(n):
        t += rng.expovariate(1 / 80)
        busy = rng.random() < 0.5
        user = f"u{rng.randrange(4) if busy else rng.randrange(accounts)}"
        kind = rng.randrange(4)
        when = at(seconds=t)
        if kind == 0:
            out.append(login(id=f"s{seed}-{i}", user=user, outcome="failure", when=when,
                             dataset=None))
        elif kind == 1:
            out.append(event(id=f"s{seed}-{i}", user=user, action="export", when=when,
                             dataset=None, subject_ids=[f"c-{rng.randrange(400)}"
                                                        for _ in range(rng.randrange(1, 40))]))
        else:
            family = f"f{rng.randrange(3)}"
            out.append(event(id=f"s{seed}-{i}", user=user, when=when, dataset=None,
                             resource=f"{family}.table", anonymized=kind == 2 or None,
                             categories=None if kind == 2 else ["identity"],
                             subject_ids=None if kind == 2 else ["c-1"]))
    return out


def windowed(eng: Engine) -> list[bounded.Bounded]:  # type: ignore[type-arg]
    return [r.state for r in eng.rules if r.id in WINDOWED]  # type: ignore[attr-defined]


def encoded(alerts: list[Alert]) -> list[bytes]:
    return sorted(encode_alert(a) for a in alerts)


def test_bounded_sweeps_idle_keys_and_drops_the_idlest_past_the_cap():
    b: Bounded[str, float] = Bounded(lambda v: v, cap=16)
    for i in range(16):
        b.table[f"k{i}"] = float(i)
    b.make_room()  # at the cap: an eighth (2) goes, the idlest
    assert sorted(b.table) == sorted(f"k{i}" for i in range(2, 16))
    assert b.dropped == 2
    b.sweep(100.0, 9.0)  # keys whose latest is at or before 9 are idle
    assert sorted(b.table, key=lambda k: int(k[1:])) == [f"k{i}" for i in range(10, 16)]
    assert (b.forgotten, b.next_sweep) == (8, 100.0 + bounded.SWEEP_EVERY)
    b.make_room()  # below the cap: nothing
    assert b.dropped == 2


def test_sweeping_idle_keys_changes_no_alert(monkeypatch):
    evs = stream()
    monkeypatch.setattr(bounded, "SWEEP_EVERY", float("inf"))
    never = engine(POLICY)
    kept = feed(never, evs)
    monkeypatch.setattr(bounded, "SWEEP_EVERY", 0.0)  # a sweep at every call
    always = engine(POLICY)
    swept = feed(always, evs)
    assert {a.rule for a in kept} >= WINDOWED  # the stream exercises every windowed rule
    assert encoded(swept) == encoded(kept)
    assert all(s.forgotten > 0 for s in windowed(always))
    assert sum(len(s) for s in windowed(always)) < sum(len(s) for s in windowed(never))


def test_a_burst_of_new_accounts_is_capped_and_counted():
    eng = engine()
    for s in windowed(eng):
        s.cap = 64
    burst = [login(user=f"x{i}", outcome="failure", when=at(seconds=i), dataset=None)
             for i in range(1000)]
    feed(eng, burst)
    brute = next(r for r in eng.rules if r.id == "brute_force")
    assert brute.tracked() <= 64
    assert brute.forgetting() == (0, 1000 - brute.tracked())  # nothing idle: all past the cap
    assert eng.forgetting()["windows"] == (brute.tracked(), 0, 1000 - brute.tracked())
    # an attack on one account goes on being seen while new ids keep coming
    attack = [login(user="victim", outcome="failure", when=at(seconds=1000 + i), dataset=None)
              for i in range(12)]
    assert "brute_force" in {a.rule for a in feed(eng, attack)}


def detector(cap: int, *, early: bool, release_step: float = 0.0) -> Detector:
    eng = Engine(POLICY, Pseudonymizer(KEY), default_rules())
    for s in windowed(eng):
        s.cap = cap
    return Detector(eng, Reorderer(lateness=300, release_step=release_step), early=early)


def replayed(evs: list[AccessEvent], cap: int) -> tuple[Detector, list[Alert]]:
    """Replay: one file in order, released in batches of a minute."""
    replay = detector(cap, early=False, release_step=60.0)
    out: list[Alert] = []
    for e in evs:
        out += replay.push(e, epoch(e.timestamp)).alerts
    out += replay.flush()
    return replay, out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replay_and_the_daemon_keep_and_drop_the_same(seed: int):
    evs = stream(seed, accounts=200)
    replay, out = replayed(evs, 16)
    assert encoded(out) != encoded(replayed(evs, bounded.MAX_KEYS)[1])  # the caps mattered
    # the daemon: three partitions, arrival jittered within the lateness, alerts on arrival
    rng = random.Random(seed)
    arrival = sorted(evs, key=lambda e: epoch(e.timestamp) + rng.uniform(0, 290))
    live = detector(16, early=True)
    live.order.expect({0, 1, 2})
    got: list[Alert] = []
    for e in arrival:
        got += live.push(e, epoch(e.timestamp), rng.randrange(3)).alerts
    got += live.flush()
    assert live.order.stats.late == 0
    assert sum(s.dropped for s in windowed(replay.engine)) > 0  # the caps were reached
    assert [s.dropped for s in windowed(live.engine)] == [
        s.dropped for s in windowed(replay.engine)]
    assert encoded(got) == encoded(out)
