"""`watchdog replay` end to end on small files: deterministic output, bad lines dead-lettered
and counted, exit codes and one-line errors, .gz and stdin input."""

from __future__ import annotations

import base64
import gzip
import io
import json
import re
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from tests.builders import POLICY_DOC, at, event_doc
from watchdog.cli import main

DETECTED = re.compile(rb',?"detected_at":"[^"]*"')

GOOD_EVENTS = [
    event_doc(id="ok-1", when=at(minutes=1)),                                         # clean
    event_doc(id="leaver-1", user="x-left", action="login", data=False,
              dataset="idp.auth", when=at(minutes=2)),                                # revoked
    event_doc(id="usb-1", action="copy", dest={"kind": "external_media"},
              subject_ids=["c-000311", "c-2"], when=at(minutes=3)),                   # media
    event_doc(id="erased-1", subject_ids=["c-erased"], when=at(minutes=4)),           # restricted
    event_doc(id="night-1", when="2026-11-21T03:00:00+09:00", dataset=None),          # off hours
]
DIRECTORY = [
    {"user_id": "e1", "status": "active", "effective": "2025-04-01T00:00:00+09:00",
     "roles": ["support_agent"]},
    {"user_id": "x-left", "status": "departed", "effective": "2026-11-15T18:00:00+09:00",
     "roles": []},
]
SUBJECTS = [{"subject_id": "c-erased", "type": "erasure_requested",
             "effective": "2026-11-01T00:00:00Z"}]
BAD_LINES = [
    b'{"@timestamp": "2026-11-18T01:00:00Z", "event": {',                   # not JSON
    b'{"@timestamp": "2026-11-18T01:00:00Z", "event": {"id": "m", "action": "read"}}',
    b'{"@timestamp": "not a time", "event": {"id": "t", "action": "read"}, "user": {"id": "u"}}',
    b'{"@timestamp": "2026-11-18T01:00:00Z", "event": {"id": "\xff", "action": "read"},'
    b' "user": {"id": "u"}}',                                                 # invalid UTF-8
]


def jsonl(docs) -> bytes:
    return b"".join(orjson.dumps(d) + b"\n" for d in docs)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "events": tmp_path / "events.jsonl",
        "directory": tmp_path / "directory.jsonl",
        "subjects": tmp_path / "subjects.jsonl",
        "policy": tmp_path / "policy.yaml",
    }
    paths["events"].write_bytes(jsonl(GOOD_EVENTS))
    paths["directory"].write_bytes(jsonl(DIRECTORY))
    paths["subjects"].write_bytes(jsonl(SUBJECTS))
    paths["policy"].write_text(yaml.safe_dump(POLICY_DOC, allow_unicode=True))
    return paths


def replay(files: dict[str, Path], out: Path | str, events: Path | str | None = None,
           **extra: str) -> int:
    argv = ["replay", "--events", str(events or files["events"]),
            "--directory", str(files["directory"]), "--subjects", str(files["subjects"]),
            "--policy", str(files["policy"]), "--out", str(out)]
    for k, v in extra.items():
        argv += [f"--{k}", v]
    return main(argv)


def alerts_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


EXPECTED_RULES = ["external_media", "off_hours_access", "revoked_account", "subject_restricted"]


def test_replay_writes_alerts_and_exits_0(files, tmp_path):
    out = tmp_path / "alerts.jsonl"
    assert replay(files, out) == 0
    alerts = alerts_of(out)
    assert sorted(a["rule"] for a in alerts) == EXPECTED_RULES
    assert all(a["detected_at"] for a in alerts)
    assert not (tmp_path / "alerts.rejected.jsonl").exists()
    raw = out.read_bytes()
    assert b"c-000311" not in raw
    assert b"c-erased" not in raw


def test_replay_without_violations_exits_0(files, tmp_path):
    files["events"].write_bytes(jsonl(GOOD_EVENTS[:1]))
    out = tmp_path / "alerts.jsonl"
    assert replay(files, out) == 0
    assert out.read_bytes() == b""


def test_two_runs_are_byte_identical_apart_from_detected_at(files, tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert replay(files, a) == 0
    assert replay(files, b) == 0
    lines_a = [DETECTED.sub(b"", x) for x in a.read_bytes().splitlines()]
    lines_b = [DETECTED.sub(b"", x) for x in b.read_bytes().splitlines()]
    assert lines_a == lines_b
    assert len(lines_a) == len(EXPECTED_RULES)


def test_input_order_within_lateness_does_not_change_the_output(files, tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert replay(files, a) == 0
    shuffled = [GOOD_EVENTS[i] for i in (2, 0, 3, 1, 4)]  # minutes 3, 1, 4, 2: within 5 min
    files["events"].write_bytes(jsonl(shuffled))
    assert replay(files, b) == 0
    assert ([DETECTED.sub(b"", x) for x in a.read_bytes().splitlines()]
            == [DETECTED.sub(b"", x) for x in b.read_bytes().splitlines()])


def test_bad_lines_are_dead_lettered_counted_and_the_rest_processed(files, tmp_path, capsys):
    body = jsonl(GOOD_EVENTS[:3]) + b"\n".join(BAD_LINES) + b"\n\n" + jsonl(GOOD_EVENTS[3:])
    files["events"].write_bytes(body)
    out = tmp_path / "alerts.jsonl"
    assert replay(files, out) == 0
    assert sorted(a["rule"] for a in alerts_of(out)) == EXPECTED_RULES
    rejected = [json.loads(x) for x in
                (tmp_path / "alerts.rejected.jsonl").read_bytes().splitlines()]
    assert [r["line"] for r in rejected] == [4, 5, 6, 7]
    assert [r["reason"] for r in rejected] == ["not_json", "missing_field", "bad_timestamp",
                                               "not_json"]
    assert all(r["source"] == str(files["events"]) and r["detail"] for r in rejected)
    # forwarded untouched
    assert [r["raw"].encode() for r in rejected[:3]] == BAD_LINES[:3]
    assert base64.b64decode(rejected[3]["raw_base64"]) == BAD_LINES[3]
    err = capsys.readouterr().err
    assert "invalid 4" in err
    assert "bad_timestamp 1" in err
    assert "missing_field 1" in err
    assert "not_json 2" in err


def test_bad_directory_lines_are_dead_lettered_too(files, tmp_path):
    files["directory"].write_bytes(jsonl(DIRECTORY) + b'{"user_id": "e9", "status": "gone"}\n')
    out = tmp_path / "alerts.jsonl"
    assert replay(files, out) == 0
    rejected = [json.loads(x) for x in
                (tmp_path / "alerts.rejected.jsonl").read_bytes().splitlines()]
    assert [(r["source"], r["line"]) for r in rejected] == [(str(files["directory"]), 3)]
    assert sorted(a["rule"] for a in alerts_of(out)) == EXPECTED_RULES


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.endswith("\n")
    assert err.count("\n") == 1, err
    assert err.startswith("watchdog: error: ")
    return err


def test_missing_events_file(files, tmp_path, capsys):
    code = replay(files, tmp_path / "out.jsonl", events=tmp_path / "nope.jsonl")
    assert code != 0
    assert "nope.jsonl" in one_line_error(capsys)


def test_missing_directory_file(files, tmp_path, capsys):
    files["directory"] = tmp_path / "gone.jsonl"
    assert replay(files, tmp_path / "out.jsonl") != 0
    assert "gone.jsonl" in one_line_error(capsys)


@pytest.mark.parametrize("content", ["organization: x\nroles: {a: [\n",
                                     "organization: x\nroles: {}\nthresholds: {failed_login: 3}\n",
                                     None])
def test_unreadable_policy(files, tmp_path, capsys, content):
    if content is None:
        files["policy"] = tmp_path / "missing-policy.yaml"
    else:
        files["policy"].write_text(content)
    out = tmp_path / "out.jsonl"
    assert replay(files, out) != 0
    assert str(files["policy"]) in one_line_error(capsys)


def test_corrupt_gzip_is_a_one_line_error(files, tmp_path, capsys):
    bad = tmp_path / "events.jsonl.gz"
    bad.write_bytes(b"this is not gzip\n")
    assert replay(files, tmp_path / "out.jsonl", events=bad) != 0
    assert "events.jsonl.gz" in one_line_error(capsys)


def test_gz_input(files, tmp_path):
    plain, packed = tmp_path / "plain.jsonl", tmp_path / "packed.jsonl"
    assert replay(files, plain) == 0
    gz = tmp_path / "events.jsonl.gz"
    gz.write_bytes(gzip.compress(files["events"].read_bytes()))
    assert replay(files, packed, events=gz) == 0
    assert ([DETECTED.sub(b"", x) for x in plain.read_bytes().splitlines()]
            == [DETECTED.sub(b"", x) for x in packed.read_bytes().splitlines()])


class _Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def test_stdin_input(files, tmp_path, monkeypatch):
    plain, piped = tmp_path / "plain.jsonl", tmp_path / "piped.jsonl"
    assert replay(files, plain) == 0
    monkeypatch.setattr(sys, "stdin", _Stdin(files["events"].read_bytes()))
    assert replay(files, piped, events="-") == 0
    assert ([DETECTED.sub(b"", x) for x in plain.read_bytes().splitlines()]
            == [DETECTED.sub(b"", x) for x in piped.read_bytes().splitlines()])


def test_stdout_output(files, tmp_path, monkeypatch, capsysbinary):
    monkeypatch.chdir(tmp_path)
    assert replay(files, "-") == 0
    out = capsysbinary.readouterr().out
    assert sorted(json.loads(x)["rule"] for x in out.splitlines()) == EXPECTED_RULES


def test_contract_examples_replay(contract_dir, tmp_path):
    ex = contract_dir / "examples"
    out = tmp_path / "alerts.jsonl"
    code = main(["replay", "--events", str(ex / "access-events.jsonl"),
                 "--directory", str(ex / "directory.jsonl"),
                 "--subjects", str(ex / "subjects.jsonl"),
                 "--policy", str(ex / "policy.yaml"), "--out", str(out)])
    assert code == 0
    alerts = alerts_of(out)
    revoked = {a["user_id"]: a for a in alerts if a["rule"] == "revoked_account"}
    # the example alert: the departed account's failed login
    assert revoked["e10977"]["event_ids"] == ["idp-551"]
    # the transferred account sent payment data, which its new role does not allow
    assert revoked["e10300"]["event_ids"] == ["bil-9"]
    rules = {a["rule"] for a in alerts}
    assert {"external_media", "bulk_export", "retention_expired", "unknown_account",
            "subject_restricted"} <= rules
    assert b"c-000311" not in out.read_bytes()


def test_replay_imports_only_what_it_runs():
    """The other commands' modules (the daemon's asyncio stack, numpy for the anomaly model, the
    simulator) are imported only for those commands: they cost every replay ~0.3 s to start."""
    import subprocess

    code = ("import sys; from watchdog.cli import build_parser; "
            "build_parser(['replay', '--events', 'x', '--out', 'y']); "
            "print(','.join(m for m in ('numpy', 'asyncio', 'watchdog.simulate', "
            "'watchdog.daemon.cli') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == ""


def test_a_redelivery_is_a_duplicate_and_a_reused_id_a_conflict(files, tmp_path, capsys):
    usb = GOOD_EVENTS[2]
    # the same document written otherwise (key order, spacing): a redelivery, dropped
    redelivered = b'{ "user": ' + orjson.dumps(usb["user"]) + b', ' + orjson.dumps(
        {k: v for k, v in usb.items() if k != "user"})[1:]
    # its id reused by another copy to external media, with another subject: processed
    reused = {**usb, "data": {**usb["data"], "subject_ids": ["c-3"]}}
    files["events"].write_bytes(jsonl(GOOD_EVENTS) + redelivered + b"\n" + jsonl([reused]))
    out = tmp_path / "alerts.jsonl"
    assert replay(files, out) == 0
    alerts = alerts_of(out)
    assert sorted(a["rule"] for a in alerts) == sorted([*EXPECTED_RULES, "external_media"])
    media = [a for a in alerts if a["rule"] == "external_media"]
    assert [a["event_ids"] for a in media] == [[usb["event"]["id"]]] * 2
    assert media[0]["alert_id"] != media[1]["alert_id"]
    summary = capsys.readouterr()
    assert "duplicates 1" in summary.out + summary.err
    assert "id conflicts 1" in summary.out + summary.err
