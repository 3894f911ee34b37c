"""gc_policy.settle: what is alive is frozen, and full passes are spaced out."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from watchdog import gc_policy


@pytest.fixture
def restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    gc.unfreeze()  # an earlier in-process replay may have frozen objects: count from zero
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settle_freezes_the_live_state_and_spaces_full_passes(restored: None) -> None:
    state = [{"window": i} for i in range(1000)]  # long-lived containers, alive at settle
    young, middle, _ = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    gc_policy.settle()
    assert gc.get_freeze_count() >= len(state)
    assert gc.get_threshold() == (young, middle, gc_policy.FULL_PASS_EVERY)
    assert gc_policy.FULL_PASS_EVERY > 10  # CPython's default: what this is about
