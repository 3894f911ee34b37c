"""Checkpoints of the detector's state for MQTT, whose messages cannot be read again once
acknowledged: windows built from them (nine failed logins acknowledged, three more, a crash)
survive through this file, as a stream processor keeps its state (a named snapshot).

When: every ``every_messages`` messages or ``every_seconds`` (``mqtt.checkpoint``), and at
shutdown, once no alert waits for a sink (an alert in flight belongs to an event already in the
state: were it lost in a crash, its message, redelivered, would be a duplicate). A message is
acknowledged only once a checkpoint that holds its event's effect is durable
(:class:`~watchdog.daemon.sources.mqtt.MqttSource`). On start the checkpoint is restored
before anything is read; the broker then redelivers what was not acknowledged, and the
events among them the checkpoint already holds (its ``done`` ids) are dropped as duplicates.
What is and is not in it: :mod:`watchdog.engine.snapshot`.

The file: ``WDCKPT`` and a format version (8 bytes), the SHA-256 of the payload (32), the payload
(msgpack, no pickle: plain data only). Written to a temporary file in the same directory,
fsync'd, renamed over the old one, the directory fsync'd: a crash leaves the old checkpoint or
the new one, whole. Mode 0600 (it holds account ids, as the windows do).

A checkpoint that cannot be used (truncated, checksum, another version, a shape this code does
not know) is logged in one line, counted (``watchdog_checkpoints_total{result="unreadable"}``),
renamed aside to ``<path>.unreadable`` (kept for a look, never read again) and the daemon starts
with empty state: as before checkpoints existed, never a crash loop.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from watchdog.daemon.metrics import Metrics
from watchdog.daemon.offsets import PartitionBook
from watchdog.daemon.settings import Mqtt
from watchdog.engine import snapshot
from watchdog.engine.detector import Detector
from watchdog.engine.faults import fault_site
from watchdog.events import AccessEvent

MAGIC = b"WDCKPT\x00\x01"  # the format's name and version (1)
_DIGEST = 32


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; ``str()`` is one line."""


class _Order(msgspec.Struct, forbid_unknown_fields=True):
    released_upto: float
    recent: list[float]
    ahead: list[tuple[float, int, AccessEvent]]  # (time, partition, event) held ahead


class _Snapshot(msgspec.Struct, forbid_unknown_fields=True):
    """The payload's shape (each rule's part is checked by restoring it)."""

    rules: dict[str, Any]
    due: list[tuple[float, str, str]]
    judged_before: float
    order: _Order
    processed: int
    done: list[str]


class _File(msgspec.Struct, forbid_unknown_fields=True):
    stream: str  # client id and topic filters of the stream (for whoever looks at the file)
    written_at: float  # wall clock
    state: _Snapshot


def default_path(m: Mqtt, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    # (a client id may hold any character: not a path of its own)
    name = (m.checkpoint.path if m.checkpoint and m.checkpoint.path
            else f"mqtt-{re.sub(r'[^A-Za-z0-9._-]', '_', m.client_id)}.checkpoint")
    base = env.get("STATE_DIRECTORY", "").split(":")[0]  # systemd's StateDirectory=
    return Path(base) / name if base else Path(name)


def encode(stream: str, state: dict[str, Any]) -> bytes:
    payload = msgspec.msgpack.encode({"stream": stream, "written_at": time.time(),
                                      "state": state})
    return MAGIC + hashlib.sha256(payload).digest() + payload


def decode(data: bytes) -> dict[str, Any]:
    """The state in a checkpoint file's bytes; :class:`CheckpointError` if unusable."""
    if len(data) < len(MAGIC) + _DIGEST:
        raise CheckpointError(f"truncated ({len(data)} bytes)")
    if data[:6] != MAGIC[:6]:
        raise CheckpointError("not a watchdog checkpoint")
    if data[:8] != MAGIC:
        raise CheckpointError(f"format version {int.from_bytes(data[6:8], 'big')}, this "
                              f"daemon reads {int.from_bytes(MAGIC[6:8], 'big')}")
    digest, payload = data[8:8 + _DIGEST], data[8 + _DIGEST:]
    if hashlib.sha256(payload).digest() != digest:
        raise CheckpointError("checksum mismatch (truncated or altered)")
    try:
        f = msgspec.msgpack.decode(payload, type=_File)
    except msgspec.ValidationError as err:
        raise CheckpointError(f"unexpected content: {err}") from None
    except msgspec.DecodeError as err:
        raise CheckpointError(f"undecodable: {err}") from None
    state: dict[str, Any] = msgspec.structs.asdict(f.state)
    state["order"] = msgspec.structs.asdict(f.state.order)
    return state


def write_atomically(path: Path, *parts: bytes) -> None:
    """``parts``, one after the other, as the file's whole content or not at all (a large
    state is not joined into one more copy first)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for data in parts:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)  # the rename itself durable
    finally:
        os.close(dfd)


class Checkpoints:
    """The checkpoints of one MQTT stream's detector state (see the module doc)."""

    def __init__(self, m: Mqtt, detector: Detector, metrics: Metrics, log: Any, *,
                 settled: Callable[[], bool], path: Path | None = None) -> None:
        """``settled``: no alert waits for a sink (a checkpoint may be taken)."""
        assert m.checkpoint is not None
        self.every_messages = m.checkpoint.every_messages
        self.every_seconds = m.checkpoint.every_seconds
        self.path = path or default_path(m)
        self.stream = f"{m.client_id} {' '.join(m.subscribe)}"
        self.detector = detector
        self.metrics = metrics
        self.log = log.bind(checkpoint=str(self.path))
        self.settled = settled
        self.taken_at = time.monotonic()
        self.written = 0
        self.restored = False  # a checkpoint was restored at the start (load)
        # ids restored: duplicates while the buffer remembers them (their messages may not have
        # come again yet when the next checkpoint is taken)
        self._restored: list[str] = []

    def load(self) -> bool:
        """Restore the last checkpoint into the (fresh) detector; False: none, or unusable
        (then the state stays empty)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            self.log.info("checkpoint_none", consequence="starting with empty state")
            return False
        except OSError as err:
            return self._unusable(f"cannot read: {err.strerror or err}")
        try:
            state = decode(data)
            self._check(state)
        except CheckpointError as err:
            return self._unusable(str(err))
        unknown = snapshot.restore(self.detector, state)
        self._restored = list(state["done"])
        self.restored = True
        self.log.info("checkpoint_restored", bytes=len(data), processed=state["processed"],
                      redelivered_duplicates=len(self._restored), rules_not_run=unknown)
        return True

    def _check(self, state: dict[str, Any]) -> None:
        """Restore every rule's part into a fresh rule first: a shape this code does not know
        fails here, before the detector's own rules are touched."""
        for rule in self.detector.engine.rules:
            part = state["rules"].get(rule.id)
            if part is None:
                continue
            try:
                type(rule)().restore(part)
            except (TypeError, ValueError, KeyError, IndexError, AttributeError) as err:
                # where and what type, never the message: it may quote the state's account
                # and subject ids (watchdog.engine.faults)
                raise CheckpointError(f"state of {rule.id} unreadable: "
                                      f"{fault_site(err)}") from None

    def _unusable(self, why: str) -> bool:
        self.metrics.checkpoints.labels("unreadable").inc()
        aside = self.path.with_name(self.path.name + ".unreadable")
        with contextlib.suppress(OSError):
            os.replace(self.path, aside)
        self.log.error("checkpoint_unreadable", error=why[:300], moved_to=str(aside),
                       consequence="starting with empty state: windows built from messages "
                                   "acknowledged before are lost")
        return False

    def due(self, now: float, messages: int) -> bool:
        """``messages``: received since the last checkpoint."""
        return messages >= self.every_messages or now - self.taken_at >= self.every_seconds

    def take(self, book: PartitionBook, log_from: int) -> int | None:
        """Write the state now if no alert is in flight: returns the offset below which every
        message is now safe to acknowledge (None: not now). ``log_from``: the lowest offset
        whose acknowledgement may not have reached the broker (its event ids are kept as
        duplicates-to-be)."""
        if not self.settled() or book.inflight:
            return None
        t0 = time.perf_counter()
        safe = book.safe()
        log = book.log if book.log is not None else []
        order = self.detector.order
        done = [eid for off, eid in log if off >= log_from]
        if self._restored:
            self._restored = [eid for eid in self._restored if order.remembers(eid)]
            done.extend(self._restored)
        # no collector pass while the state's containers are walked (it makes no cycles; with
        # 90,000 accounts' windows: 0.74 s, 2.1 s with the collector on)
        collecting = gc.isenabled()
        gc.disable()
        try:
            data = encode(self.stream, snapshot.capture(self.detector, done))
        finally:
            if collecting:
                gc.enable()
        try:
            write_atomically(self.path, data)
        except OSError as err:
            self.metrics.checkpoints.labels("failed").inc()
            self.log.warning("checkpoint_failed", error=f"{type(err).__name__}: {err}"[:300],
                             consequence="messages stay unacknowledged; retried")
            self.taken_at = time.monotonic()
            return None
        if log:  # what is below log_from is acknowledged (or about to be) for good
            book.log = [e for e in log if e[0] >= log_from]
        self.taken_at = time.monotonic()
        self.written += 1
        m = self.metrics
        m.checkpoints.labels("written").inc()
        m.checkpoint_bytes.set(len(data))
        m.checkpoint_seconds.observe(time.perf_counter() - t0)
        return safe


def for_mqtt(m: Mqtt, *, consume_kafka: bool, rules: bool, detector: Detector,
             metrics: Metrics, log: Any, settled: Callable[[], bool]) -> Checkpoints | None:
    """The MQTT stream's checkpoints, restored now (before the state topics are read), or None:
    ``mqtt.checkpoint: null``; the anomaly service (no rule state); or Kafka consumed too (the
    state then holds Kafka's events as well, which a restart re-reads to rebuild)."""
    if m.checkpoint is None or not rules:
        return None
    if consume_kafka:
        log.warning("checkpoint_off", reason="kafka.consume is true: the state holds Kafka's "
                    "events too (rebuilt by re-reading them)",
                    consequence="windows built from MQTT messages acknowledged before a crash "
                                "are lost")
        return None
    ck = Checkpoints(m, detector, metrics, log, settled=settled)
    ck.load()
    return ck
