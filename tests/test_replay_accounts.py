"""`watchdog replay --accounts` (contract 1.1): account records feed the obligations and
password_expired; a bad account record is dead-lettered with a one-line reason naming the file
and the path inside it; exceptions and commitments apply in replay."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
import yaml

from tests.builders import POLICY_DOC, event_doc
from watchdog.cli import main

EVENTS = [
    event_doc(id="e-1", user="e1", when="2026-11-18T10:00:00+09:00"),
    event_doc(id="login-1", user="e1", action="login", data=False, dataset="idp.auth",
              when="2026-11-18T10:05:00+09:00"),
    event_doc(id="e-2", user="e1", when="2026-11-18T12:00:00+09:00"),
]
DIRECTORY = [
    {"user_id": "e1", "status": "active", "effective": "2025-04-01T00:00:00+09:00",
     "roles": ["support_agent"]},
    {"user_id": "x-left", "status": "departed", "effective": "2026-11-18T09:00:00+09:00"},
]
ACCOUNTS = [
    {"user_id": "x-left", "enabled": True, "effective": "2025-01-01T00:00:00Z"},
    {"user_id": "e1", "enabled": True, "effective": "2025-01-01T00:00:00Z",
     "password_changed_at": "2025-01-01T00:00:00Z"},
]


def jsonl(docs) -> bytes:
    return b"".join(orjson.dumps(d) + b"\n" for d in docs)


def setup(tmp_path: Path, policy: dict, accounts: bytes | None = None) -> list[str]:
    (tmp_path / "events.jsonl").write_bytes(jsonl(EVENTS))
    (tmp_path / "directory.jsonl").write_bytes(jsonl(DIRECTORY))
    (tmp_path / "accounts.jsonl").write_bytes(accounts or jsonl(ACCOUNTS))
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy, allow_unicode=True))
    return ["replay", "--events", str(tmp_path / "events.jsonl"),
            "--directory", str(tmp_path / "directory.jsonl"),
            "--accounts", str(tmp_path / "accounts.jsonl"),
            "--policy", str(tmp_path / "policy.yaml"), "--out", str(tmp_path / "out.jsonl")]


def alerts(tmp_path: Path) -> list[dict]:
    return [json.loads(x) for x in (tmp_path / "out.jsonl").read_bytes().splitlines()]


def test_accounts_feed_obligations_and_password_expired(tmp_path):
    assert main(setup(tmp_path, POLICY_DOC)) == 0
    got = {(a["rule"], a["user_id"], a["event_ids"][0], a["ts"]) for a in alerts(tmp_path)}
    assert ("account_not_revoked", "x-left", "directory/x-left/2026-11-18T09:00:00+09:00",
            "2026-11-18T01:00:00.000Z") in got
    assert ("password_expired", "e1", "login-1", "2026-11-18T01:05:00.000Z") in got


def test_commitments_turn_the_other_rules_off(tmp_path):
    doc = {k: v for k, v in POLICY_DOC.items() if k != "clauses"}
    doc["commitments"] = [{"id": "P-1", "clause": "Test §10", "quote": "periodic change",
                           "rules": ["password_expired"]}]
    assert main(setup(tmp_path, doc)) == 0
    got = alerts(tmp_path)
    assert [a["rule"] for a in got] == ["password_expired"]
    assert got[0]["clauses"] == ["Test §10: periodic change"]


def test_an_exception_excuses_until_it_expires(tmp_path):
    doc = {**POLICY_DOC, "exceptions": [
        {"rule": "password_expired", "user_id": "e1", "until": "2026-11-18T01:05:00Z",
         "reason": "rotation ticket PRIV-1"}]}
    assert main(setup(tmp_path, doc)) == 0
    assert "password_expired" in {a["rule"] for a in alerts(tmp_path)}  # void at until
    doc["exceptions"][0]["until"] = "2026-11-18T01:05:00.001Z"
    assert main(setup(tmp_path, doc)) == 0
    assert "password_expired" not in {a["rule"] for a in alerts(tmp_path)}


def test_a_bad_account_record_is_rejected_with_its_path(tmp_path, capsys):
    bad = jsonl([*ACCOUNTS, {"user_id": "e2", "enabled": "yes",
                             "effective": "2025-01-01T00:00:00Z"}])
    assert main(setup(tmp_path, POLICY_DOC, bad)) == 0
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "rejected" in x)
    assert "accounts.jsonl:3" in line
    assert "$.enabled" in line
    rejected = (tmp_path / "out.rejected.jsonl").read_bytes().splitlines()
    assert len(rejected) == 1
    assert b'\\"yes\\"' in rejected[0]
    assert "account_not_revoked" in {a["rule"] for a in alerts(tmp_path)}  # the rest read


BAD_POLICIES = [
    ({"exceptions": [{"rule": "revoked_account", "until": "2026-12-31T00:00:00Z",
                      "reason": "x"}]}, "exceptions[0].rule"),
    ({"commitments": [{"id": "A", "clause": "§1", "rules": ["revoked_acount"]}]},
     "commitments[0].rules[0]"),
    ({"commitments": [{"id": "A", "clause": "§1", "rules": ["brute_force"]}],
      "clauses": {"brute_force": "§1"}}, "clauses, commitments"),
]


@pytest.mark.parametrize(("extra", "path"), BAD_POLICIES)
@pytest.mark.parametrize("command", ["replay", "run"])
def test_a_bad_policy_is_one_line_naming_the_file_and_path(tmp_path, capsys, extra, path,
                                                           command):
    doc = {k: v for k, v in POLICY_DOC.items() if k != "clauses"}
    doc.update(extra)
    argv = setup(tmp_path, doc)
    if command == "run":  # the daemon fails the same way before it connects to anything
        argv = ["run", "--policy", str(tmp_path / "policy.yaml"), "--listen",
                "127.0.0.1:0"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert f"{tmp_path / 'policy.yaml'}: {path}" in err
