"""Retention: whole day partitions older than ``retention_days`` are dropped, and the drop is
recorded in the manifest (which segments, why) before any file is deleted, so that ``verify``
tells a retention drop from a deletion.

"Older" is judged on event time, as everything in the watchdog: against the latest event the
archive holds, not the wall clock (a restored or lagging archive is not emptied by a clock).
A day is dropped when all of it is more than ``retention_days`` days before that event. Only
access events and alerts are dropped (see :data:`RETAINED`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from watchdog.archive import checkpoint
from watchdog.archive import manifest as mf
from watchdog.archive.layout import ALERTS, EVENTS
from watchdog.archive.store import Store
from watchdog.policy import Policy

# Records (directory, register, accounts) are the state at any time: an employee hired ten
# years ago is still active today, and her record is dated then. They are small and are kept;
# retention drops access events and alerts.
RETAINED = (EVENTS, ALERTS)


def default_retention_days(policy: Policy) -> int | None:
    """The longest category retention of the policy (None when it sets none)."""
    values = list(policy.retention_days.values())
    return max(values) if values else None


def expired_days(c: mf.Contents, retention_days: int) -> list[tuple[str, str]]:
    """(dataset, day) whose every instant is older than the retention."""
    events = c.of(EVENTS)
    if not events:
        return []
    latest = max(datetime.fromisoformat(s.last) for s in events)
    cutoff = (latest - timedelta(days=retention_days)).astimezone(UTC)
    # day D ends at D+1 00:00; it is wholly older when that end is at or before the cutoff
    last_whole = (cutoff - timedelta(days=1)).strftime("%Y-%m-%d")
    return sorted({(s.dataset, s.day) for s in c.segments.values()
                   if s.dataset in RETAINED and s.day <= last_whole})


def prune(store: Store, writer: str | mf.ManifestWriter, retention_days: int) -> list[str]:
    """Drop expired days (recorded in ``writer``'s chain); returns ``dataset/day`` of each."""
    if retention_days <= 0:
        raise ValueError("retention_days must be positive")
    c = checkpoint.contents(store)
    days = expired_days(c, retention_days)
    if not days:
        return []
    wanted = set(days)
    segs = [s for s in c.segments.values() if (s.dataset, s.day) in wanted]
    chain = writer if isinstance(writer, mf.ManifestWriter) else mf.ManifestWriter(store, writer)
    chain.append(
        "drop", segments=[s.as_dict() for s in segs],
        reason=f"retention: days wholly older than {retention_days} days before the latest "
               "archived event")
    for s in segs:
        if store.exists(s.path):
            store.delete(s.path)
    return [f"{ds}/{day}" for ds, day in days]
