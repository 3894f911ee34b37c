"""Per-key state of a windowed rule, bounded: its keys (accounts, resource families) come from
events, so a burst of new ids must not grow memory without limit.

Both ways of forgetting run on event time, inside the rule, and depend only on the events the
rule has seen, in order: replay and the daemon keep and drop the same keys.

- A sweep, at most once per :data:`SWEEP_EVERY` seconds of event time, forgets the keys idle
  past the rule's window (``forgotten``): the rule would find nothing with them, so no alert
  changes.
- A cap: a new key when :data:`MAX_KEYS` are kept drops first the eighth idle longest
  (``dropped``: a window cut short, an alert that may be missed; counted, and a metric). At once,
  so that a burst of new ids sorts once per ``MAX_KEYS / 8`` of them, not per id.

Memory: at most ``MAX_KEYS`` accounts in brute_force and in bulk_export and
``reidentification.MAX_PAIRS`` (200,000) (account, family) pairs. Measured per key with one
event in its window (tracemalloc): 310, 460 and 210 bytes, plus the account and event ids they
keep (about 120 bytes): about 170 MB at the caps together. What an account's window holds
beyond that grows with its events within the window, not with the number of ids.
``bench/bench_accounts.py``: 200,000 new accounts within 20 minutes, peak RSS +582 MB before
the caps, +314 MB with them (the reorder buffer's remembered ids included); the same spread
over 10 days, +40 MB before, +2 MB with the sweep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

MAX_KEYS = 100_000
SWEEP_EVERY = 3600.0

K = TypeVar("K")
V = TypeVar("V")


class Bounded(Generic[K, V]):
    """A dict of per-key state (``table``) with a cap and an event-time sweep. ``latest(v)``:
    the latest event time of a key's state (-inf when it holds nothing)."""

    __slots__ = ("cap", "dropped", "forgotten", "latest", "next_sweep", "table")

    def __init__(self, latest: Callable[[V], float], cap: int = MAX_KEYS) -> None:
        self.table: dict[K, V] = {}
        self.latest = latest
        self.cap = cap
        self.next_sweep = float("-inf")  # the event time of the next sweep
        self.forgotten = 0  # keys idle past the window, swept
        self.dropped = 0  # keys dropped past the cap

    def sweep(self, t: float, idle_before: float) -> None:
        """Forget keys whose latest time is at or before ``idle_before``; the next sweep is
        due :data:`SWEEP_EVERY` after ``t``. (The caller checks ``t >= next_sweep``: one
        comparison per event.)"""
        self.next_sweep = t + SWEEP_EVERY
        self.forgotten += self.forget(idle_before)

    def forget(self, before: float) -> int:
        latest, table = self.latest, self.table
        idle = [k for k, v in table.items() if latest(v) <= before]
        for k in idle:
            del table[k]
        return len(idle)

    def make_room(self) -> None:
        """Before adding a key: past the cap, the eighth idle longest are dropped."""
        table = self.table
        if len(table) < self.cap:
            return
        latest = self.latest
        by_age = sorted(table, key=lambda k: latest(table[k]))
        gone = by_age[:max(1, len(by_age) // 8)]
        for k in gone:
            del table[k]
        self.dropped += len(gone)

    def __len__(self) -> int:
        return len(self.table)

    def snapshot(self) -> list[Any]:
        """For a checkpoint: the (key, value) pairs themselves, in the table's order (the cap
        drops by age, ties in that order); encoded before the next event changes them."""
        return [self.next_sweep, self.forgotten, self.dropped, list(self.table.items())]

    def restore(self, snap: Any, value: Callable[[Any], V],
                key: Callable[[Any], K] = lambda k: k) -> None:
        self.next_sweep, self.forgotten, self.dropped, items = snap
        self.table.clear()  # (the same dict: a rule may keep a reference to it)
        for k, v in items:
            self.table[key(k)] = value(v)
