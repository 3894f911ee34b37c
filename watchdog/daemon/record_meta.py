"""What the pipeline remembers of a record while its event or alerts are in flight."""

from __future__ import annotations

from collections.abc import Sequence

from watchdog.daemon.offsets import PartitionBook

# (book or None when untracked, offset, monotonic consume time, re-read to rebuild windows)
Meta = tuple[PartitionBook | None, int, float, bool]


def lowest(event_ids: Sequence[str], m: Meta, rel: dict[str, Meta],
           meta: dict[str, Meta]) -> int:
    """The lowest offset, in the completing record's book, of the alert's evidence still
    known: held until the alert is delivered, so that an MQTT message (acknowledged: gone for
    good) is not released while the alert it is evidence of could still be lost."""
    low = m[1]
    for eid in event_ids:
        o = rel.get(eid) or meta.get(eid)
        if o is not None and o[0] is m[0] and o[1] < low:
            low = o[1]
    return low
