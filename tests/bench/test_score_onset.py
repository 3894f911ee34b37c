"""The targets' split by onset: which of a target's cases were found in time, sudden apart
from gradual (a gradual case's first hour or day is far below its drawn intensity)."""

from __future__ import annotations

from bench.anomaly_eval.detect import Found
from bench.anomaly_eval.report import targets_table
from bench.anomaly_eval.score import match, reached, summarize
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


def test_the_deadline_is_also_counted_from_when_the_ramp_reaches_the_level() -> None:
    # a gradual 9x burst over 4 h ramps over its first 2 h: it is at 5x half-way up, 1 h in
    ramp = Case(case_id="g", family="burst", user_id="u1", role="billing", intensity=9.0,
                achieved=9.0, onset="gradual", time_of_day="morning", start_ms=10 * H,
                end_ms=14 * H, duration_ms=4 * H, workdays=0, events=100, subjects=100,
                usual=5.0, unit="customers/hour", ramp_from_ms=10 * H)
    assert reached(ramp, 5.0) == 3600.0
    assert reached(_burst("s", "u2", "sudden"), 5.0) == 0.0
    assert reached(_burst("old", "u3", "gradual"), 5.0) is None  # its ramp not recorded
    # found 1.5 h in: late by the bench's clock, in time from when it was a 5x burst
    alerts = [Found(user_id="u1", t=11.5 * 3600, score=1.0, summary="x")]
    outcomes, false = match([ramp, _burst("old", "u3", "gradual")], alerts, "w", 0.0)
    t = summarize(outcomes, false, 1000.0)["targets"]["burst>=5x,>=1h"]
    assert t["by_onset"]["gradual"] == [0, 2]
    assert t["in_time_from_level"] == [1, 1]
    text = targets_table({"shipped": summarize(outcomes, false, 1000.0)})
    assert "counted from when the case reaches 5x" in text
    assert "shipped 1/1 (1.00)" in text


def test_a_long_case_reaches_its_level_on_a_working_day() -> None:
    # 2.5x over 7 working days: day j at 1 + 1.5 min(1, j / 3); 2x from day 2 (j >= 2)
    days = tuple(10 * H + j * 24 * H for j in range(7))
    c = Case(case_id="l", family="sustained", user_id="u", role="billing", intensity=2.5,
             achieved=2.5, onset="gradual", time_of_day="working_day", start_ms=days[0] + 60_000,
             end_ms=days[-1] + 8 * H, duration_ms=days[-1] + 8 * H - days[0], workdays=7,
             events=500, subjects=500, usual=40.0, unit="subjects/day", days_ms=days)
    assert reached(c, 2.0) == (days[2] - c.start_ms) / 1000
    assert reached(c, 3.0) is None  # never that strong
