"""The alert audit trail: a hash chain that detects every kind of tampering, and its CLI."""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import threading
from pathlib import Path

import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from watchdog import audit
from watchdog.alerts.model import Alert, AlertSubjects, encode_alert
from watchdog.audit import ZERO, AuditError, AuditTrail, head_path, verify
from watchdog.cli import main


def _alert(i: int) -> bytes:
    return encode_alert(Alert(
        alert_id=f"bulk_export:{i:016x}", rule="bulk_export", severity="critical",
        ts="2026-11-20T09:15:02.123Z", user_id=f"e{i}", event_ids=(f"ev-{i}",),
        summary=f"Account e{i} took out personal data — ünïcode ok", clauses=("§10",),
        subjects=AlertSubjects(3, ("s-0123456789abcdef",)), labels={"n": str(i)}))


def _write(path: Path, n: int, *, fsync: bool = False) -> list[bytes]:
    alerts = [_alert(i) for i in range(n)]
    with AuditTrail(path, fsync=fsync) as trail:
        for a in alerts:
            trail.append(a)
    return alerts


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def _put(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def _forge(seq: int, prev: str, alert: bytes) -> bytes:
    """A line as a forger who knows the format would write it (hash recomputed)."""
    body = b'{"seq":%d,"prev":"%s","alert":%s}' % (seq, prev.encode(), alert)
    h = hashlib.sha256(body).hexdigest()
    return b'{"seq":%d,"prev":"%s","alert":%s,"hash":"%s"}' % (seq, prev.encode(), alert,
                                                              h.encode())


@pytest.fixture
def trail(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    _write(path, 5)
    return path


# -- round trip ---------------------------------------------------------------------------
def test_round_trip_keeps_alert_bytes_and_links_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    alerts = _write(path, 4, fsync=True)
    lines = _lines(path)
    assert len(lines) == 4
    prev = ZERO
    for i, (line, alert) in enumerate(zip(lines, alerts, strict=True), 1):
        doc = orjson.loads(line)
        assert list(doc) == ["seq", "prev", "alert", "hash"]
        assert doc["seq"] == i
        assert doc["prev"] == prev
        assert orjson.dumps(doc["alert"]) == alert  # the alert is kept byte for byte
        assert alert in line
        body = b'{"seq":%d,"prev":"%s","alert":%s}' % (i, prev.encode(), alert)
        assert doc["hash"] == hashlib.sha256(body).hexdigest()
        prev = hashlib.sha256(line).hexdigest()
    head = orjson.loads(head_path(path).read_bytes())
    assert head == {"seq": 4, "hash": orjson.loads(lines[-1])["hash"]}
    assert verify(path) == audit.VerifyResult(True, 4, None)


def test_empty_trail_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    AuditTrail(path).close()
    assert path.read_bytes() == b""
    assert orjson.loads(head_path(path).read_bytes()) == {"seq": 0, "hash": ZERO}
    assert verify(path).ok


def test_pretty_printed_alert_is_compacted(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditTrail(path, fsync=False) as t:
        t.append(b'{\n  "alert_id": "x",\n  "rule": "r"\n}\n')
    assert len(_lines(path)) == 1
    assert orjson.loads(_lines(path)[0])["alert"] == {"alert_id": "x", "rule": "r"}
    assert verify(path).ok


def test_big_integers_survive(tmp_path: Path) -> None:
    # subject_count has no upper bound in the contract; an alert may carry a 27-digit count
    path = tmp_path / "audit.jsonl"
    alert = b'{"alert_id":"x","subjects":{"count":100000000000000000000000000}}'
    with AuditTrail(path, fsync=False) as t:
        t.append(alert)
        t.append(b'{\n"count": 100000000000000000000000001}')
    assert alert in path.read_bytes()
    assert b'{"count":100000000000000000000000001}' in path.read_bytes()
    assert verify(path).ok


@pytest.mark.parametrize("bad", [b"", b"not json", b"[1, 2]", b'"text"', b"\xff{}", b"{} {}",
                                 b'{"a": "\x80"}'])
def test_append_refuses_what_is_not_an_alert_object(tmp_path: Path, bad: bytes) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditTrail(path, fsync=False) as t, pytest.raises(ValueError, match="alert"):
        t.append(bad)
    assert path.read_bytes() == b""


def test_append_after_close_fails(tmp_path: Path) -> None:
    t = AuditTrail(tmp_path / "a.jsonl", fsync=False)
    t.close()
    t.close()  # idempotent
    with pytest.raises(AuditError, match="closed"):
        t.append(_alert(0))


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    with AuditTrail(path, fsync=False), pytest.raises(AuditError, match="another writer"):
        AuditTrail(path, fsync=False)
    AuditTrail(path, fsync=False).close()  # released on close


def test_concurrent_appends_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    with AuditTrail(path, fsync=False) as t:
        def work(k: int) -> None:
            for i in range(50):
                t.append(_alert(k * 100 + i))
        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert verify(path) == audit.VerifyResult(True, 200, None)


# -- tampering ----------------------------------------------------------------------------
def _problem(path: Path) -> str:
    result = verify(path)
    assert not result.ok
    assert result.problem is not None
    assert "\n" not in result.problem
    return result.problem


def test_edited_field_is_detected(trail: Path) -> None:
    lines = _lines(trail)
    lines[2] = lines[2].replace(b'"severity":"critical"', b'"severity":"low"')
    _put(trail, lines)
    problem = _problem(trail)
    assert problem.startswith("line 3: hash does not match")
    assert verify(trail).lines == 2


def test_edited_field_with_recomputed_hash_is_detected_by_the_next_line(trail: Path) -> None:
    lines = _lines(trail)
    doc = orjson.loads(lines[2])
    edited = orjson.dumps({**doc["alert"], "severity": "low"})
    lines[2] = _forge(3, doc["prev"], edited)
    _put(trail, lines)
    assert _problem(trail).startswith("line 4: prev does not match line 3")


def test_edited_last_line_with_recomputed_hash_is_detected_by_the_head(trail: Path) -> None:
    lines = _lines(trail)
    doc = orjson.loads(lines[-1])
    lines[-1] = _forge(5, doc["prev"], orjson.dumps({**doc["alert"], "user_id": "someone"}))
    _put(trail, lines)
    assert _problem(trail) == "line 5: hash differs from the head's: the trail was rewritten"


def test_whitespace_or_extra_member_is_detected(trail: Path) -> None:
    lines = _lines(trail)
    original = list(lines)
    lines[1] = lines[1].replace(b'"seq":2,', b'"seq": 2,')
    _put(trail, lines)
    assert _problem(trail).startswith("line 2: not an audit record")
    lines = list(original)
    lines[1] = lines[1][:-1] + b',"extra":1}'
    _put(trail, lines)
    assert _problem(trail).startswith("line 2: not an audit record")


def test_deleted_middle_line_is_detected(trail: Path) -> None:
    lines = _lines(trail)
    del lines[2]
    _put(trail, lines)
    assert _problem(trail).startswith("line 3: seq is 4, expected 3")


def test_deleted_middle_line_with_renumbered_chain_is_detected(trail: Path) -> None:
    # the forger renumbers the following lines and recomputes their hashes, but cannot fix
    # prev without rewriting the whole tail (and then the head gives it away)
    lines = _lines(trail)
    del lines[2]
    for i in range(2, len(lines)):
        doc = orjson.loads(lines[i])
        lines[i] = _forge(i + 1, doc["prev"], orjson.dumps(doc["alert"]))
    _put(trail, lines)
    assert _problem(trail).startswith("line 3: prev does not match line 2")


def test_fully_rewritten_chain_is_detected_by_the_head(trail: Path) -> None:
    lines = _lines(trail)
    del lines[2]
    prev = ZERO
    for i in range(len(lines)):
        alert = orjson.dumps(orjson.loads(lines[i])["alert"])
        lines[i] = _forge(i + 1, prev, alert)
        prev = hashlib.sha256(lines[i]).hexdigest()
    _put(trail, lines)
    assert _problem(trail).startswith("line 5: missing; the head records 5 alerts but the file "
                                      "has 4")


def test_swapped_lines_are_detected(trail: Path) -> None:
    lines = _lines(trail)
    lines[1], lines[2] = lines[2], lines[1]
    _put(trail, lines)
    assert _problem(trail).startswith("line 2: seq is 3, expected 2")


def test_swapped_alerts_with_recomputed_hashes_are_detected(trail: Path) -> None:
    lines = _lines(trail)
    a, b = orjson.loads(lines[1]), orjson.loads(lines[2])
    lines[1] = _forge(2, a["prev"], orjson.dumps(b["alert"]))
    lines[2] = _forge(3, b["prev"], orjson.dumps(a["alert"]))
    _put(trail, lines)
    assert _problem(trail).startswith("line 3: prev does not match line 2")


def test_inserted_forged_line_is_detected(trail: Path) -> None:
    lines = _lines(trail)
    doc = orjson.loads(lines[2])
    # a forged line that claims seq 3, with a valid hash but a made-up prev
    forged = _forge(3, "ab" * 32, orjson.dumps({**doc["alert"], "alert_id": "forged"}))
    lines.insert(2, forged)
    _put(trail, lines)
    assert _problem(trail).startswith("line 3: prev does not match line 2")


def test_inserted_forged_line_with_correct_prev_is_detected_by_the_next_line(
        trail: Path) -> None:
    lines = _lines(trail)
    prev = hashlib.sha256(lines[1]).hexdigest()
    lines.insert(2, _forge(3, prev, b'{"alert_id":"forged"}'))
    _put(trail, lines)
    assert _problem(trail).startswith("line 4: seq is 3, expected 4")


def test_duplicated_line_is_detected(trail: Path) -> None:
    lines = _lines(trail)
    lines.insert(3, lines[2])
    _put(trail, lines)
    assert _problem(trail).startswith("line 4: seq is 3, expected 4")


def test_forged_first_line_is_detected(trail: Path) -> None:
    lines = _lines(trail)
    lines[0] = _forge(1, "11" * 32, orjson.dumps(orjson.loads(lines[0])["alert"]))
    _put(trail, lines)
    assert _problem(trail).startswith("line 1: prev is not 64 zeros but this is the first line")


def test_truncated_tail_is_detected_with_the_head(trail: Path) -> None:
    lines = _lines(trail)
    _put(trail, lines[:3])
    assert _problem(trail).startswith("line 4: missing; the head records 5 alerts but the file "
                                      "has 3: the tail was truncated")
    trail.write_bytes(b"")
    assert _problem(trail).startswith("line 1: missing; the head records 5 alerts")


def test_truncated_tail_without_head_goes_unseen_only_when_waived(trail: Path) -> None:
    _put(trail, _lines(trail)[:3])
    head_path(trail).unlink()
    assert verify(trail, require_head=False) == audit.VerifyResult(True, 3, None)
    result = verify(trail)  # required by default
    assert not result.ok
    assert "no head file" in (result.problem or "")


def test_separately_kept_head_detects_truncation(trail: Path, tmp_path: Path) -> None:
    kept = tmp_path / "elsewhere.head"
    kept.write_bytes(head_path(trail).read_bytes())
    _put(trail, _lines(trail)[:4])
    head_path(trail).write_bytes(orjson.dumps({"seq": 4, "hash": orjson.loads(
        _lines(trail)[-1])["hash"]}))  # the forger fixes the local head too
    assert verify(trail).ok
    result = verify(trail, kept)
    assert not result.ok
    assert "truncated" in (result.problem or "")


def test_torn_last_line_is_reported(trail: Path) -> None:
    data = trail.read_bytes()
    trail.write_bytes(data[:-10])
    assert "line 5: incomplete last line" in _problem(trail)


def test_broken_head_is_reported(trail: Path) -> None:
    head_path(trail).write_bytes(b'{"seq": "5"}')
    assert "not a head record" in _problem(trail)


@st.composite
def tamperings(draw: st.DrawFn) -> tuple[int, str, tuple[int, ...]]:
    n = draw(st.integers(1, 7))
    kind = draw(st.sampled_from(("byte", "delete", "swap", "duplicate", "truncate", "insert",
                                 "rehash")))
    args = tuple(draw(st.lists(st.integers(0, 10_000), min_size=3, max_size=3)))
    return n, kind, args


@settings(max_examples=100, deadline=None, database=None)
@given(case=tamperings())
def test_any_tampering_is_detected(case: tuple[int, str, tuple[int, ...]]) -> None:
    """Whatever one edit does to a trail (with its head), verify() notices."""
    n, kind, (a, b, c) = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.jsonl"
        _write(path, n)
        lines = _lines(path)
        if kind == "byte":
            data = bytearray(path.read_bytes())
            i = a % len(data)
            data[i] = (data[i] + 1 + b % 255) % 256  # a different byte
            path.write_bytes(bytes(data))
        else:
            i, j = a % n, b % n
            if kind == "delete":
                del lines[i]
            elif kind == "swap":
                assume(i != j)
                lines[i], lines[j] = lines[j], lines[i]
            elif kind == "duplicate":
                lines.insert(j, lines[i])
            elif kind == "truncate":
                lines = lines[: i]
            elif kind == "insert":  # a forged line, hash recomputed, seq of its position
                prev = hashlib.sha256(lines[i - 1]).hexdigest() if i and c % 2 else "ab" * 32
                lines.insert(i, _forge(i + 1, prev, b'{"alert_id":"forged"}'))
            else:  # rehash: an edited alert with its hash recomputed
                doc = orjson.loads(lines[i])
                alert = orjson.dumps({**doc["alert"], "severity": "low"})
                lines[i] = _forge(i + 1, doc["prev"], alert)
            _put(path, lines)
        result = verify(path)
        assert not result.ok, (kind, a, b, c)
        assert result.problem
        assert "\n" not in result.problem


# -- restart --------------------------------------------------------------------------------
def test_restart_resumes_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 3)
    with AuditTrail(path, fsync=False) as t:
        assert t.seq == 3
        t.append(_alert(3))
        t.append(_alert(4))
    _write(path, 1)
    assert verify(path) == audit.VerifyResult(True, 6, None)
    assert [orjson.loads(line)["seq"] for line in _lines(path)] == [1, 2, 3, 4, 5, 6]


def test_verify_after_a_crash_between_line_and_head(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 3)
    stale_head = head_path(path).read_bytes()
    _write(path, 1)
    head_path(path).write_bytes(stale_head)  # the head write never happened
    result = verify(path)  # one line ahead is a crash: ok, with a note
    assert (result.ok, result.lines, result.problem) == (True, 4, None)
    assert result.note is not None
    assert result.note.startswith("line 4 is not sealed by the head (seq 3)")
    lines = _lines(path)
    lines[2] = lines[2].replace(b"critical", b"low")
    _put(path, lines)
    assert _problem(path).startswith("line 3: hash does not match")
    lines[2] = _forge(3, orjson.loads(lines[2])["prev"], orjson.dumps(orjson.loads(lines[2])[
        "alert"]))
    doc4 = orjson.loads(lines[3])
    lines[3] = _forge(4, hashlib.sha256(lines[2]).hexdigest(), orjson.dumps(doc4["alert"]))
    _put(path, lines)  # a rewritten chain under a stale head: still caught
    assert _problem(path) == "line 3: hash differs from the head's: the trail was rewritten"


def test_reopen_seals_a_line_written_before_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 3)
    stale_head = head_path(path).read_bytes()
    _write(path, 1)
    head_path(path).write_bytes(stale_head)
    with AuditTrail(path, fsync=False) as t:
        assert t.seq == 4
        assert orjson.loads(head_path(path).read_bytes())["seq"] == 4  # repaired
        t.append(_alert(9))
    assert verify(path) == audit.VerifyResult(True, 5, None)


def test_two_lines_ahead_of_the_head_are_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 3)
    stale_head = head_path(path).read_bytes()
    _write(path, 2)
    head_path(path).write_bytes(stale_head)
    assert _problem(path).startswith("line 5: 2 lines after the head's last seq 3")
    with pytest.raises(AuditError, match="does not match its head"):
        AuditTrail(path, fsync=False)


def test_restart_cuts_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 3)
    with path.open("ab") as f:
        f.write(b'{"seq":4,"prev":"0')  # crashed mid-write, never acknowledged
    with AuditTrail(path, fsync=False) as t:
        assert t.seq == 3
        t.append(_alert(3))
    assert verify(path) == audit.VerifyResult(True, 4, None)


def test_restart_refuses_a_truncated_trail(trail: Path) -> None:
    _put(trail, _lines(trail)[:2])
    with pytest.raises(AuditError, match="truncated or rewritten"):
        AuditTrail(trail, fsync=False)


def test_restart_refuses_an_edited_last_line(trail: Path) -> None:
    lines = _lines(trail)
    lines[-1] = lines[-1].replace(b"critical", b"low")
    _put(trail, lines)
    with pytest.raises(AuditError, match="edited"):
        AuditTrail(trail, fsync=False)


def test_restart_with_long_lines(tmp_path: Path) -> None:
    # lines longer than the tail reader's chunk
    path = tmp_path / "audit.jsonl"
    big = orjson.dumps({"alert_id": "x", "summary": "y" * 200_000})
    with AuditTrail(path, fsync=False) as t:
        t.append(big)
        t.append(big)
    with AuditTrail(path, fsync=False) as t:
        assert t.seq == 2
        t.append(big)
    assert verify(path) == audit.VerifyResult(True, 3, None)


# -- CLI --------------------------------------------------------------------------------------
def _cli(argv: list[str]) -> int:
    """``watchdog verify-audit ARGS``, wired as watchdog.cli wires it."""
    parser = argparse.ArgumentParser(prog="watchdog verify-audit")
    audit.add_arguments(parser)
    return audit.run(parser.parse_args(argv))


def test_cli_is_wired_into_watchdog(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify-audit", str(trail)]) == 0
    assert capsys.readouterr().out == "ok: 5 alerts, chain intact\n"


def test_cli_ok(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli([str(trail)]) == 0
    out = capsys.readouterr().out
    assert out == "ok: 5 alerts, chain intact\n"


def test_cli_tampered(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = _lines(trail)
    del lines[1]
    _put(trail, lines)
    assert _cli([str(trail)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert out[0].startswith(f"{trail}: line 2: seq is 3, expected 2")


def test_cli_truncated_with_separate_head(trail: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    kept = tmp_path / "kept.head"
    kept.write_bytes(head_path(trail).read_bytes())
    head_path(trail).unlink()
    _put(trail, _lines(trail)[:3])
    assert _cli([str(trail), "--no-head"]) == 0
    assert "no head file" in capsys.readouterr().err
    assert _cli([str(trail)]) == 1
    assert _cli([str(trail), "--require-head"]) == 1
    assert _cli([str(trail), "--head", str(kept)]) == 1
    assert "line 4: missing" in capsys.readouterr().out


def test_cli_warns_about_an_unsealed_line(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 2)
    stale_head = head_path(path).read_bytes()
    _write(path, 1)
    head_path(path).write_bytes(stale_head)
    assert _cli([str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "ok: 3 alerts, chain intact\n"
    assert "line 3 is not sealed by the head" in captured.err


def test_cli_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli([str(tmp_path / "nope.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
