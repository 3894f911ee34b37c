"""The audit trail's file modes, the head required by default, the keyed (HMAC) chain, entries
other than alerts, and the pure chain check on its own."""

from __future__ import annotations

import argparse
import hashlib
import os
import stat
from pathlib import Path

import orjson
import pytest

from watchdog import audit
from watchdog.audit import AuditError, AuditTrail, head_path, verify
from watchdog.audit.chain import ZERO, ChainCheck, Head, render, sha

KEY = b"k" * 32


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _write(path: Path, n: int, key: bytes | None = None) -> None:
    with AuditTrail(path, fsync=False, key=key) as trail:
        for i in range(n):
            trail.append(orjson.dumps({"alert_id": f"a{i}", "rule": "r"}))


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    audit.add_arguments(parser)
    return audit.run(parser.parse_args(argv))


def test_file_and_head_are_created_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / "audit.jsonl"
        _write(path, 2)
    finally:
        os.umask(old)
    assert _mode(path) == 0o600
    assert _mode(head_path(path)) == 0o600


def test_an_existing_wider_trail_is_narrowed_to_0600(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 1)
    path.chmod(0o644)
    head_path(path).chmod(0o644)
    _write(path, 1)
    assert (_mode(path), _mode(head_path(path))) == (0o600, 0o600)
    assert verify(path).lines == 2


def test_the_head_is_required_unless_waived(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 3)
    head_path(path).unlink()
    result = verify(path)
    assert not result.ok
    assert "no head file" in (result.problem or "")
    assert verify(path, require_head=False).ok
    assert _cli([str(path)]) == 1
    assert "no head file" in capsys.readouterr().out
    assert _cli([str(path), "--no-head"]) == 0
    assert "a truncated tail cannot be detected" in capsys.readouterr().err


def test_a_keyed_chain_needs_its_key(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 3, KEY)
    assert orjson.loads(head_path(path).read_bytes())["mac"] == "hmac-sha256"
    assert verify(path, key=KEY).ok
    no_key = verify(path)
    assert not no_key.ok
    assert "keyed" in (no_key.problem or "")
    wrong = verify(path, key=b"x" * 32)
    assert not wrong.ok
    assert (wrong.problem or "").startswith("line 1: hash does not match")
    _write(path, 1, KEY)  # reopened with the key: the chain continues
    assert verify(path, key=KEY).lines == 4
    with pytest.raises(AuditError, match="keyed"):
        AuditTrail(path, key=None)


def test_a_rewrite_without_the_key_is_detected(tmp_path: Path) -> None:
    """The forger recomputes every hash with plain sha256 and rewrites the head as unkeyed."""
    path = tmp_path / "audit.jsonl"
    _write(path, 3, KEY)
    lines, prev = [], ZERO
    for i in range(3):
        line = render(i + 1, prev, orjson.dumps({"alert_id": f"forged{i}"}))
        lines.append(line)
        prev = sha(line)
    path.write_bytes(b"".join(ln + b"\n" for ln in lines))
    head_path(path).write_bytes(Head(3, lines[-1][-66:-2].decode()).encode())
    assert verify(path).ok  # without the key a full rewrite cannot be told apart...
    result = verify(path, key=KEY)  # ...with it, it can
    assert not result.ok


def test_cli_with_a_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 2, KEY)
    key_file = tmp_path / "audit-key"
    key_file.write_bytes(KEY + b"\n")
    assert _cli([str(path), "--key-file", str(key_file)]) == 0
    assert capsys.readouterr().out == "ok: 2 alerts, chain intact (keyed)\n"
    assert _cli([str(path)]) == 1
    assert "give its key" in capsys.readouterr().out
    assert _cli([str(path), "--key-file", str(tmp_path / "none")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_append_entry_chains_any_object(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditTrail(path, fsync=False) as trail:
        assert trail.append(orjson.dumps({"alert_id": "a1"})) == 1
        assert trail.append_entry({"kind": "exception", "rule": "bulk_export",
                                   "exception": "EX-1"}) == 2
    last = orjson.loads(path.read_bytes().splitlines()[-1])
    assert last["alert"] == {"kind": "exception", "rule": "bulk_export", "exception": "EX-1"}
    assert verify(path).lines == 2


def test_the_chain_check_is_pure() -> None:
    a = render(1, ZERO, b'{"x":1}')
    b = render(2, hashlib.sha256(a).hexdigest(), b'{"x":2}')
    check = ChainCheck()
    assert check.feed(a + b"\n")
    assert check.feed(b + b"\n")
    head = Head(2, b[-66:-2].decode())
    assert check.result(head).ok
    assert not check.result(None).ok
    assert check.result(None, require_head=False).ok
    bad = ChainCheck()
    assert not bad.feed(b + b"\n")
    assert (bad.result(head).problem or "").startswith("line 1: seq is 2")
