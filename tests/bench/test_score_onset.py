"""The targets' split by onset: which of a target's cases were found in time, sudden apart
from gradual (a gradual case's first hour or day is far below its drawn intensity)."""

from __future__ import annotations

from bench.anomaly_eval.detect import Found
from bench.anomaly_eval.report import targets_table
from bench.anomaly_eval.score import match, summarize
from watchdog.simulate.drawn import Case

H = 3_600_000


def _burst(cid: str, user: str, onset: str) -> Case:
    return Case(case_id=cid, family="burst", user_id=user, role="billing", intensity=8.0,
                achieved=8.0, onset=onset, time_of_day="morning", start_ms=10 * H,
                end_ms=13 * H, duration_ms=3 * H, workdays=0, events=100, subjects=100,
                usual=5.0, unit="customers/hour")


def test_target_recall_is_split_by_onset() -> None:
    cases = [_burst("a", "u1", "sudden"), _burst("b", "u2", "sudden"),
             _burst("c", "u3", "gradual")]
    # u1 in 30 min (in time), u3 after 2 h (found, late), u2 never
    alerts = [Found(user_id="u1", t=10 * 3600 + 1800, score=1.0, summary="x"),
              Found(user_id="u3", t=12 * 3600, score=1.0, summary="y")]
    outcomes, false = match(cases, alerts, "w", 0.0)
    s = summarize(outcomes, false, 1000.0)
    t = s["targets"]["burst>=5x,>=1h"]
    assert t["by_onset"] == {"sudden": [1, 2], "gradual": [0, 1]}
    text = targets_table({"shipped": s})
    assert "in time by onset: shipped sudden 1/2, gradual 0/1" in text
