"""brute_force: at least ``thresholds.failed_logins`` failed logins of one account in 10 min.

One alert per crossing: a continuing attack does not page again until the count has fallen
below the threshold and risen again.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from watchdog.engine.context import Context
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.needs import NOTHING

WINDOW = 600.0
MAX_EVENT_IDS = 20


class BruteForce(RuleBase):
    id: ClassVar[str] = "brute_force"
    severity: ClassVar[Severity] = "medium"
    commitment: ClassVar[str] = "access control prevents unauthorised access to accounts"
    actions: ClassVar[frozenset[str] | None] = frozenset({"login"})
    needs: ClassVar[int] = NOTHING
    ordered: ClassVar[bool] = True
    windowed: ClassVar[bool] = True

    def __init__(self) -> None:
        # account -> (failure times and ids in the window, above-threshold flag)
        self._fails: dict[str, tuple[deque[tuple[float, str]], list[bool]]] = {}

    def check(self, ctx: Context) -> list[Finding] | None:
        if ctx.ev.event.outcome != "failure":
            return None
        t = ctx.t
        entry = self._fails.get(ctx.user_id)
        if entry is None:
            entry = self._fails[ctx.user_id] = (deque(), [False])
        window, above = entry
        while window and window[0][0] <= t - WINDOW:
            window.popleft()
        window.append((t, ctx.event_id))
        limit = ctx.policy.thresholds.failed_logins
        now_above = len(window) >= limit
        crossed = now_above and not above[0]
        above[0] = now_above
        if not crossed:
            return None
        ids = tuple(e for _, e in list(window)[-MAX_EVENT_IDS:])
        src = ctx.ev.source.ip if ctx.ev.source and ctx.ev.source.ip else None
        where = f", the last from {src}" if src else ""
        return [Finding(self.id, f"Account {ctx.user_id} had {len(window)} failed logins within "
                        f"10 minutes (threshold {limit}){where}", ids)]

    def evict(self, before: float) -> int:
        idle = [u for u, (w, _) in self._fails.items() if not w or w[-1][0] <= before - WINDOW]
        for u in idle:
            del self._fails[u]
        return len(idle)

    def tracked(self) -> int:
        return len(self._fails)
