"""The anomaly stage's own part of its saved state, and its frontier (pure: no I/O).

:meth:`Resumable.snapshot` gives the stage's whole state as bytes (:mod:`stage_state`'s
format): the featurizer's account rows, intake and uncommitted rows, the peers' baselines, the
person-level risk (ledger, usual days, waiting day evidence), and here: the scoring windows
pending, the cool-downs, the counters and the frontier. :meth:`Resumable.restore` loads them
into a freshly built stage (same policy and engine: those, the model, the observer and the
labels are the caller's, not state), which then continues exactly as the saved one would.
A model of another version is accepted (as :meth:`AnomalyStage.swap` keeps the accounts'
windows and baselines): its calibration applies, what was accumulated is kept. A state of
another row layout (:func:`layout`) is refused.

**The frontier**: the latest event time observed and the ids of the events observed at
exactly that time. After :meth:`Resumable.restore` the stage ignores what the saved state
already holds (records the daemon reads again after a restart): an event before the saved
frontier, or at it and among its ids. The stage observes in event-time order (the Detector's
released lists are sorted; a late event comes alone), so a list whose first event is past the
frontier holds none of them: one comparison per list.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from watchdog.anomaly.batch import FeatureBatch
from watchdog.anomaly.day_baseline import MEASURES
from watchdog.anomaly.featurizer import Featurizer
from watchdog.anomaly.layout import (
    LARGE,
    M_RES,
    M_SRC,
    M_SUBJ,
    RING_SLOTS,
    ROW_ARRAYS,
    SEEN_RES_BITS,
    SEEN_SRC_BITS,
    SMALL,
)
from watchdog.anomaly.model import AnomalyModel
from watchdog.anomaly.peers import NBINS, NCAT
from watchdog.anomaly.risk_alerts import RiskHook
from watchdog.anomaly.stage_state import (
    StateError,
    decode,
    encode,
    encode_parts,
    encode_payload,
    head,
    integer,
    number,
    pack,
    strings,
    unpack,
)
from watchdog.anomaly.vocabulary import (
    BUCKET,
    CATEGORIES,
    FEATURE_VERSION,
    PEER_SCALE,
    SCORING_WINDOW,
    WINDOW_FEATURES,
)
from watchdog.events import AccessEvent

Pending = list[tuple[FeatureBatch, np.ndarray, np.ndarray]]
_CONTENT_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)


def layout(model: AnomalyModel) -> dict[str, Any]:
    """What the saved rows mean: a state is loaded only where this is the same."""
    return {"feature_version": FEATURE_VERSION, "window_features": list(WINDOW_FEATURES),
            "model_features": list(model.features), "bucket": BUCKET,
            "scoring_window": SCORING_WINDOW,
            "rows": [[n, list(shape), np.dtype(dt).str] for n, shape, dt, _ in ROW_ARRAYS],
            "row_parts": [list(SMALL), list(LARGE), list(RING_SLOTS), list(CATEGORIES),
                          [M_SUBJ, M_RES, M_SRC, SEEN_RES_BITS, SEEN_SRC_BITS]],
            "peers": [NBINS, NCAT, PEER_SCALE.tolist()], "day_measures": list(MEASURES)}


class Resumable:
    """The stage's snapshot, restore and frontier (mixed into :class:`AnomalyStage`)."""

    # the stage's fields saved here (the others' are saved by their owners)
    features: Featurizer
    risk: RiskHook
    _model: AnomalyModel
    _pending: Pending
    _n_pending: int
    _last_alert: dict[str, float]
    _last_tail: dict[str, tuple[int, float, float, bool]]
    scored: int
    skipped: int
    batches: int
    alerted: int
    # the frontier: the latest event time observed, the ids observed at it; and after a
    # restore, the saved frontier (what the state holds)
    _front: float = -math.inf
    _front_ids: set[str]
    _held: tuple[float, frozenset[str]] | None = None

    @property
    def frontier(self) -> float:
        """The latest event time observed (-inf before any event)."""
        return self._front

    # -- the frontier on the hot path -------------------------------------------------------
    def _passed(self, items: Sequence[tuple[AccessEvent, float]]) -> None:
        """Event time reached ``items``' last (non-empty, in order; or a late event alone)."""
        t = items[-1][1]
        if t < self._front:
            return  # a late event
        if t > self._front:
            self._front, self._front_ids = t, set()
        ids = self._front_ids
        for ev, ti in reversed(items):
            if ti != t:
                break
            ids.add(ev.event.id)

    def _unheld(self, items: Sequence[tuple[AccessEvent, float]],
                ) -> Sequence[tuple[AccessEvent, float]]:
        """``items`` less those the restored state holds (the caller checked there may be)."""
        assert self._held is not None
        t0, ids = self._held
        return [(ev, t) for ev, t in items if t > t0 or (t == t0 and ev.event.id not in ids)]

    # -- snapshot and restore ---------------------------------------------------------------
    def snapshot(self) -> bytes:
        """The stage's whole state after every call so far, as bytes (:mod:`stage_state`):
        about 1.9 KB per account (bench/bench_stage_state.py)."""
        return encode(self._state())

    def snapshot_parts(self) -> tuple[bytes, bytes]:
        """:meth:`snapshot`'s bytes in two parts, not joined (for a writer that takes parts:
        no copy of a large state): the 40-byte head (magic, version, the payload's SHA-256)
        and the payload. A hash of the head covers the payload too."""
        return encode_parts(self._state())

    def snapshot_payload(self) -> bytes:
        """:meth:`snapshot_parts`' payload alone: its head is ``stage_state.head(payload)``,
        which may be computed off the event loop (the hash releases the GIL)."""
        return encode_payload(self._state())

    @staticmethod
    def payload_head(payload: bytes) -> bytes:
        """The 40 bytes that go before :meth:`snapshot_payload`'s ``payload`` (its SHA-256:
        may run off the event loop)."""
        return head(payload)

    def restore(self, blob: bytes | bytearray | memoryview) -> None:
        """Continue from :meth:`snapshot`'s ``blob`` (on a freshly built stage).

        Raises :class:`~watchdog.anomaly.stage_state.StateError` (one line) for bytes that are
        truncated, altered, of another format version or of another row layout, or whose
        content does not fit; the stage is then left as it was.
        """
        doc = decode(blob)
        saved = doc.get("layout")
        mine = layout(self._model)
        if saved != mine:
            keys = sorted(k for k in mine if not isinstance(saved, dict) or saved.get(k)
                          != mine[k])
            raise StateError(f"another feature layout (differs in: {', '.join(keys)}; "
                             f"feature version {_version(saved)}, this stage's "
                             f"{FEATURE_VERSION})")
        before = decode(encode(self._state()))  # (a copy: the parts load in place)
        try:
            self._load(doc)
        except StateError:
            self._load(before)
            raise
        except _CONTENT_ERRORS as err:  # the type only: a message may quote ids
            self._load(before)
            raise StateError(f"unexpected content ({type(err).__name__})") from None

    def _state(self) -> dict[str, Any]:
        fdoc = self.features.state()
        return {
            "layout": layout(self._model),
            "frontier": [self._front, sorted(self._front_ids)],
            "features": fdoc,
            "risk": self.risk.state(fdoc["users"]),
            "pending": [[b.select(idx).state(), pack(win)] for b, idx, win in self._pending],
            "last_alert": [list(self._last_alert), list(self._last_alert.values())],
            "last_tail": [list(self._last_tail), [list(v) for v in self._last_tail.values()]],
            "counts": [self.scored, self.skipped, self.batches, self.alerted],
        }

    def _load(self, doc: dict[str, Any]) -> None:
        """``doc`` into the stage; the parts check what they load before they change."""
        front, ids = number(doc["frontier"][0], "frontier"), strings(doc["frontier"][1],
                                                                      "frontier")
        users, times = doc["last_alert"]
        last_alert = dict(zip(strings(users, "cool-downs"), map(float, times), strict=True))
        users, tails = doc["last_tail"]
        last_tail = {u: (int(c), float(d), float(t), bool(damped))
                     for u, (c, d, t, damped) in zip(strings(users, "cool-downs"), tails,
                                                     strict=True)}
        counts = [integer(n, "counters") for n in doc["counts"]]
        scored, skipped, batches, alerted = counts
        self.features.load_state(doc["features"])
        self.risk.load_state(doc["risk"], doc["features"]["users"])
        names = self.features.peers.names
        pending: Pending = []
        for bdoc, win in doc["pending"]:
            b = FeatureBatch.from_state(bdoc, names)
            pending.append((b, np.arange(len(b)), unpack(win, np.int64, (len(b),), "pending")))
        self._pending, self._n_pending = pending, sum(len(b) for b, _, _ in pending)
        self._last_alert, self._last_tail = last_alert, last_tail
        self.scored, self.skipped, self.batches, self.alerted = scored, skipped, batches, alerted
        self._front, self._front_ids = front, set(ids)
        self._held = (front, frozenset(ids)) if front > -math.inf else None


def _version(saved: Any) -> str:
    v = saved.get("feature_version") if isinstance(saved, dict) else None
    return str(v) if isinstance(v, int) else "unknown"


__all__: Sequence[str] = ("Resumable", "layout")
