"""The stream: time order, sequences, ids, and the ground truth's events in it."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime
from typing import Any

from watchdog.simulate import World
from watchdog.simulate.catalog import RULES_OFF, RULES_ON


def _t(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


def test_time_ordered_and_inside_the_period(small_world: World,
                                            small_events: list[dict[str, Any]]) -> None:
    times = [_t(e["@timestamp"]) for e in small_events]
    assert all(a <= b for a, b in itertools.pairwise(times))
    start = small_world.config.start.timestamp()
    assert start <= times[0]
    assert times[-1] < start + small_world.config.days * 86400


def test_event_ids_unique(small_events: list[dict[str, Any]]) -> None:
    ids = Counter(e["event"]["id"] for e in small_events)
    assert ids.most_common(1)[0][1] == 1


def test_sequences_contiguous_except_injected_gaps(
        small_world: World, small_events: list[dict[str, Any]]) -> None:
    gaps = {t["event_id"] for t in small_world.ground_truth
            if t["rule"] == "log_gap" and t["scenario"] == "sequence_gap"}
    last: dict[str, int] = {}
    skipped = set()
    for e in small_events:
        ev = e["event"]
        ds, seq = ev["dataset"], ev["sequence"]
        if ds in last:
            if ev["id"] in gaps:
                assert seq > last[ds] + 1
                skipped.add(ev["id"])
            else:
                assert seq == last[ds] + 1, ev
        last[ds] = seq
    assert skipped == gaps
    assert len(last) == 6


def test_truth_covers_every_rule_but_anomaly(small_world: World) -> None:
    rules = {t["rule"] for t in small_world.ground_truth}
    # the rules the policy leaves off expect nothing; 3 days hold no 14-day erasure window
    assert rules == set(RULES_ON) - {"anomaly", "erasure_overdue"}
    assert {t["rule"] for t in small_world.silent if t["why"] == "rule_off"} == set(RULES_OFF)
    per_rule = Counter(t["scenario"] for t in small_world.ground_truth)
    assert per_rule


def test_injected_events_exist(small_world: World, small_events: list[dict[str, Any]]) -> None:
    by_id = {e["event"]["id"]: e for e in small_events}
    assert small_world.planned_event_ids <= set(by_id)
    for t in small_world.ground_truth:
        if t["rule"] in ("account_not_revoked", "erasure_overdue"):
            assert t["event_id"].startswith(("directory/", "subjects/"))
            continue  # an obligation: no event
        ev = by_id[t["event_id"]]
        assert t["ts"] == ev["@timestamp"]
        assert set(t) == {"event_id", "rule", "user_id", "scenario", "ts"}
        if t["rule"] == "log_gap":
            assert t["user_id"] in {"crm.audit", "billing.audit", "mkt.audit", "dwh.audit",
                                    "hr.audit", "idp.auth"}
            if t["scenario"] == "sequence_gap":
                assert t["user_id"] == ev["event"]["dataset"]
            else:
                assert t["user_id"] != ev["event"]["dataset"]
        else:
            assert t["user_id"] == ev["user"]["id"]


def test_truth_is_one_line_per_event_and_rule(small_world: World) -> None:
    keys = Counter((t["event_id"], t["rule"]) for t in small_world.ground_truth)
    assert max(keys.values()) == 1
