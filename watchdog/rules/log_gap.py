"""log_gap: the monitoring itself is blind.

A dataset (``event.dataset``) whose ``event.sequence`` skips numbers is alerted on the first
event after the gap. A dataset silent for longer than ``thresholds.source_silence_minutes`` of
event time while others keep sending is alerted once per silence, at the first event from
another dataset that shows it. ``user_id`` of the alert is the dataset's name. A sequence
that goes backwards is disorder or a restart of the source, not a gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from watchdog.alerts.model import rfc3339
from watchdog.engine.context import Context
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.needs import DATASET


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

    def _silent(self, ctx: Context, current: str, silence: float) -> list[Finding]:
        t = ctx.t
        found: list[Finding] = []
        next_check = float("inf")
        for name, src in self._sources.items():
            if name == current or src.silence_alerted:
                continue
            if t - src.last_t > silence:
                src.silence_alerted = True
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
        self._next_check = next_check
        return found

    def datasets(self) -> int:
        return len(self._sources)
