"""brute_force: at least ``thresholds.failed_logins`` failed logins of one account in 10 min.

One alert per crossing: a continuing attack does not page again until the count has fallen
below the threshold and risen again. Accounts are kept bounded (:mod:`watchdog.rules.bounded`):
one without a failure in the window is forgotten.
"""

from __future__ import annotations

from typing import Any, ClassVar

from watchdog.engine.context import Context
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.bounded import Bounded
from watchdog.rules.needs import NOTHING

WINDOW = 600.0
MAX_EVENT_IDS = 20

# (failure times and ids in the window, above-threshold flag). A list, not a deque: a deque
# takes 600 bytes however short, and one is kept per account
_Fails = tuple[list[tuple[float, str]], list[bool]]


def _latest(entry: _Fails) -> float:
    window = entry[0]
    return window[-1][0] if window else float("-inf")


class BruteForce(RuleBase):
    id: ClassVar[str] = "brute_force"
    severity: ClassVar[Severity] = "medium"
    commitment: ClassVar[str] = "access control prevents unauthorised access to accounts"
    actions: ClassVar[frozenset[str] | None] = frozenset({"login"})
    needs: ClassVar[int] = NOTHING
    ordered: ClassVar[bool] = True
    windowed: ClassVar[bool] = True

    def __init__(self) -> None:
        self.state: Bounded[str, _Fails] = Bounded(_latest)  # account -> its failures

    def check(self, ctx: Context) -> list[Finding] | None:
        if ctx.ev.event.outcome != "failure":
            return None
        t = ctx.t
        state = self.state
        if t >= state.next_sweep:
            state.sweep(t, t - WINDOW)
        fails = state.table
        entry = fails.get(ctx.user_id)
        if entry is None:
            state.make_room()
            entry = fails[ctx.user_id] = ([], [False])
        window, above = entry
        cut = t - WINDOW
        if window and window[0][0] <= cut:
            i = 1
            while i < len(window) and window[i][0] <= cut:
                i += 1
            del window[:i]
        if not window:  # fallen to nothing: as if new (so forgetting the account changes nothing)
            above[0] = False
        window.append((t, ctx.event_id))
        limit = ctx.policy.thresholds.failed_logins
        now_above = len(window) >= limit
        crossed = now_above and not above[0]
        above[0] = now_above
        if not crossed:
            return None
        ids = tuple(e for _, e in window[-MAX_EVENT_IDS:])
        src = ctx.ev.source.ip if ctx.ev.source and ctx.ev.source.ip else None
        where = f", the last from {src}" if src else ""
        return [Finding(self.id, f"Account {ctx.user_id} had {len(window)} failed logins within "
                        f"10 minutes (threshold {limit}){where}", ids)]

    def evict(self, before: float) -> int:
        return self.state.forget(before - WINDOW)

    def snapshot(self) -> Any:
        return self.state.snapshot()

    def restore(self, snap: Any) -> None:
        def entry(v: Any) -> _Fails:
            return [(t, eid) for t, eid in v[0]], [bool(v[1][0])]

        self.state.restore(snap, entry)

    def forgetting(self) -> tuple[int, int]:
        return self.state.forgotten, self.state.dropped

    def tracked(self) -> int:
        return len(self.state)
