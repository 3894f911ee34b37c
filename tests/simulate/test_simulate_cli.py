"""``watchdog simulate`` as a subcommand: add_arguments() and run()."""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import orjson
import pytest

from watchdog.simulate import add_arguments, run


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="watchdog simulate")
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_run_writes_everything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = run(_args("--out", str(out), "--accounts", "100", "--days", "2", "--start",
                     "2026-11-02T00:00:00+09:00", "--violations-per-rule", "1", "--gzip",
                     "--seed", "5"))
    assert code == 0
    names = {p.name for p in out.iterdir()}
    assert names == {"events.jsonl.gz", "directory.jsonl", "subjects.jsonl", "policy.yaml",
                     "truth.jsonl", "accounts.jsonl"}
    events = gzip.decompress((out / "events.jsonl.gz").read_bytes()).splitlines()
    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 1
    assert f"{len(events):,} events" in summary[0]
    first = orjson.loads(events[0])
    assert first["@timestamp"].startswith("2026-11-0")
    truth = [orjson.loads(x) for x in (out / "truth.jsonl").read_bytes().splitlines()]
    expected = [t for t in truth if t.get("expected", True)]
    assert f"{len(expected)} expected alerts" in summary[0]
    assert f"{len(truth) - len(expected)} cases that must raise none" in summary[0]


def test_start_without_offset_is_tokyo() -> None:
    args = _args("--out", "x", "--start", "2026-12-01")
    assert args.start.isoformat() == "2026-12-01T00:00:00+09:00"


def test_bad_config_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(_args("--out", str(tmp_path), "--accounts", "3")) == 2
    assert "accounts" in capsys.readouterr().err


def test_bad_start_is_rejected() -> None:
    with pytest.raises(SystemExit):
        _args("--out", "x", "--start", "yesterday")
