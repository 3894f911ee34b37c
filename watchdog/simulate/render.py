"""Building access-event documents: field order, timestamps per dataset, collected_at."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from watchdog.simulate.catalog import DATASETS
from watchdog.simulate.clock import DAY, Stamp

EXPORT_ACTIONS = frozenset({"export", "download", "copy", "print", "transfer"})


class Factory:
    """Makes event dicts. ``event.id`` and ``event.sequence`` are placeholders that the
    stream fills in at emission (planned events get their id up front)."""

    def __init__(self) -> None:
        self.stamps = {d.name: Stamp(utc=d.utc, millis=d.millis) for d in DATASETS}
        self.millis = {d.name: d.millis for d in DATASETS}
        self._collected: dict[int, str] = {}

    def floor(self, dataset: str, ms: int) -> int:
        """The instant the dataset can express (whole seconds for second-precision logs)."""
        return ms if self.millis[dataset] else ms - ms % 1000

    def collected(self, ms: int) -> str:
        """``collected_at`` at day precision (UTC midnight at or before ``ms``)."""
        day = ms // DAY
        s = self._collected.get(day)
        if s is None:
            s = datetime.fromtimestamp(day * DAY / 1000, UTC).strftime("%Y-%m-%dT00:00:00Z")
            self._collected[day] = s
        return s

    def event(self, ms: int, dataset: str, action: str, user: dict[str, Any], *,
              outcome: str = "success", eid: str = "", ip: str | None = None,
              host: str | None = None, data: dict[str, Any] | None = None,
              dest: dict[str, Any] | None = None) -> dict[str, Any]:
        ev: dict[str, Any] = {
            "@timestamp": self.stamps[dataset](ms),
            "event": {"id": eid, "action": action, "outcome": outcome, "dataset": dataset,
                      "sequence": 0},
            "user": user,
        }
        if ip:
            ev["source"] = {"ip": ip}
        if host:
            ev["host"] = {"name": host}
        if data:
            ev["data"] = data
        if dest:
            ev["destination"] = dest
        return ev
