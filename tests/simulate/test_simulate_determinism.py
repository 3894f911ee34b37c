"""Same seed, same bytes; another seed, another organisation."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

from watchdog.simulate import SimConfig, build_world, write_world

CFG = SimConfig(accounts=100, days=2, seed=11)


def _digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    write_world(build_world(CFG), tmp_path / "a")
    write_world(build_world(CFG), tmp_path / "b")
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert set(a) == {"events.jsonl", "directory.jsonl", "subjects.jsonl", "policy.yaml",
                      "truth.jsonl", "accounts.jsonl"}
    assert a == b


def test_gzip_is_reproducible(tmp_path: Path) -> None:
    paths = write_world(build_world(CFG), tmp_path / "a", gzip=True)
    write_world(build_world(CFG), tmp_path / "b", gzip=True)
    write_world(build_world(CFG), tmp_path / "plain")
    assert paths["events"].name == "events.jsonl.gz"
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert gzip.decompress(paths["events"].read_bytes()) == \
        (tmp_path / "plain" / "events.jsonl").read_bytes()


def test_events_replay_identically() -> None:
    w = build_world(CFG)
    assert list(w.events()) == list(w.events())


def test_another_seed_differs(tmp_path: Path) -> None:
    write_world(build_world(CFG), tmp_path / "a")
    write_world(build_world(SimConfig(accounts=100, days=2, seed=12)), tmp_path / "b")
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert a["events.jsonl"] != b["events.jsonl"]
    assert a["truth.jsonl"] != b["truth.jsonl"]
    assert a["policy.yaml"] == b["policy.yaml"]
