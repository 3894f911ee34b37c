"""The analyst's metrics: commitments with their clause, alerts per commitment (from 0), and
alerts per pseudonymous account, bounded."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from watchdog.alerts.pseudonym import Pseudonymizer
from watchdog.daemon import promise_metrics as pm
from watchdog.daemon.metrics import SEVERITIES, Metrics
from watchdog.policy import load_policy
from watchdog.rules import RULE_IDS

PACKS = Path(__file__).resolve().parents[2] / "watchdog" / "policies"
PSEUDO = Pseudonymizer(b"test-key-0123456789abcdef")


def value(reg: CollectorRegistry, name: str, **labels: str) -> float | None:
    return reg.get_sample_value(name, labels)


def test_every_rule_and_severity_starts_at_zero() -> None:
    m = Metrics()
    for rule in RULE_IDS:
        for sev in SEVERITIES:
            assert value(m.registry, "watchdog_alerts_total", rule=rule, severity=sev) == 0.0
    m.count_alert("external_media", "critical", "u1")
    assert value(m.registry, "watchdog_alerts_total", rule="external_media",
                 severity="critical") == 1.0


def test_commitments_counted_by_the_rules_they_name() -> None:
    policy = load_policy(str(PACKS / "smedio.yaml"))
    m = Metrics()
    m.promises.set_policy(policy, PSEUDO)
    ids = [c.id for c in policy.commitments]
    for cid in ids:
        assert value(m.registry, "watchdog_commitment_alerts_total", commitment=cid) == 0.0
    c = policy.commitments[0]
    info = value(m.registry, "watchdog_commitment_info", commitment=c.id,
                 clause=pm.clause_label(c.citation))
    assert info == 1.0
    rule = c.rules[0]
    m.count_alert(rule, "critical", "u0042")
    naming = [x.id for x in policy.commitments if rule in x.rules]
    for cid in ids:
        expected = 1.0 if cid in naming else 0.0
        assert value(m.registry, "watchdog_commitment_alerts_total", commitment=cid) == expected


def test_version_1_policy_has_a_commitment_per_cited_rule() -> None:
    policy = load_policy(None)
    got = pm.commitments_of(policy)
    assert set(got) == set(policy.clauses)
    assert all(rules == (rule,) for rule, (_c, rules) in got.items())


def test_clause_label_is_one_bounded_line() -> None:
    label = pm.clause_label("a\n  b " + "x" * 500)
    assert label.startswith("a b x")
    assert len(label) == pm.CLAUSE_CHARS
    assert "\n" not in label


def test_accounts_are_pseudonyms_bounded_per_day() -> None:
    now = [86400.0 * 20000]
    reg = CollectorRegistry()
    p = pm.PromiseMetrics(reg, clock=lambda: now[0])
    p.set_policy(load_policy(None), PSEUDO)
    for i in range(pm.MAX_ACCOUNTS + 5):
        p.count("external_media", f"u{i}")
    p.count("log_gap", "crm.audit")  # a dataset, not an account
    samples = {s.labels["account"]: s.value for f in reg.collect()
               if f.name == "watchdog_account_alerts" for s in f.samples
               if s.name.endswith("_total")}
    assert len(samples) == pm.MAX_ACCOUNTS + 1
    assert samples["other"] == 5
    assert "u0" not in samples
    assert samples["a-" + PSEUDO("u0")[2:]] == 1
    now[0] += 86400  # a new UTC day starts afresh
    p.count("external_media", "u999")
    labels = {s.labels["account"] for f in reg.collect()
              if f.name == "watchdog_account_alerts" for s in f.samples}
    assert labels == {"a-" + PSEUDO("u999")[2:]}
