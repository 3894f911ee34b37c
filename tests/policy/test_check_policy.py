"""watchdog check-policy: quotes checked against the policy text, every problem of a file
reported (one line each, with its path), and the commitments -> rules matrix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.builders import policy_doc
from watchdog.cli import main
from watchdog.policy import PolicyError, load_policy
from watchdog.policy.check import (
    missing_quotes,
    normalise,
    purpose_problems,
    rule_matrix,
    threshold_problems,
)
from watchdog.policy.loader import parse_policy, policy_problems

TEXT = """Management of access to personal information (including restrictions on access
authorized persons (including measures such as immediately invalidating accounts of
employees who have transferred or retired), password Periodic change)."""

COMMITMENTS = [
    {"id": "A-accounts", "clause": "Acme §10", "rules": ["revoked_account", "account_not_revoked"],
     "quote": "immediately  invalidating accounts of\nEMPLOYEES who have transferred or retired"},
    {"id": "A-password", "clause": "Acme §10", "quote": "password periodic change",
     "rules": ["password_expired"]},
]


def commitments_doc(**extra: Any) -> dict[str, Any]:
    doc = policy_doc()
    doc.pop("clauses", None)
    doc["commitments"] = COMMITMENTS
    doc.update(extra)
    return doc


def write(tmp_path: Path, doc: Any, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, allow_unicode=True))
    return path


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["check-policy", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


# -- pure logic ---------------------------------------------------------------------------------

def test_normalise_is_nfkc_lower_case_and_one_space() -> None:
    assert normalise("  Ｐａｓｓｗｏｒｄ\u00a0Periodic\n\tchange ") == "password periodic change"
    assert normalise("ﬁle") == "file"  # NFKC folds the ligature


def test_quotes_found_after_normalising_and_a_changed_word_is_not() -> None:
    pol = parse_policy(commitments_doc())
    assert missing_quotes(pol, TEXT) == []
    changed = [dict(COMMITMENTS[0]), {**COMMITMENTS[1], "quote": "password monthly change"}]
    pol = parse_policy(commitments_doc(commitments=changed))
    assert missing_quotes(pol, TEXT) == [
        "commitments[1] (A-password): quote not found in the policy text: "
        "'password monthly change'"]


def test_matrix_lists_the_rules_each_commitment_turns_on_and_those_off() -> None:
    m = rule_matrix(parse_policy(commitments_doc()))
    assert list(m.on.items()) == [("revoked_account", ("A-accounts",)),  # the contract's order
                                  ("account_not_revoked", ("A-accounts",)),
                                  ("password_expired", ("A-password",))]
    assert "anomaly" in m.off
    assert len(m.on) + len(m.off) == 24


def test_purposes_no_role_grants_are_problems_with_a_suggestion() -> None:
    doc = commitments_doc(consent_purposes=["customer_suport"],
                          category_purposes={"payment": ["biling"]})
    assert purpose_problems(doc) == [
        "category_purposes.payment: purpose 'biling' is granted by no role "
        "(did you mean 'billing'?)",
        "consent_purposes: purpose 'customer_suport' is granted by no role "
        "(did you mean 'customer_support'?)",
    ]


def test_a_role_purpose_one_typo_from_another_is_a_problem() -> None:
    doc = policy_doc(roles={"a": {"categories": ["contact"], "purposes": ["customer_support"]},
                            "b": {"categories": ["contact"], "purposes": ["customer_suport"]}})
    (msg,) = purpose_problems(doc)
    assert "'customer_support'" in msg
    assert "'customer_suport'" in msg
    assert purpose_problems(policy_doc()) == []


@pytest.mark.parametrize(("key", "value"), [
    ("failed_logins", -1), ("erasure_days", -0.5), ("revocation_minutes", -5),
    ("bulk_export_subjects", -1)])
def test_negative_thresholds_do_not_load(key: str, value: float) -> None:
    assert policy_problems(policy_doc(thresholds={key: value})) == [
        f"thresholds.{key}: {value} must not be negative"]


@pytest.mark.parametrize(("key", "ok"), [
    ("failed_logins", False), ("password_max_age_days", False), ("erasure_days", False),
    ("reidentification_window_minutes", False), ("source_silence_minutes", False),
    ("restriction_grace_hours", True), ("revocation_minutes", True),
    ("bulk_export_subjects", True), ("bulk_export_subjects_per_hour", True)])
def test_zero_thresholds_that_mean_nothing_are_check_policy_problems(key: str, ok: bool) -> None:
    doc = policy_doc(thresholds={key: 0})
    assert policy_problems(doc) == []  # the daemon loads it: the contract's schema allows it
    assert (threshold_problems(doc) == []) is ok


def test_every_problem_of_a_document_is_reported() -> None:
    doc = commitments_doc(
        thresholds={"failed_logins": "ten", "bulk_export_subjcts": 5, "erasure_days": -1},
        internal_networks=["10.0.0.0/8", "not-a-net"],
        business_hours={"timezone": "Mars/Olympus"},
        exceptions=[{"rule": "revoked_account", "until": "2026-01-01T00:00:00Z", "reason": "x"}])
    problems = policy_problems(doc)
    assert problems[0] == "exceptions[0].rule: 'revoked_account' cannot be excused " \
                          "(a leaver's access never is)"
    for expected in ("thresholds.failed_logins must be integer",
                     "thresholds.bulk_export_subjcts: unknown key",
                     "thresholds.erasure_days: -1 must not be negative",
                     "internal_networks[1]: 'not-a-net' is not a CIDR block",
                     "business_hours.timezone: unknown time zone 'Mars/Olympus'"):
        assert any(p.startswith(expected) for p in problems), (expected, problems)


# -- the file ------------------------------------------------------------------------------------

def test_duplicate_key_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    text = yaml.safe_dump(policy_doc()) + "thresholds:\n  failed_logins: 3\n"
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: thresholds: duplicate key (line ")
    assert "first at line" in msg


def test_duplicate_key_nested_and_in_json(tmp_path: Path) -> None:
    text = "organization: x\nroles:\n  a: {purposes: [p], purposes: [q]}\n"
    with pytest.raises(PolicyError, match=r"roles\.a\.purposes: duplicate key"):
        load_policy(write(tmp_path, text))
    path = tmp_path / "p.json"
    path.write_text('{"organization": "x", "roles": {}, "organization": "y"}')
    with pytest.raises(PolicyError, match="organization: duplicate key"):
        load_policy(path)


def test_cli_reports_every_problem_one_line_each(tmp_path: Path, capsys) -> None:
    doc = commitments_doc(consent_purposes=["customer_suport"], thresholds={"failed_logins": -3})
    text = yaml.safe_dump(doc) + "organization: Again K.K.\n"
    path = write(tmp_path, text)
    rc, _out, err = check(capsys, path)
    assert rc == 1
    lines = err.splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert len(lines) == 3, lines
    assert any("organization: duplicate key" in line for line in lines)
    assert any("thresholds.failed_logins: -3 must not be negative" in line for line in lines)
    assert any("consent_purposes: purpose 'customer_suport'" in line for line in lines)


def test_cli_text_check_names_the_commitment_whose_quote_is_missing(tmp_path: Path,
                                                                    capsys) -> None:
    text = tmp_path / "policy.txt"
    text.write_text(TEXT)
    good = write(tmp_path, commitments_doc())
    rc, out, err = check(capsys, good, "--text", text)
    assert (rc, err) == (0, "")
    assert "A-accounts" in out
    assert "every quote found" in out
    changed = [COMMITMENTS[0], {**COMMITMENTS[1], "quote": "password yearly change"}]
    rc, _out, err = check(capsys, write(tmp_path, commitments_doc(commitments=changed)),
                          "--text", text)
    assert rc == 1
    assert err.splitlines() == [
        f"{tmp_path / 'policy.yaml'}: commitments[1] (A-password): quote not found in the "
        "policy text: 'password yearly change'"]


def test_cli_json_matrix(tmp_path: Path, capsys) -> None:
    rc, out, _err = check(capsys, write(tmp_path, commitments_doc()), "--json")
    assert rc == 0
    doc = json.loads(out)
    assert doc["ok"] is True
    assert doc["version"] == "1.1"
    assert doc["rules_on"]["password_expired"] == ["A-password"]
    assert "anomaly" in doc["rules_off"]
    assert [c["id"] for c in doc["commitments"]] == ["A-accounts", "A-password"]


def test_cli_version_1_policy_runs_every_rule(tmp_path: Path, capsys) -> None:
    rc, out, _err = check(capsys, write(tmp_path, policy_doc()), "--json")
    assert rc == 0
    doc = json.loads(out)
    assert doc["version"] == "1"
    assert doc["rules_off"] == []
    assert len(doc["rules_on"]) == 24


def test_cli_unreadable_files_exit_2(tmp_path: Path, capsys) -> None:
    rc, _out, err = check(capsys, tmp_path / "nope.yaml")
    assert rc == 2
    assert "cannot read" in err
    rc, _out, err = check(capsys, write(tmp_path, commitments_doc()), "--text",
                          tmp_path / "nope.txt")
    assert rc == 2
    assert "nope.txt: cannot read" in err


def test_every_broken_item_of_a_list_or_map_is_its_own_problem() -> None:
    doc = policy_doc(roles={"a": {"categories": "contact"}, "b": {"purposes": 3},
                            "c": {"categories": ["contact"], "purposes": ["p"]}},
                     processors=[{"name": 1}, {"name": "ok"}, {"domains": ["x.example"]}])
    assert sorted(policy_problems(doc)) == [
        "processors[0].name must be string",
        "processors[2] must contain ['name'] properties",
        "roles.a.categories must be array",
        "roles.b.purposes must be array",
    ]


def test_cli_text_with_a_version_1_policy_says_nothing_was_checked(tmp_path: Path,
                                                                    capsys) -> None:
    text = tmp_path / "policy.txt"
    text.write_text(TEXT)
    rc, out, _err = check(capsys, write(tmp_path, policy_doc()), "--text", text)
    assert rc == 0
    assert "quotes nothing" in out
    assert "every quote found" not in out
