"""``watchdog replay``: the engine over files, no servers.

Directory and subject records are loaded first (they are small, and their state is kept on
event time, so loading them up front is the same as merging them in event-time order); events
stream through the Detector in bounded memory.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import msgspec

from watchdog import gc_policy
from watchdog.alerts.model import Alert, encode_alert, now_rfc3339
from watchdog.alerts.pseudonym import DEMO_KEY, Pseudonymizer, key_from_env
from watchdog.decode import Decoder, Rejection
from watchdog.engine.detector import Detector, Stage
from watchdog.engine.engine import Engine
from watchdog.engine.faults import REASON, fault_site
from watchdog.engine.ordering import Reorderer
from watchdog.events import (
    AccessEvent,
    AccountRecord,
    DirectoryRecord,
    SubjectRecord,
    check_times,
    effective_as_written,
)
from watchdog.files.jsonl import RejectedWriter, lines, read_records, read_records_raw
from watchdog.policy import Policy
from watchdog.rules import default_rules

REPLAY_RELEASE_STEP = 60.0  # seconds of event time per batch released to the rules


@dataclass
class ReplayResult:
    events: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    alerts: Counter[tuple[str, str]] = field(default_factory=Counter)
    duplicates: int = 0
    conflicts: int = 0  # a known event.id with different content: processed, not dropped
    excused: Counter[str] = field(default_factory=Counter)  # by rule: the policy's exceptions
    late: int = 0
    seconds: float = 0.0
    rejected_path: Path | None = None

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def rejected_path_for(out: str) -> Path:
    if out == "-":
        return Path("replay.rejected.jsonl")
    p = Path(out)
    name = p.name[: -len(".jsonl")] if p.name.endswith(".jsonl") else p.name
    return p.with_name(name + ".rejected.jsonl")


def build_engine(policy: Policy, key: bytes | None = None) -> Engine:
    if key is None:
        key = key_from_env()
    if key is None:
        print("watchdog: warning: no WATCHDOG_PSEUDONYM_KEY set; subject pseudonyms use the "
              "public demo key", file=sys.stderr)
        key = DEMO_KEY
    return Engine(policy, Pseudonymizer(key), default_rules())


def replay(
    events: str,
    out: BinaryIO,
    engine: Engine,
    *,
    directory: str | None = None,
    subjects: str | None = None,
    accounts: str | None = None,
    stages: Sequence[Stage] | None = None,
    rejected: RejectedWriter,
    progress: Callable[[int], None] | None = None,
    freeze_gc: bool = False,
) -> ReplayResult:
    """Run the engine over files; every alert is written to ``out`` as one JSON line.

    ``freeze_gc`` (the one-shot CLI process): once the directory and subjects are loaded,
    :func:`watchdog.gc_policy.settle` (freeze them; rarer full passes of the collector).
    """
    result = ResultCounter(ReplayResult(), rejected)
    started = time.perf_counter()
    # a valid record whose application raises (a bug) is said and skipped, as live
    if directory:
        for drec, raw in read_records_raw(
                directory, Decoder(DirectoryRecord, check=check_times), result):
            with result.skipping(directory, "a directory record"):
                engine.apply_directory(drec, effective_as_written(raw))
    if subjects:
        for srec, raw in read_records_raw(
                subjects, Decoder(SubjectRecord, check=check_times), result):
            with result.skipping(subjects, "a subject record"):
                engine.apply_subject(srec, effective_as_written(raw))
    if accounts:
        for arec in read_records(accounts, Decoder(AccountRecord, check=check_times), result):
            with result.skipping(accounts, "an account record"):
                engine.apply_account(arec)
    if freeze_gc:
        gc_policy.settle()
    detector = Detector(engine, Reorderer(release_step=REPLAY_RELEASE_STEP), stages or [])
    detector.on_fault = result.failed  # one event that raises is said and skipped, as live
    detector.on_stage_fault = result.stage_failed
    decoder = Decoder(AccessEvent, check=check_times)
    write = out.write
    res = result.result

    def emit(alerts: Sequence[Alert]) -> None:
        stamp = now_rfc3339()
        for a in alerts:
            res.alerts[(a.rule, a.severity)] += 1
            write(encode_alert(msgspec.structs.replace(a, detected_at=stamp)) + b"\n")

    push, decode = detector.push, decoder.decode
    numbered = lines(events) if progress is None else _counted(lines(events), progress)
    accepted = 0  # counted in a local: this loop runs for every event
    for n, raw in numbered:
        ev = decode(raw)
        if isinstance(ev, Rejection):
            result.write(events, n, ev)
            continue
        accepted += 1
        found = push(ev, ev.timestamp.timestamp()).alerts
        if found:
            emit(found)
    res.events += accepted
    emit(detector.flush())
    res.excused.update(engine.suppressed)
    res.duplicates = detector.order.stats.duplicates
    res.conflicts = detector.order.stats.conflicts
    res.late = detector.order.stats.late
    res.seconds = time.perf_counter() - started
    res.rejected_path = rejected.path if rejected.count else None
    return res


def _counted(
    it: Iterator[tuple[int, bytes]], progress: Callable[[int], None]
) -> Iterator[tuple[int, bytes]]:
    pending = 0
    for item in it:
        pending += len(item[1]) + 1
        if pending >= 1 << 20:
            progress(pending)
            pending = 0
        yield item
    progress(pending)


class ResultCounter(RejectedWriter):
    """A RejectedWriter that also counts rejections by reason into the result."""

    def __init__(self, result: ReplayResult, inner: RejectedWriter) -> None:
        self.result = result
        self._inner = inner

    LOG_FIRST = 20  # one line each for the first ones; the summary counts the rest

    def write(self, source: str, line: int, rej: Rejection) -> None:
        self.result.invalid[rej.reason] += 1
        total = sum(self.result.invalid.values())
        if total <= self.LOG_FIRST:
            print(f"watchdog: rejected {source}:{line}: {rej.reason}: {rej.detail}",
                  file=sys.stderr)
        elif total == self.LOG_FIRST + 1:
            print("watchdog: further rejections are counted, not printed; all are in "
                  f"{self._inner.path}", file=sys.stderr)
        self._inner.write(source, line, rej)

    def failed(self, ev: AccessEvent, err: Exception) -> None:
        """A valid event whose processing raised (:mod:`watchdog.engine.faults`)."""
        self._failed(f"event {ev.event.id}", err)

    def stage_failed(self, stage: str, events: int, err: Exception) -> None:
        """A stage's call over a released list raised: its events skipped by that stage."""
        self._failed(f"{stage}: {events} events", err)

    @contextmanager
    def skipping(self, source: str, what: str) -> Iterator[None]:
        """A state record applied in the block; if that raises, it is said and skipped."""
        try:
            yield
        except Exception as err:
            self._failed(f"{source}: {what}", err)

    def _failed(self, what: str, err: Exception) -> None:
        self.result.invalid[REASON] += 1
        if self.result.invalid[REASON] <= self.LOG_FIRST:
            print(f"watchdog: {what}: processing failed ({fault_site(err)}); skipped, "
                  "alerts may be missing (a bug: please report it)", file=sys.stderr)

    def close(self) -> None:
        self._inner.close()


def open_output(out: str, stack: ExitStack) -> BinaryIO:
    if out == "-":
        return sys.stdout.buffer
    return stack.enter_context(Path(out).open("wb"))
