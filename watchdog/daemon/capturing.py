"""A reorder buffer that also keeps what it released (by a push, an idle partition or a flush),
so that the pipeline releases those records' holds on their partitions' commits in one go."""

from __future__ import annotations

from watchdog.engine.ordering import Released, Reorderer
from watchdog.events import AccessEvent


class CapturingReorderer(Reorderer):
    collected: Released

    def push(self, ev: AccessEvent, t: float, partition: int = 0) -> Released:
        out = Reorderer.push(self, ev, t, partition)
        if out:
            self.collected.extend(out)
        return out

    def idle(self, partition: int) -> Released:
        out = Reorderer.idle(self, partition)
        self.collected.extend(out)
        return out

    def flush(self) -> Released:
        out = Reorderer.flush(self)
        self.collected.extend(out)
        return out

    def flush_present(self) -> Released:
        out = Reorderer.flush_present(self)
        self.collected.extend(out)
        return out
