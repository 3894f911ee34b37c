"""log_gap: a sequence that skips numbers (alerted on the first event after the gap) and a
dataset silent for longer than source_silence_minutes while others send (once per silence,
at the first event of another dataset that shows it). user_id is the dataset's name."""

from __future__ import annotations

import re

from tests.builders import at, engine, event, feed, login, only, policy, run
from watchdog.rules import log_gap


def seq_events(dataset: str, seqs: list[int], start: float = 0.0):
    return [event(dataset=dataset, sequence=s, when=at(seconds=start + i))
            for i, s in enumerate(seqs)]


def gaps(evs, pol=None):
    return only("log_gap", run(evs, pol))


def test_consecutive_sequence_is_silent():
    assert run(seq_events("crm.audit", [7, 8, 9, 10])) == []


def test_skip_fires_on_the_first_event_after_the_gap():
    evs = seq_events("crm.audit", [1, 2, 3, 5, 6])
    alerts = gaps(evs)
    assert len(alerts) == 1
    a = alerts[0]
    assert a.event_ids == (evs[3].event.id,)
    assert a.user_id == "crm.audit"
    assert a.severity == "high"
    assert a.labels["kind"] == "sequence_gap"
    assert "4..4" in a.summary
    assert "user_id names the dataset" in a.summary


def test_backwards_sequence_is_silent():
    assert gaps(seq_events("crm.audit", [1, 2, 3, 2, 3, 4])) == []


def test_repeated_sequence_is_silent():
    assert gaps(seq_events("crm.audit", [1, 2, 2, 3])) == []


def test_datasets_have_their_own_sequences():
    evs = [event(dataset="a", sequence=1, when=at(seconds=0)),
           event(dataset="b", sequence=100, when=at(seconds=1)),
           event(dataset="a", sequence=2, when=at(seconds=2)),
           event(dataset="b", sequence=101, when=at(seconds=3))]
    assert gaps(evs) == []


def test_each_gap_is_alerted():
    alerts = gaps(seq_events("crm.audit", [1, 3, 4, 7]))
    assert [re.search(r"\((\d+\.\.\d+)\)", a.summary)[1] for a in alerts] == ["2..2", "5..6"]
    assert len({a.alert_id for a in alerts}) == 2


# -- silence --------------------------------------------------------------------------------

def ds(name: str, minutes: float):
    return login(dataset=None, when=at(minutes=minutes)) if name is None else \
        event(dataset=name, when=at(minutes=minutes), action="search", categories=None,
              subject_ids=None, purpose=None)


def test_silence_is_alerted_once_at_the_first_event_of_another_dataset():
    evs = [ds("a", 0), ds("b", 0)] + [ds("b", m) for m in range(5, 61, 5)]
    alerts = gaps(evs)
    assert len(alerts) == 1
    a = alerts[0]
    assert a.user_id == "a"
    assert a.labels["kind"] == "silence"
    assert a.labels["dataset"] == "a"
    # the first b event more than 30 minutes after a's last one: minute 35
    assert a.event_ids == (evs[2 + 6].event.id,)


def test_silence_of_exactly_the_threshold_is_silent():
    assert gaps([ds("a", 0), ds("b", 0), ds("b", 30)]) == []
    assert len(gaps([ds("a", 0), ds("b", 0), ds("b", 30.01)])) == 1


def test_a_second_silence_is_a_second_alert():
    evs = [ds("a", 0), ds("b", 31), ds("a", 40), ds("b", 41), ds("b", 80), ds("b", 90)]
    alerts = gaps(evs)
    assert [a.event_ids for a in alerts] == [(evs[1].event.id,), (evs[4].event.id,)]
    assert alerts[0].alert_id != alerts[1].alert_id


def test_one_dataset_alone_does_not_alert_itself():
    assert gaps([ds("a", 0), ds("a", 120)]) == []


def test_every_silent_dataset_is_named():
    alerts = gaps([ds("a", 0), ds("b", 1), ds("c", 2), ds("c", 60)])
    assert sorted(a.user_id for a in alerts) == ["a", "b"]


def test_events_without_a_dataset_are_ignored():
    assert gaps([ds("a", 0), ds(None, 120)]) == []


def test_silence_threshold_follows_the_policy():
    pol = policy(thresholds={"source_silence_minutes": 90})
    assert gaps([ds("a", 0), ds("b", 60)], pol) == []
    assert len(gaps([ds("a", 0), ds("b", 91)], pol)) == 1


def test_a_burst_of_new_datasets_is_bounded_in_state_and_alerts(monkeypatch) -> None:
    """Datasets come from events: many distinct ones, then an event past the silence, raise
    at most SILENCES_PER_MINUTE alerts (the rest counted), and at most MAX_DATASETS are kept
    (the longest silent dropped, counted)."""
    monkeypatch.setattr(log_gap, "MAX_DATASETS", 500)
    n = 2_000
    evs = [event(dataset=f"c-{i:05d}", when=at(seconds=i * 0.001)) for i in range(n)]
    evs.append(event(dataset="late", when=at(minutes=180)))
    eng = engine()
    alerts = feed(eng, evs)
    silences = [a for a in only("log_gap", alerts) if a.labels.get("kind") == "silence"]
    rule = next(r for r in eng.rules if r.id == "log_gap")
    assert len(silences) == log_gap.SILENCES_PER_MINUTE
    assert rule.datasets() <= 500
    assert rule.dropped >= n - 500
    assert rule.suppressed == rule.datasets() - 1 - len(silences)
