"""Every document the simulator writes validates against its contract schema."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker

from watchdog.simulate import World

SCHEMAS = Path(__file__).resolve().parents[2] / "watchdog" / "schemas"


def _validator(name: str) -> Draft202012Validator:
    schema = orjson.loads((SCHEMAS / f"{name}.schema.json").read_bytes())
    Draft202012Validator.check_schema(schema)
    checker = FormatChecker()
    assert "date-time" in checker.checkers  # rfc3339-validator is installed: formats are checked
    return Draft202012Validator(schema, format_checker=checker)


def _errors(v: Draft202012Validator, doc: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in v.iter_errors(doc)]


def test_format_checking_is_on() -> None:
    v = _validator("subject-record")
    assert _errors(v, {"subject_id": "c-1", "type": "minor", "effective": "2026-11-01 09:00"})


def test_events_validate(small_world: World, small_events: list[dict[str, Any]]) -> None:
    v = _validator("access-event")
    planned = small_world.planned_event_ids
    sample = [e for e in small_events if e["event"]["id"] in planned]
    rest = [e for e in small_events if e["event"]["id"] not in planned]
    sample += random.Random(1).sample(rest, min(3000, len(rest)))
    bad = {e["event"]["id"]: _errors(v, e) for e in sample if _errors(v, e)}
    assert not bad


@pytest.mark.parametrize(("file", "schema"), [("directory.jsonl", "directory-record"),
                                              ("subjects.jsonl", "subject-record"),
                                              ("accounts.jsonl", "account-record")])
def test_records_validate(small_dir: Path, file: str, schema: str) -> None:
    v = _validator(schema)
    docs = [orjson.loads(line) for line in (small_dir / file).read_bytes().splitlines()]
    assert docs
    bad = [(d, _errors(v, d)) for d in docs if _errors(v, d)]
    assert not bad


def test_policy_validates(small_dir: Path) -> None:
    doc = yaml.safe_load((small_dir / "policy.yaml").read_text())
    assert not _errors(_validator("policy"), doc)


def test_timestamps_mix_offsets(small_events: list[dict[str, Any]]) -> None:
    stamps = [e["@timestamp"] for e in small_events]
    assert any(s.endswith("Z") for s in stamps)
    assert any(s.endswith("+09:00") for s in stamps)


def test_policy_is_commitments_that_check_policy_accepts(small_dir: Path) -> None:
    from watchdog.policy import load_policy
    from watchdog.policy.check import purpose_problems, threshold_problems
    from watchdog.simulate.catalog import RULES, RULES_OFF

    doc = yaml.safe_load((small_dir / "policy.yaml").read_text())
    assert "commitments" in doc
    assert "clauses" not in doc
    assert purpose_problems(doc) == []
    assert threshold_problems(doc) == []
    policy = load_policy(small_dir / "policy.yaml")
    assert {r for r in RULES if not policy.runs(r)} == set(RULES_OFF)
