"""The alert ids this process has sent: an alert raised again (a redelivery, a re-read, the
whole-stream reader and the main pipeline judging the same dataset) is not sent twice."""

from __future__ import annotations


class AlertIds:
    """A bounded set of alert ids already sent (oldest forgotten first)."""

    __slots__ = ("_ids", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: dict[str, None] = {}

    def seen(self, alert_id: str) -> bool:
        """True if already sent; otherwise remember it and return False."""
        ids = self._ids
        if alert_id in ids:
            return True
        ids[alert_id] = None
        if len(ids) > self.size:
            del ids[next(iter(ids))]
        return False
