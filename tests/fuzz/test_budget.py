"""The fuzz budget: WATCHDOG_FUZZ_EXAMPLES is split across the targets, nothing more."""

from __future__ import annotations

from pathlib import Path

from tests.fuzz._support import SHARES


def test_the_shares_split_the_whole_budget() -> None:
    assert abs(sum(SHARES.values()) - 1.0) < 0.01
    assert all(0 < share <= 1 for share in SHARES.values())


def test_every_share_belongs_to_a_target() -> None:
    source = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    for target in SHARES:
        assert f'"{target}"' in source, f"no fuzz target uses the share {target!r}"
