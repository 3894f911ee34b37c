"""The featurizer's saved state (:mod:`watchdog.anomaly.stage_state`): its account rows (the
arrays: :func:`~watchdog.anomaly.layout.rows_state`), which account each row is, the events
taken apart and the rows reduced but not committed yet, its clocks and its peers' baselines.
A mixin of :class:`~watchdog.anomaly.featurizer.Featurizer` (kept apart for the size of that
module): a field added there is saved here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from watchdog.anomaly.intake import ROW, Kept
from watchdog.anomaly.layout import load_rows, rows_state
from watchdog.anomaly.peers import PeerBaselines
from watchdog.anomaly.reduction import Rows
from watchdog.anomaly.stage_state import StateError, integer, number
from watchdog.events import AccessEvent
from watchdog.policy.model import Policy


class SavedFeaturizer:
    """:meth:`state` and :meth:`load_state` of the featurizer's fields."""

    peers: PeerBaselines
    rows: dict[str, int]
    evicted: int
    _policy: Policy
    _row_user: list[str | None]
    _free: list[int]
    _cap: int
    _bucket: int
    _end: float
    _committed_open: int
    _last_sweep: int
    _last_evict_hour: int
    _kept: Kept
    _buf: list[tuple[AccessEvent, float]]
    _runs: list[tuple[int, int]]
    _parts: list[Rows]
    _take_apart: Callable[[], None]

    def state(self) -> dict[str, Any]:
        """Everything learnt and pending as plain data (the events not taken apart yet are
        taken apart first: what they become does not depend on when)."""
        self._take_apart()
        return {"users": self._row_user, "free": self._free, "rows": rows_state(self),
                "clock": [self._bucket, self._end, self._committed_open, self._last_sweep,
                          self._last_evict_hour, self.evicted], "kept": self._kept.state(),
                "runs": self._runs, "parts": [p.state() for p in self._parts],
                "peers": self.peers.state()}

    def load_state(self, doc: dict[str, Any]) -> None:
        """:meth:`state`'s document back (:class:`StateError` if it does not fit; what is
        checked is checked before anything changes)."""
        users: list[str | None] = doc["users"]
        if not isinstance(users, list) or not set(map(type, users)) <= {str, type(None)}:
            raise StateError("accounts: not a list of ids")
        named = dict(zip(users, range(len(users)), strict=True))
        named.pop(None, None)  # (free rows)
        cap, rows = len(users), cast(dict[str, int], named)
        free = [integer(r, "free rows") for r in doc["free"]]
        if len(rows) != cap - len(free) or sorted(free) != [
                r for r, u in enumerate(users) if u is None]:
            raise StateError("accounts: free rows do not fit")
        arrays = load_rows(doc["rows"], cap)
        bucket, end, committed, sweep_b, evict_h, evicted = doc["clock"]
        clock = (integer(bucket, "clock"), number(end, "clock"), integer(committed, "clock"),
                 integer(sweep_b, "clock"), integer(evict_h, "clock"), integer(evicted, "clock"))
        kept = Kept(self._policy, rows)
        kept.load_state(doc["kept"])
        runs = [(integer(i, "runs"), integer(b, "runs")) for i, b in doc["runs"]]
        parts = [Rows.from_state(p) for p in doc["parts"]]
        if (any(len(p) and (p.rows.min() < 0 or p.rows.max() >= cap) for p in parts)
                or (len(kept) and kept.numbers()[:, ROW].max() >= cap)):
            raise StateError("pending rows: beyond the accounts")
        self.peers.load_state(doc["peers"])  # (the last that may refuse)
        self._row_user, self._free, self._cap = users, free, cap
        self.rows.clear()
        self.rows.update(rows)  # (in place: the intake's parts hold the dict)
        for name, a in arrays.items():
            setattr(self, name, a)
        (self._bucket, self._end, self._committed_open, self._last_sweep,
         self._last_evict_hour, self.evicted) = clock
        kept.rows = self.rows
        self._kept, self._buf, self._runs, self._parts = kept, [], runs, parts
