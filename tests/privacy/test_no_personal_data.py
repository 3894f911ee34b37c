"""No raw subject id leaves the watchdog: not in alerts, not on stderr or in logs, not in the
metadata of the dead-letter file.

A simulated organisation (``watchdog.simulate``, 100 accounts x 3 days, every rule's
violations injected) plus bad lines that carry subject ids in every awkward place (an enum
value, a pattern-checked field, a timestamp, a cut-off document) is replayed through
``watchdog replay`` in-process. The raw subject ids of the simulator must not appear in any
alert line, any stderr or log line, or the ``reason``/``detail``/``source`` of a rejection
(the rejected document itself is kept untouched by design, and that is checked too). Every
alert's pseudonyms are HMAC pseudonyms (``s-`` + 16 hex) of the simulator's subjects: the same
for the same key, all different under another key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.privacy.scan import scan_for_ids
from watchdog.cli import main
from watchdog.simulate import SimConfig, build_world, write_world

KEY = "privacy-test-key-0123456789"
OTHER_KEY = "another-key-9876543210-abcdef"
PSEUDONYM = re.compile(r"s-[0-9a-f]{16}")


@dataclass
class Org:
    files: dict[str, Path]
    subject_ids: set[str]  # every data subject of the simulated organisation
    account_ids: set[str]  # accounts (an employee can be the data subject of HR records)
    bad_lines: list[bytes]  # appended to the events: each carries subject ids


def _bad_lines(sids: list[str]) -> list[bytes]:
    a, b, c = sids[:3]
    ev: dict[str, Any] = {"@timestamp": "2026-11-02T10:00:00+09:00",
                          "event": {"id": "bad-1", "action": "read"}, "user": {"id": "e10001"},
                          "data": {"categories": ["identity"], "subject_ids": [a, b]}}

    def with_(path: tuple[str, ...], value: Any) -> bytes:
        doc = orjson.loads(orjson.dumps(ev))
        node = doc
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
        return orjson.dumps(doc)

    return [
        with_(("event", "action"), a),  # an enum value that is a subject id
        with_(("event", "outcome"), f"{b}'s \"quoted\" value"),
        with_(("data", "categories"), ["identity", c]),
        with_(("event", "action"), f"x'{c}'y"),  # quotes inside the value
        with_(("data", "categories"), [f"datetime {a}"]),  # looks like a time error
        with_(("destination", "country"), a),  # a pattern-checked field
        with_(("@timestamp",), f"{a}T00:00:00Z"),  # a timestamp that is not one
        with_(("data", "collected_at"), b),
        with_(("data", "subject_ids"), [a, 12]),  # a wrong type next to a subject id
        with_(("user", "id"), ""),
        with_(("@timestamp",), "1969-12-31T23:59:59Z"),  # outside the allowed range
        with_(("event",), {"id": c}),  # missing action
        orjson.dumps(ev)[:60],  # cut off: not JSON
        b'{"subject": "' + a.encode() + b'", "x": NaN}',
        b"\xff\xfe" + c.encode(),  # not UTF-8 (kept as base64)
    ]


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Org:
    world = build_world(SimConfig(accounts=100, days=3))
    out = tmp_path_factory.mktemp("org")
    files = write_world(world, out)
    subjects = {r["subject_id"] for r in world.subjects}
    accounts = {r["user_id"] for r in world.directory}
    with files["events"].open("rb") as f:
        for line in f:
            ev = orjson.loads(line)
            accounts.add(ev["user"]["id"])
            subjects.update(ev.get("data", {}).get("subject_ids", ()))
    customers = sorted(s for s in subjects if s not in accounts)
    bad = _bad_lines(customers)
    with files["events"].open("ab") as f:
        f.write(b"".join(line + b"\n" for line in bad))
    return Org(files, subjects, accounts, bad)


@dataclass
class Replay:
    alerts: list[bytes]
    stderr: list[str]
    logs: list[str]
    rejected: list[dict[str, Any]]


def _replay(org: Org, out: Path, key: str, monkeypatch: pytest.MonkeyPatch,
            capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Replay:
    monkeypatch.setenv("WATCHDOG_PSEUDONYM_KEY", key)
    caplog.clear()
    capfd.readouterr()
    with caplog.at_level(logging.DEBUG):
        code = main(["replay", "--events", str(org.files["events"]),
                     "--directory", str(org.files["directory"]),
                     "--subjects", str(org.files["subjects"]),
                     "--policy", str(org.files["policy"]), "--out", str(out)])
    captured = capfd.readouterr()
    assert code == 0, captured.err
    rejected_path = out.with_name(out.name.removesuffix(".jsonl") + ".rejected.jsonl")
    return Replay(
        alerts=out.read_bytes().splitlines(),
        stderr=(captured.err + captured.out).splitlines(),
        logs=[f"{r.name}: {r.getMessage()}" for r in caplog.records],
        rejected=[orjson.loads(line) for line in rejected_path.read_bytes().splitlines()],
    )


@pytest.fixture(scope="module")
def runs() -> dict[str, Replay]:
    return {}


def _run(name: str, key: str, org: Org, runs: dict[str, Replay], tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
         caplog: pytest.LogCaptureFixture) -> Replay:
    if name not in runs:
        runs[name] = _replay(org, tmp_path / f"{name}.jsonl", key, monkeypatch, capfd, caplog)
    return runs[name]


@pytest.fixture
def replay(org: Org, runs: dict[str, Replay], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
           capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Replay:
    return _run("first", KEY, org, runs, tmp_path, monkeypatch, capfd, caplog)


def _customers(org: Org) -> set[str]:
    """Subjects that are not also accounts (an account id rightly names the actor)."""
    return org.subject_ids - org.account_ids


def test_the_scan_finds_what_it_looks_for(org: Org) -> None:
    """The helper and the data are meaningful: the ids are there to be found in the input."""
    text = org.files["events"].read_text(errors="replace").splitlines()
    assert len(scan_for_ids(text[:2000], org.subject_ids)) > 100
    assert scan_for_ids(["x c-0000233 y", "c-00002331", "xc-0000233", '"c-0000233"'],
                        {"c-0000233"}) == ["text 1: 'c-0000233' in …x c-0000233 y…",
                                           "text 4: 'c-0000233' in …\"c-0000233\"…"]
    assert len(scan_for_ids(["c-00002331"], {"c-0000233"}, boundary=False)) == 1


def test_no_subject_id_in_alerts(org: Org, replay: Replay) -> None:
    assert len(replay.alerts) > 50
    rules = {orjson.loads(line)["rule"] for line in replay.alerts}
    assert {"bulk_export", "subject_restricted", "marketing_opt_out", "minor_data"} <= rules
    assert scan_for_ids((line.decode() for line in replay.alerts), _customers(org)) == []
    # employees who are data subjects of HR records may be named as the acting account, but
    # never as subjects: the subjects member and the labels carry no raw id at all
    parts = []
    for line in replay.alerts:
        doc = orjson.loads(line)
        parts.append(orjson.dumps([doc.get("subjects"), doc.get("labels")]).decode())
    assert scan_for_ids(parts, org.subject_ids) == []


def test_no_subject_id_on_stderr_or_in_logs(org: Org, replay: Replay) -> None:
    assert any("rejected" in line for line in replay.stderr)  # the bad lines were reported
    assert scan_for_ids(replay.stderr, org.subject_ids) == []
    assert scan_for_ids(replay.logs, org.subject_ids) == []


def test_no_subject_id_in_rejection_metadata(org: Org, replay: Replay) -> None:
    assert len(replay.rejected) == len(org.bad_lines)
    meta = [orjson.dumps({k: v for k, v in r.items() if k not in ("raw", "raw_base64")}).decode()
            for r in replay.rejected]
    assert scan_for_ids(meta, org.subject_ids) == []
    for r in replay.rejected:
        assert set(r) == {"source", "line", "reason", "detail", "raw"} or set(r) == {
            "source", "line", "reason", "detail", "raw_base64"}
        assert "\n" not in r["detail"]
    # by design the document itself is forwarded untouched (it is the evidence)
    raws = [r["raw"].encode() if "raw" in r else None for r in replay.rejected]
    assert [x for x in raws if x is not None] == [x for x in org.bad_lines
                                                   if not x.startswith(b"\xff")]
    reasons = {r["reason"] for r in replay.rejected}
    assert reasons == {"invalid_value", "bad_timestamp", "missing_field", "not_json"}


def test_pseudonyms_are_hmacs_of_the_subjects(org: Org, replay: Replay) -> None:
    by_pseudonym = {
        "s-" + hmac.new(KEY.encode(), s.encode(), hashlib.sha256).hexdigest()[:16]: s
        for s in org.subject_ids}
    seen = 0
    for line in replay.alerts:
        doc = orjson.loads(line)
        subjects = doc.get("subjects", {})
        for p in subjects.get("pseudonyms", []):
            assert PSEUDONYM.fullmatch(p), p
            assert p in by_pseudonym, f"{p} is not the HMAC of any subject under the key"
            seen += 1
        assert subjects.get("count", 0) >= len(subjects.get("pseudonyms", []))
    assert seen > 20


def test_pseudonyms_are_stable_for_a_key_and_change_with_it(
        org: Org, runs: dict[str, Replay], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    first = _run("first", KEY, org, runs, tmp_path, monkeypatch, capfd, caplog)
    again = _run("again", KEY, org, runs, tmp_path, monkeypatch, capfd, caplog)
    other = _run("other", OTHER_KEY, org, runs, tmp_path, monkeypatch, capfd, caplog)

    def pseudonyms(r: Replay) -> dict[str, list[str]]:
        out = {}
        for line in r.alerts:
            doc = orjson.loads(line)
            out[doc["alert_id"]] = doc.get("subjects", {}).get("pseudonyms", [])
        return out

    a, b, c = pseudonyms(first), pseudonyms(again), pseudonyms(other)
    assert a == b  # same key: the same pseudonyms, alert for alert
    assert a.keys() == c.keys()  # alert ids do not depend on the key
    with_subjects = [k for k, v in a.items() if v]
    assert with_subjects
    for k in with_subjects:
        assert len(a[k]) == len(c[k])
        assert not set(a[k]) & set(c[k]), "a pseudonym survived a change of key"
    assert scan_for_ids((line.decode() for line in other.alerts), _customers(org)) == []
