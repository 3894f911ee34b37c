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
