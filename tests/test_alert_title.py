"""The sentence a page or a chat message starts with."""

from __future__ import annotations

from watchdog.alerts.model import Alert, AlertSubjects
from watchdog.alerts.title import alert_title


def alert(rule: str, user: str = "u0042", clauses: tuple[str, ...] = (),
          dataset: str | None = "crm.audit") -> Alert:
    return Alert("id", rule, "critical", "2026-12-01T00:00:00.000Z", user, ("e1",), "s",
                 AlertSubjects(0), clauses, labels={"dataset": dataset} if dataset else {})


def test_names_account_dataset_clause_and_rule() -> None:
    a = alert("external_media", clauses=("§10: we restrict taking personal data out",
                                          "§11: another"))
    assert alert_title(a) == ("Account u0042 on crm.audit broke “we restrict taking personal "
                              "data out” (external_media)")


def test_long_clause_cut_at_a_word() -> None:
    quote = "we " + "never ever " * 30 + "do it"
    title = alert_title(alert("bulk_export", clauses=(f"Art. 5: {quote}",)))
    assert title.endswith("…” (bulk_export)")
    assert len(title) < 180
    assert "  " not in title


def test_without_clause_or_dataset() -> None:
    assert alert_title(alert("off_hours_access", dataset=None)) == \
        "Account u0042 broke the policy (off_hours_access)"


def test_log_gap_names_the_log_source_not_an_account() -> None:
    assert alert_title(alert("log_gap", user="crm.audit", clauses=("§7: logs are kept",))) \
        == "Log source crm.audit broke “logs are kept” (log_gap)"


def test_anomaly() -> None:
    assert alert_title(alert("anomaly")) == \
        "Account u0042 on crm.audit behaves unlike itself and its peers (anomaly)"
