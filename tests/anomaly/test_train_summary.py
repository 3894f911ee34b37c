"""`watchdog train`'s summary: no empty header row, and the calibration figures explained."""

from __future__ import annotations

from watchdog.anomaly.train import calibration_note, summary_rows

DOC = {
    "training": {"start": "2026-11-01", "end": "2026-11-14", "accounts": 2000,
                 "events": 380000, "train_rows": 40000, "heldout_rows": 9000},
    "calibration": {"target_false_alerts_per_1000_accounts_per_day": 0.5,
                    "heldout_false_alerts_per_1000_accounts_per_day": 0.0,
                    "heldout_alerts": 0, "heldout_rows": 9000, "heldout_account_days": 6000,
                    "method": "tail fit"},
}


def test_rows_each_say_what_they_are() -> None:
    rows = summary_rows(DOC, "if-1", 0.66, 0.83)
    assert all(k and v for k, v in rows)
    assert ("threshold (high)", "0.6600 (0.8300)") in rows


def test_tail_fit_is_explained() -> None:
    note = calibration_note(DOC["calibration"])
    assert "6,000 account-days" in note
    assert "extrapolated" in note
    assert "0.0 held-out is then expected" in note
    empirical = calibration_note({**DOC["calibration"], "method": "empirical",
                                  "heldout_alerts": 3})
    assert "lowest score" in empirical
    assert "raised 3 alert(s)" in empirical


def test_the_leaver_periods_weight_and_cost_are_stated() -> None:
    risk = {"threshold": 3.1, "floor": 0.5, "leaver_factor": 2.45,
            "calibration": {"simulated_false_alerts_per_1000_leaver_days": 9.8,
                            "target_false_alerts_per_1000_leaver_days": 10.0}}
    rows = dict(summary_rows({**DOC, "risk": risk}, "if-1", 0.66, 0.83))
    assert rows["leaver period"] == ("signals x2.45; 9.8 false alerts per 1,000 notice days "
                                     "(target 10)")
    old = dict(summary_rows({**DOC, "risk": {"threshold": 3.0, "floor": 0.5}}, "if-1", 0.66,
                            0.83))
    assert old["leaver period"] == "signals x2.00"
