"""Contract 1.1 in the policy file: commitments decide which rules run and what alerts cite;
exceptions expire; every mistake is one line naming the file and the path inside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.builders import policy_doc
from tests.policy.test_loader import error_of as loader_error_of
from tests.policy.test_loader import write
from watchdog.policy import PolicyError, load_policy

COMMITMENTS = [
    {"id": "A-1", "clause": "Acme §1", "quote": "we invalidate accounts",
     "rules": ["revoked_account", "account_not_revoked"]},
    {"id": "A-2", "clause": "Acme §2", "rules": ["external_media", "revoked_account"]},
]


def doc_with(**extra: Any) -> dict[str, Any]:
    doc = policy_doc()
    doc.pop("clauses", None)
    doc.update(extra)
    return doc


def error_of(tmp_path: Path, doc: dict[str, Any]) -> str:
    return loader_error_of(write(tmp_path, doc))


def test_commitments_turn_on_exactly_the_rules_they_name(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc_with(commitments=COMMITMENTS)))
    pol = load_policy(path)
    assert pol.runs("revoked_account")
    assert pol.runs("external_media")
    assert not pol.runs("anomaly")
    assert not pol.runs("off_hours_access")
    assert pol.enabled_rules(("off_hours_access", "external_media", "account_not_revoked")) == (
        "external_media", "account_not_revoked")
    # every commitment naming the rule, in the policy's order, with its quote when it has one
    assert pol.clauses_for("revoked_account") == ("Acme §1: we invalidate accounts", "Acme §2")
    assert pol.clauses_for("external_media") == ("Acme §2",)
    assert pol.clauses_for("anomaly") == ()


def test_clauses_only_policy_runs_every_rule(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(policy_doc()))
    pol = load_policy(path)
    assert pol.runs("anomaly")
    assert pol.runs("account_not_revoked")


def test_new_inputs_compile(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc_with(
        commitments=COMMITMENTS, consent_purposes=["marketing"], consent_opt_in=True,
        category_purposes={"behavior": ["security"]}, allow_anonymized_provision=True,
        thresholds={"revocation_minutes": 15, "erasure_days": 7.5, "password_max_age_days": 60},
        exceptions=[{"rule": "external_email", "user_id": "e1",
                     "destination_domain": "Partner.Example.", "until": "2026-12-31T09:00:00+09:00",
                     "reason": "migration, PRIV-1"}])))
    pol = load_policy(path)
    assert pol.consent_purposes == {"marketing"}
    assert pol.consent_opt_in
    assert pol.category_purposes == {"behavior": {"security"}}
    assert pol.allow_anonymized_provision
    assert pol.thresholds.revocation_minutes == 15
    assert pol.thresholds.erasure_days == 7.5
    (exc,) = pol.exceptions
    assert exc.until == 1798675200.0  # 2026-12-31T00:00:00Z
    assert exc.destination_domain == "partner.example"
    assert exc.resource is None


@pytest.mark.parametrize(("extra", "expected"), [
    ({"clauses": {"revoked_account": "x"}, "commitments": COMMITMENTS},
     "clauses, commitments: a policy has either"),
    ({"commitments": [{**COMMITMENTS[0], "rules": ["revoked_acount"]}]},
     "commitments[0].rules[0]: unknown rule 'revoked_acount' (did you mean 'revoked_account'?)"),
    ({"commitments": [COMMITMENTS[0], {**COMMITMENTS[1], "id": "A-1"}]},
     "commitments[1].id: 'A-1' is already the id of commitments[0]"),
    ({"commitments": COMMITMENTS,
      "exceptions": [{"rule": "revoked_account", "until": "2027-01-01T00:00:00Z", "reason": "r"}]},
     "exceptions[0].rule: 'revoked_account' cannot be excused"),
    ({"exceptions": [{"rule": "account_not_revoked", "until": "2027-01-01T00:00:00Z",
                      "reason": "r"}]},
     "exceptions[0].rule: 'account_not_revoked' cannot be excused"),
    ({"exceptions": [{"rule": "nope", "until": "2027-01-01T00:00:00Z", "reason": "r"}]},
     "exceptions[0].rule: unknown rule 'nope'"),
    ({"commitments": [{**COMMITMENTS[0], "qoute": "x"}]},
     "commitments[0].qoute: unknown key (did you mean 'quote'?)"),
    ({"category_purposes": {"behaviour": ["security"]}},
     "category_purposes: unknown category 'behaviour' (did you mean 'behavior'?)"),
])
def test_bad_promises_are_one_line_errors(tmp_path, extra, expected):
    doc = policy_doc() if "clauses" in extra else doc_with()
    doc.update(extra)
    assert error_of(tmp_path, doc).startswith(expected)


def test_unquoted_until_says_to_quote_it(tmp_path):
    path = tmp_path / "p.yaml"
    doc = doc_with(exceptions=[{"rule": "external_email", "until": "X", "reason": "r"}])
    path.write_text(yaml.safe_dump(doc).replace("until: X", "until: 2027-01-01T00:00:00Z"))
    with pytest.raises(PolicyError, match="quote times"):
        load_policy(path)
