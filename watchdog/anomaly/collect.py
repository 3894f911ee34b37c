"""What ``watchdog train`` learns from: a Detector stage that featurizes a baseline and keeps
vectors (:class:`Collector`), and the rule alerts' times (:class:`AlertTimes`), so that
behaviour around a rule alert is left out.

Each account's active 10-minute buckets give feature vectors; account-days are split (by a
hash, so the split is reproducible) into training and held-out. Training keeps one vector per
account-hour (a reservoir sample); held-out keeps what the stage would score (an account's
latest vector per ~20 minutes), with its tail deviation. Accounts within the warm-up are kept
too, read as the stage reads them (against their peers only).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from zlib import crc32

import msgspec
import numpy as np

from watchdog.alerts.model import Alert
from watchdog.anomaly.batch import FeatureBatch
from watchdog.anomaly.day_baseline import DayBaselines, day_shift
from watchdog.anomaly.featurizer import Featurizer
from watchdog.anomaly.peer_groups import DirectoryGroups
from watchdog.anomaly.vocabulary import BUCKET, FEATURE_NAMES, SCORING_WINDOW, TAIL_COLS
from watchdog.engine.engine import Engine
from watchdog.events import AccessEvent


@dataclass
class Collected:
    """Vectors gathered from a baseline: training sample and held-out rows."""

    train_x: list[np.ndarray] = field(default_factory=list)
    train_users: list[str] = field(default_factory=list)
    train_t: list[float] = field(default_factory=list)
    held_x: list[np.ndarray] = field(default_factory=list)
    held_users: list[str] = field(default_factory=list)
    held_t: list[np.ndarray] = field(default_factory=list)
    held_tail: list[np.ndarray] = field(default_factory=list)  # rows of tail excesses
    held_days: set[tuple[str, int]] = field(default_factory=set)
    # the day scale's points of each account-day it could judge (day_baseline.py)
    day_points: dict[tuple[str, int], float] = field(default_factory=dict)
    accounts: set[str] = field(default_factory=set)
    first: float = float("inf")
    last: float = float("-inf")
    vectors: int = 0

    def train_matrix(self) -> np.ndarray:
        if not self.train_x:
            return np.zeros((0, len(FEATURE_NAMES)), np.float32)
        return np.vstack(self.train_x).astype(np.float32)

    def held_matrix(self) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
        """The held-out rows' model inputs, accounts, times and the excess of every count
        the tail reads ((rows, len(TAIL_COLS)): what its levels are calibrated on)."""
        if not self.held_x:
            return (np.zeros((0, len(FEATURE_NAMES)), np.float32), [], np.zeros(0),
                    np.zeros((0, len(TAIL_COLS)), np.float32))
        return (np.vstack(self.held_x).astype(np.float32), self.held_users,
                np.concatenate(self.held_t), np.vstack(self.held_tail))


class Collector:
    """A Detector stage that featurizes and keeps vectors for training; raises nothing."""

    def __init__(self, engine: Engine, *, seed: int = 0, heldout: float = 0.3,
                 warmup: float = 25 * 3600.0) -> None:
        self.engine = engine
        self.heldout = heldout
        self.features = Featurizer(engine.policy, DirectoryGroups(engine), warmup=warmup)
        self.out = Collected()
        self._rng = random.Random(seed)
        self._hour: int | None = None
        # this hour's reservoir of one vector per account: (vectors seen, kept, its time)
        self._reservoir: dict[str, tuple[int, np.ndarray, float]] = {}
        # held-out: the latest vector per account in each scoring window, as the stage keeps
        self._window: int | None = None
        self._held: dict[str, tuple[np.ndarray, float, np.ndarray]] = {}
        self.days = DayBaselines()
        self.days.record = self.out.day_points

    def observe(self, ev: AccessEvent, t: float) -> list[Alert]:
        out = self.out
        if t < out.first:
            out.first = t
        if t > out.last:
            out.last = t
        batch = self.features.observe(ev, t)
        if batch is not None:
            self._take(batch)
        return []

    def flush(self) -> list[Alert]:
        batch = self.features.flush()
        if batch is not None:
            self._take(batch)
        self._close_hour()
        self._close_window()
        self.days.finish()
        return []

    def _close_window(self) -> None:
        out = self.out
        if self._held:
            out.held_x.append(np.vstack([x for x, _, _ in self._held.values()]))
            out.held_users.extend(self._held)
            out.held_t.append(np.array([t for _, t, _ in self._held.values()]))
            out.held_tail.append(np.vstack([d for _, _, d in self._held.values()]))
        self._held = {}

    def _close_hour(self) -> None:
        out = self.out
        for uid, (_, x, t) in self._reservoir.items():
            out.train_x.append(x[None, :])
            out.train_users.append(uid)
            out.train_t.append(t)
        self._reservoir = {}

    def _take(self, batch: FeatureBatch) -> None:
        hours = self.engine.policy.business_hours
        self.days.observe(batch.users, batch.accounts, batch.buckets, batch.t_last,
                          batch.counts, BUCKET,
                          day_shift(hours.timezone if hours else None, batch.bucket * BUCKET))
        for part in batch.by_bucket():  # in bucket order, as the stage sees time pass
            self._take_bucket(part)

    def _take_bucket(self, batch: FeatureBatch) -> None:
        hour = batch.bucket * BUCKET // 3600
        if hour != self._hour:
            self._close_hour()
            self._hour = hour
        window = batch.bucket * BUCKET // SCORING_WINDOW
        if window != self._window:
            self._close_window()
            self._window = window
        day = batch.bucket * BUCKET // 86400
        out = self.out
        tail = batch.tail_excess().astype(np.float32)
        for j, uid in enumerate(batch.users):
            out.accounts.add(uid)
            out.vectors += 1
            if crc32(f"{uid}\x1f{day}".encode()) % 1000 < self.heldout * 1000:
                self._held[uid] = (batch.x[j], float(batch.t_last[j]), tail[j])
                out.held_days.add((uid, day))
                continue
            seen, kept, kept_t = self._reservoir.get(uid, (0, batch.x[j], 0.0))
            seen += 1
            if seen == 1 or self._rng.random() < 1.0 / seen:
                kept, kept_t = batch.x[j], float(batch.t_last[j])
            self._reservoir[uid] = (seen, kept, kept_t)


class AlertTimes:
    """Stands in for replay's output file: keeps each account's rule alerts (time and id for
    retraining with labels; rule and severity for the risk's calibration)."""

    def __init__(self) -> None:
        self.by_user: dict[str, list[float]] = {}
        self.found: dict[str, list[tuple[float, str]]] = {}
        self.rules: dict[str, list[tuple[float, str, str]]] = {}
        self.count = 0
        self._dec = msgspec.json.Decoder(_AlertDoc)

    def write(self, line: bytes) -> int:
        doc = self._dec.decode(line)
        t = datetime.fromisoformat(doc.ts.replace("Z", "+00:00")).timestamp()
        self.by_user.setdefault(doc.user_id, []).append(t)
        self.found.setdefault(doc.user_id, []).append((t, doc.alert_id))
        self.rules.setdefault(doc.user_id, []).append((t, doc.rule, doc.severity))
        self.count += 1
        return len(line)


class _AlertDoc(msgspec.Struct):
    user_id: str
    ts: str
    alert_id: str = ""
    rule: str = ""
    severity: str = ""
