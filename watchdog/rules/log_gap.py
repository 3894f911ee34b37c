"""log_gap: the monitoring itself is blind.

A dataset (``event.dataset``) whose ``event.sequence`` skips numbers is alerted on the first
event after the gap. A dataset silent for longer than ``thresholds.source_silence_minutes`` of
event time while others keep sending is alerted once per silence, at the first event from
another dataset that shows it. ``user_id`` of the alert is the dataset's name. A sequence
that goes backwards is disorder or a restart of the source, not a gap.

Datasets come from the events, so what is kept of them is bounded: at most
:data:`MAX_DATASETS` are tracked (past it, the longest silent are dropped, counted in
``dropped``); one already alerted silent is forgotten after :data:`FORGET_AFTER` more seconds
of silence (``forgotten``); and at most :data:`SILENCES_PER_MINUTE` silence alerts are raised
per minute of event time, the rest counted in ``suppressed`` (200,000 datasets, then one event,
raised 200,001 alerts). All on event time: replay and the daemon keep and drop the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from watchdog.alerts.model import rfc3339
from watchdog.engine.context import Context
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.needs import DATASET

MAX_DATASETS = 10_000
FORGET_AFTER = 7 * 86400.0
SILENCES_PER_MINUTE = 100


@dataclass(slots=True)
class _Source:
    last_t: float
    last_seq: int | None = None
    silence_alerted: bool = False


class LogGap(RuleBase):
    id: ClassVar[str] = "log_gap"
    severity: ClassVar[Severity] = "high"
    commitment: ClassVar[str] = "access to personal data is logged and the logs are monitored"
    actions: ClassVar[frozenset[str] | None] = None
    needs: ClassVar[int] = DATASET
    ordered: ClassVar[bool] = True

    def __init__(self) -> None:
        self._sources: dict[str, _Source] = {}
        self._next_check = float("inf")  # no dataset can be silent before this event time
        self.dropped = 0  # datasets dropped past MAX_DATASETS
        self.forgotten = 0  # alerted silent, then silent FORGET_AFTER more
        self.suppressed = 0  # silence alerts past SILENCES_PER_MINUTE
        self._minute = float("-inf")  # the event-time minute of the budget
        self._budget = SILENCES_PER_MINUTE

    def check(self, ctx: Context) -> list[Finding] | None:
        e = ctx.ev.event
        dataset = e.dataset
        if not dataset:
            return None
        t = ctx.t
        silence = ctx.policy.thresholds.source_silence_minutes * 60.0
        # every event has a dataset: no list is made unless something is found
        out = self._silent(ctx, dataset, silence) if t > self._next_check else None
        src = self._sources.get(dataset)
        seq = e.sequence if isinstance(e.sequence, int) else None
        if src is None:
            if len(self._sources) >= MAX_DATASETS:
                self._drop_oldest()
            src = self._sources[dataset] = _Source(t, seq)
        else:
            last_seq = src.last_seq
            if seq is not None and last_seq is not None and seq > last_seq + 1:
                missing = seq - last_seq - 1
                gap = Finding(
                    self.id, f"Dataset {dataset} skipped {missing} sequence number(s) "
                    f"({last_seq + 1}..{seq - 1}): events are missing from its log "
                    f"(user_id names the dataset: a log_gap alert is about a log source)",
                    (e.id,), key=f"seq:{last_seq + 1}-{seq - 1}", user_id=dataset,
                    labels={"kind": "sequence_gap"})
                if out is None:
                    out = []
                out.append(gap)
            if seq is not None and (last_seq is None or seq > last_seq):
                src.last_seq = seq
            if t > src.last_t:
                src.last_t = t
                src.silence_alerted = False
        next_check = src.last_t + silence
        if next_check < self._next_check:
            self._next_check = next_check
        return out or None

    def _drop_oldest(self) -> None:
        """Past the cap: the eighth of the datasets silent longest are dropped (at once, so
        that a burst of new ids sorts once per thousand of them, not per id)."""
        by_age = sorted(self._sources.items(), key=lambda kv: kv[1].last_t)
        gone = by_age[:max(1, len(by_age) // 8)]
        for name, _ in gone:
            del self._sources[name]
        self.dropped += len(gone)

    def _silent(self, ctx: Context, current: str, silence: float) -> list[Finding]:
        t = ctx.t
        found: list[Finding] = []
        next_check = float("inf")
        minute = t // 60
        if minute != self._minute:
            self._minute, self._budget = minute, SILENCES_PER_MINUTE
        forget: list[str] = []
        for name, src in self._sources.items():
            if name == current:
                continue
            if src.silence_alerted:
                if t - src.last_t > silence + FORGET_AFTER:
                    forget.append(name)
                continue
            if t - src.last_t > silence:
                src.silence_alerted = True
                if self._budget <= 0:
                    self.suppressed += 1
                    continue
                self._budget -= 1
                minutes = (t - src.last_t) / 60
                found.append(Finding(
                    self.id, f"Dataset {name} has sent nothing for {minutes:.0f} minutes of "
                    f"event time (last event {rfc3339(src.last_t)}) while {current} keeps "
                    "sending: its access log may be lost (user_id names the dataset: a log_gap "
                    "alert is about a log source)", (ctx.event_id,),
                    key=f"silence:{name}:{src.last_t}", user_id=name,
                    labels={"kind": "silence", "dataset": name}))
            else:
                next_check = min(next_check, src.last_t + silence)
        for name in forget:
            del self._sources[name]
        self.forgotten += len(forget)
        self._next_check = next_check
        return found

    def snapshot(self) -> Any:
        return [self._sources, self._next_check, self.dropped, self.forgotten, self.suppressed,
                self._minute, self._budget]

    def restore(self, snap: Any) -> None:
        sources, self._next_check, self.dropped, self.forgotten, self.suppressed, \
            self._minute, self._budget = snap
        self._sources = {k: _Source(**v) for k, v in sources.items()}

    def datasets(self) -> int:
        return len(self._sources)

    def tracked(self) -> int:
        return len(self._sources)

    def forgetting(self) -> tuple[int, int]:
        return self.forgotten, self.dropped
