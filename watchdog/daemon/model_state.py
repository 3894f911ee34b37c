"""The anomaly model's learnt state across restarts (Kafka sources; MQTT sources:
:mod:`.model_state_mqtt`, the same file and saves, restored at the start; both in one
instance: :mod:`.model_state_dual`).

The anomaly stage learns as it goes: each account's own baselines, its usual working day (the
day scale gives no evidence until it has learnt several days), the peers, the accumulated risk
that decays over days. Without this module all of it lives in memory and every restart, a
deploy or a crash, starts afresh: days without day-scale evidence, a leaver's risk back to 0.

**When**: every ``model_state.every_seconds`` and at shutdown, after the last flush (which then
drains the stages rather than closing their open windows: :attr:`Pipeline.stages_go_on`) and
the sinks' drain. The state is captured on the event loop (the pipeline waits;
``watchdog_model_state_capture_seconds``) and written beside it. A save is deferred (and tried
again every second until the next period) while records re-read after an assignment still wait
in the reorder buffer (their partition's offsets do not say which the stage holds), and while
an alert waits for a sink: the state would hold its events, and after a crash the stage would
drop them when they are read again, and never raise the alert again (at least once, for
anomaly alerts too).

**What makes it exact**: the state holds exactly the events released to the stage, and per
partition ``resume``, the lowest offset whose event it does not hold (:meth:`Pipeline.unreleased`).
At the next start, at the first assignment, the stage is restored and each partition it names
is read again from ``resume`` (or from where the windows' rebuild starts, if earlier). Records
below the committed offset are re-read records as after any restart (windows only, their alerts
sent before and suppressed); the stage drops the events it holds (its frontier: event time, and
the ids at the last time). So the stage sees every event once, in event-time order, as in a
replay, and raises the same alerts. A crash loses nothing but time: the records since the last
save are read again.

**Started afresh instead** (``watchdog_model_state_restores_total{result}``, one log line): no
file (``none``); a file that cannot be used, moved aside to ``<path>.unreadable`` (``unreadable``:
truncated, altered, another format, a model of another feature layout); a state of another
topic or consumer group, one of a partition without a committed offset (a new cluster, a
recreated topic: nothing places the state in the log), or one whose ``resume`` lies more than
``model_state.max_reread_records`` before a committed offset (``stale``: an old file, whose
re-reading would take longer than learning afresh is worth).

**Scale-out**: the file is this instance's, and the partitions follow it. At every join this
instance tells the group which partitions its state holds and from which offset it has learnt
them (:meth:`claims`: the saved file's before the first assignment, then the partitions it
reads, each with its ``since``), and the group's assignment gives each partition back to the
claimant with the longest history (:mod:`.sources.kafka_assignor`): a restarted instance gets
its own partitions back from the one that took them over meanwhile. A partition that moves
all the same (scale-out, an instance gone for good) is learnt afresh by its new owner; its
accounts' state stays unused where it was until the idle accounts are forgotten (two weeks of
event time).

The file: ``WDMSTA`` and a format version (8 bytes), the SHA-256 of the header's length and the
header (32), the header's length (8), the header (msgpack: topic, group, time, offsets), then the
stage's own bytes, which carry their own format version and SHA-256, checked by the stage's
restore (:mod:`watchdog.anomaly.stage_state`); no pickle. Written in parts (no joined copy of
a large state) to a temporary file, fsync'd, renamed, mode 0600: it holds account ids, as the
stage's rows do.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import msgspec

from watchdog.daemon.checkpoint import write_atomically
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.settings import ModelState
from watchdog.daemon.sources.kafka_assignor import Claim

MAGIC = b"WDMSTA\x00\x01"  # the format's name and version (1)
RETRY_SECONDS = 1.0  # a deferred save is tried again this often, until the next period
_DIGEST = 32


class ModelStateError(ValueError):
    """A state file that cannot be used; ``str()`` is one line, with no account ids."""


@runtime_checkable
class KeptStage(Protocol):
    """What this module needs of the anomaly stage (watchdog.anomaly.stage.AnomalyStage)."""

    @property
    def frontier(self) -> float: ...

    def snapshot_payload(self) -> bytes: ...

    def payload_head(self, payload: bytes) -> bytes: ...

    def restore(self, blob: bytes | memoryview) -> None: ...

    def tracked(self) -> int: ...


# fields a later version adds are ignored, not refused; defaults are omitted (a Kafka state file
# without MQTT's ``processed``)
class Header(msgspec.Struct, omit_defaults=True):
    topic: str  # Kafka: the access events' topic; MQTT: "mqtt <client id> <topic filters>"
    group: str  # Kafka: the consumer group; MQTT: ""
    written_at: float  # wall clock
    resume: dict[int, int]  # partition -> lowest offset whose event the stage does not hold
    # MQTT: the detector's count of events processed at the save (the rules' checkpoint holds
    # the same count: the difference is what the model missed after a crash); Kafka: absent
    processed: int | None = None
    # Kafka: partition -> offset from which the stage has learnt it (0: from a state older
    # than this field): a claim's history (daemon/sources/kafka_assignor.py)
    since: dict[int, int] = msgspec.field(default_factory=dict)
    # Kafka and MQTT in one instance (model_state_dual.py): the MQTT stream's name; else ""
    stream: str = ""


class Saved(msgspec.Struct):
    header: Header
    stage: bytes | memoryview  # the stage's own bytes (AnomalyStage.snapshot: self-checked)


def default_path(settings: ModelState, group: str, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    name = settings.path or f"anomaly-{re.sub(r'[^A-Za-z0-9._-]', '_', group)}.state"
    base = env.get("STATE_DIRECTORY", "").split(":")[0]  # systemd's StateDirectory=
    return Path(base) / name if base else Path(name)


def encode(header: Header, *stage: bytes) -> list[bytes]:
    """The file's content in parts (not joined: the stage's bytes may be large): the magic,
    the SHA-256 of the header's length and the header, the length (8 bytes), the header, then
    the stage's bytes (``stage``'s parts), which carry their own SHA-256."""
    head = msgspec.msgpack.encode(header)
    size = len(head).to_bytes(8, "big")
    return [MAGIC + hashlib.sha256(size + head).digest() + size, head, *stage]


def decode(data: bytes) -> Saved:
    """The saved state in a file's bytes (the stage's part a view of them, not a copy);
    :class:`ModelStateError` if unusable."""
    start = len(MAGIC) + _DIGEST + 8
    if len(data) < start:
        raise ModelStateError(f"truncated ({len(data)} bytes)")
    if data[:6] != MAGIC[:6]:
        raise ModelStateError("not a watchdog model state")
    if data[:8] != MAGIC:
        raise ModelStateError(f"format version {int.from_bytes(data[6:8], 'big')}, this "
                              f"daemon reads {int.from_bytes(MAGIC[6:8], 'big')}")
    view = memoryview(data)
    size = int.from_bytes(data[start - 8:start], "big")
    if start + size > len(data):
        raise ModelStateError("truncated (header past the end)")
    if hashlib.sha256(view[start - 8:start + size]).digest() != data[8:8 + _DIGEST]:
        raise ModelStateError("checksum mismatch (truncated or altered)")
    try:
        header = msgspec.msgpack.decode(view[start:start + size], type=Header)
    except (msgspec.ValidationError, msgspec.DecodeError) as err:
        raise ModelStateError(f"unexpected content: {type(err).__name__}") from None
    return Saved(header, view[start + size:])


class ModelStateKeeper:
    """Saves and restores one anomaly stage's state (see the module doc)."""

    def __init__(self, settings: ModelState, *, group: str, topic: str, stage: KeptStage,
                 pipeline: Pipeline, metrics: Metrics, log: Any, max_records: int,
                 path: Path | None = None) -> None:
        self.every_seconds = settings.every_seconds
        self.path = path or default_path(settings, group)
        self.group, self.topic = group, topic
        self.stage = stage
        self.pipeline = pipeline
        self.metrics = metrics
        self.log = log.bind(model_state=str(self.path))
        self.max_records = max_records
        self.saves = 0
        self._saved: Saved | None = None  # read at start, restored at the first assignment
        self.since: dict[int, int] = {}  # partition -> offset the stage has learnt it from
        # every alert raised so far accepted by every sink (set by the service): a state that
        # holds the events of an alert still in flight would, after a crash, never raise it
        # again (the events read again are the stage's already)
        self.settled: Callable[[], bool] = lambda: True
        self._lock = asyncio.Lock()
        self.deferred = False  # the last save waited (see :meth:`save`)
        metrics.model_state_period.set(self.every_seconds)
        metrics.model_state_saved_at.set(time.time())  # nothing learnt to lose before the start
        pipeline.stages_go_on = True

    # -- start ----------------------------------------------------------------------------
    def load(self) -> None:
        """Read the file (before the sources start); restored by :meth:`on_assigned`."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            self._result("none")
            self.log.info("model_state_none", consequence="the model starts learning afresh")
            return
        except OSError as err:
            self._unusable(f"cannot read: {err.strerror or err}")
            return
        try:
            saved = decode(data)
        except ModelStateError as err:
            self._unusable(str(err))
            return
        if saved.header.topic != self.topic:
            self._stale(f"saved for another topic ({saved.header.topic})")
            return
        self._saved = saved

    def on_assigned(self, committed: Mapping[int, int]) -> dict[int, int]:
        """The partitions new to this instance and their committed offsets (-1: none): the
        offsets to read them from for the restored stage ({}: nothing restored). Restores once,
        at the first assignment with partitions, into a stage that has seen nothing."""
        saved = self._saved
        back = self._restore_assigned(committed)
        since = saved.header.since if saved is not None else {}
        for p, c in committed.items():
            self.since[p] = since.get(p, 0) if p in back else max(c, 0)
        return back

    def claims(self) -> dict[int, Claim]:
        """What this instance's state holds, for the group's assignment: the partitions it
        reads, and before the first assignment those of the saved state."""
        out: dict[int, Claim] = {}
        saved = self._saved
        if saved is not None and saved.header.group == self.group:
            head = saved.header
            out = {p: Claim(head.since.get(p, 0), r) for p, r in head.resume.items()}
        for p, st in self.pipeline.partitions.items():
            if st.kafka:
                out[p] = Claim(self.since.get(p, st.start), st.pos)
        return out

    def _restore_assigned(self, committed: Mapping[int, int]) -> dict[int, int]:
        saved = self._saved
        if saved is None or not committed:
            return {}
        self._saved = None
        if self.stage.frontier != float("-inf"):
            self._stale("the stage has seen events already")
            return {}
        head = saved.header
        if head.group != self.group:
            self._stale(f"saved by the consumer group {head.group}")
            return {}
        for p, c in committed.items():
            r = head.resume.get(p)
            if r is None or (c < 0 and r == 0):
                continue  # (none of its events in the state: an empty partition)
            if c < 0:
                # no offset to place the state in the log (a new cluster, a recreated topic):
                # re-reading from the start would skip every event older than the state's
                self._stale(f"partition {p} has no committed offset")
                return {}
            if c - r > self.max_records:
                self._stale(f"partition {p} saved {c - r} records before its committed offset "
                            f"(model_state.max_reread_records {self.max_records})")
                return {}
        back = {p: r for p, r in head.resume.items() if committed.get(p, -1) >= 0}
        if not self._restore(saved, reread={p: max(0, committed[p] - r)
                                            for p, r in back.items()}):
            return {}
        return back

    def _restore(self, saved: Saved, **said: Any) -> bool:
        """``saved`` into the stage, counted and logged (``said``: more for the log line);
        whether it was restored (else the model starts afresh, said why)."""
        t0 = time.perf_counter()
        try:
            self.stage.restore(saved.stage)
        except ValueError as err:  # the stage's StateError: one line, no ids
            self._unusable(str(err))
            return False
        except Exception as err:  # a bug must not fail the start: afresh, said so
            self._unusable(f"restore failed ({type(err).__name__})")  # (a message may quote ids)
            return False
        self._result("restored")
        self.log.info("model_state_restored", bytes=len(saved.stage),
                      accounts=self.stage.tracked(),
                      saved_seconds_ago=round(time.time() - saved.header.written_at, 1),
                      seconds=round(time.perf_counter() - t0, 3), **said)
        return True

    # -- saves ------------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_seconds)
            for _ in range(max(1, int(self.every_seconds / RETRY_SECONDS))):
                if await self.save() or not self.deferred:
                    break
                await asyncio.sleep(RETRY_SECONDS)  # deferred: soon, not a period later

    async def save(self) -> bool:
        """Capture the state now and write it; whether it was written."""
        async with self._lock:  # a shutdown's save waits for a periodic one under way
            resume = self.pipeline.unreleased()
            self.deferred = resume is None or not self.settled()
            self.metrics.model_state_deferred.set(self.deferred)
            if resume is None or self.deferred:
                self.metrics.model_state_saves.labels("deferred").inc()
                return False
            if self.stage.frontier == float("-inf"):
                return False  # nothing learnt yet: keep what the file holds
            t0 = time.perf_counter()
            collecting = gc.isenabled()
            gc.disable()  # no collector pass while the state is walked (it makes no cycles)
            try:
                payload = self.stage.snapshot_payload()
            finally:
                if collecting:
                    gc.enable()
            self.metrics.model_state_seconds.observe(time.perf_counter() - t0)
            header = self._header(resume)
            try:
                # the payload's hash and the write beside the loop (hashing releases the GIL)
                parts = await asyncio.to_thread(self._write, header, payload)
            except OSError as err:
                self.metrics.model_state_saves.labels("failed").inc()
                self.log.warning("model_state_save_failed",
                                 error=f"{type(err).__name__}: {err.strerror or ''}"[:300],
                                 consequence="a restart re-learns from an older save or "
                                             "afresh; retried")
                return False
            self.saves += 1
            self.metrics.model_state_saves.labels("ok").inc()
            self.metrics.model_state_saved_at.set(header.written_at)
            self.metrics.model_state_bytes.set(sum(map(len, parts)))
            return True

    def _header(self, resume: dict[int, int]) -> Header:
        return Header(self.topic, self.group, time.time(), resume,
                      since={p: self.since.get(p, 0) for p in resume})

    def _write(self, header: Header, payload: bytes) -> list[bytes]:
        parts = encode(header, self.stage.payload_head(payload), payload)
        write_atomically(self.path, *parts)
        return parts

    # -- outcomes ---------------------------------------------------------------------------
    def _result(self, result: str) -> None:
        self.metrics.model_state_restores.labels(result).inc()

    def _stale(self, why: str) -> None:
        self._result("stale")
        self.log.warning("model_state_stale", reason=why[:300],
                         consequence="the model starts learning afresh")

    def _unusable(self, why: str) -> None:
        self._result("unreadable")
        aside = self.path.with_name(self.path.name + ".unreadable")
        with contextlib.suppress(OSError):
            os.replace(self.path, aside)
        self.log.error("model_state_unreadable", error=why[:300], moved_to=str(aside),
                       consequence="the model starts learning afresh")
