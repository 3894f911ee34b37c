"""The anomaly stage: features per event, isolation-forest scores per micro-batch, alerts.

The Detector calls :meth:`AnomalyStage.observe` for every event in event-time order. Every
10 minutes of event time the featurizer commits the accounts active in that bucket (one vector
each); vectors wait in a micro-batch that is scored with **one** call of the forest when it
holds ``batch_size`` rows or its oldest vector is ``max_delay`` seconds of event time old
(whichever comes first), and at :meth:`flush`. Both triggers depend on event time only, so a
replay and the live daemon raise the same alerts. An account's newer vector supersedes its
queued one (the model's inputs are computed for the vectors that are scored only), and a
vector with no behaviour above its baselines at all (all inputs 0) is not sent to the forest:
its score is the model's constant score of "nothing unusual", checked against the threshold
when the model is loaded.

An account is scored once it has been tracked for the warm-up (25 hours: its "never before"
and own-baseline features need a day of history); at most one ``anomaly`` alert per account
per ``cooldown`` (an hour of event time). Severity is ``medium`` (or the policy's override),
``high`` past the model's extreme threshold.

Metrics go through an optional observer (no metrics library here)::

    class Observer(Protocol):
        def on_score(self, score: float) -> None: ...       # or on_scores(array), per batch
        def on_model(self, version: str, loaded: bool) -> None: ...

:meth:`swap` loads another model directory and replaces the model atomically (one attribute
assignment, read once per batch); a refused directory leaves the old model in place.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from watchdog.alerts.model import Alert, AlertSubjects, rfc3339
from watchdog.anomaly import store
from watchdog.anomaly.explain import explain
from watchdog.anomaly.features import (
    BUCKET,
    NW,
    PEER_SCALE,
    WINDOW_FEATURES,
    FeatureBatch,
    Featurizer,
    model_inputs,
    to_natural,
)
from watchdog.anomaly.model import AnomalyModel
from watchdog.anomaly.peers import PeerBaselines, group_key
from watchdog.engine.engine import Engine, alert_id
from watchdog.events import AccessEvent

RULE = "anomaly"
COMMITMENT = "access to personal data is monitored for unusual behaviour"
_SUBJ_1H = WINDOW_FEATURES.index("subjects_1h")


class Observer(Protocol):
    def on_score(self, score: float) -> None: ...

    def on_model(self, version: str, loaded: bool) -> None: ...


class AnomalyStage:
    """A Detector stage (``observe``/``flush``) raising ``anomaly`` alerts."""

    def __init__(
        self,
        model: AnomalyModel,
        engine: Engine,
        *,
        observer: Observer | None = None,
        batch_size: int = 8192,
        max_delay: float = 1200.0,
        cooldown: float = 3600.0,
        warmup: float = 25 * 3600.0,
        source: str = "",
    ) -> None:
        self.engine = engine
        self.observer = observer
        self.batch_size = batch_size
        self.max_delay = max_delay
        self.cooldown = cooldown
        self.source = source
        self._model = model
        # the featurizer reads the engine's policy where it matters: a reload applies at once
        self.features = Featurizer(engine.policy, self._group_of, warmup=warmup,
                                   peers=_peers_from(model), policy_source=engine)
        self._features_observe = self.features.observe
        self._pending: list[FeatureBatch] = []
        self._live: list[np.ndarray] = []  # per pending batch: its rows still to be scored
        self._latest: dict[str, tuple[int, int]] = {}  # account -> (batch, row) to score
        self._n_pending = 0
        # event time of the oldest pending vector's bucket end (inf: none pending; -inf: the
        # batch is full): scoring is due once ``t - _oldest >= max_delay``
        self._oldest = math.inf
        self._last_alert: dict[str, float] = {}
        self.scored = 0  # vectors scored (the forest's or the constant "nothing unusual")
        self.skipped = 0  # of which all-zero: not sent to the forest
        self.batches = 0  # calls of the forest
        self.alerted = 0
        if observer is not None:
            observer.on_model(model.version, True)

    # -- the Stage protocol ---------------------------------------------------------------
    def observe(self, ev: AccessEvent, t: float) -> list[Alert]:
        batch = self._features_observe(ev, t)
        if batch is not None:
            self._enqueue(batch)
        if t - self._oldest >= self.max_delay:  # by time, or -inf: by size
            return self._score()
        return []

    def flush(self) -> list[Alert]:
        """Commit the open bucket and score everything pending (end of a replay, shutdown)."""
        batch = self.features.flush()
        if batch is not None:
            self._enqueue(batch)
        return self._score()

    def drain(self) -> list[Alert]:
        """Score what is pending without closing the open bucket (the daemon, when idle)."""
        return self._score()

    # -- model life cycle ------------------------------------------------------------------
    @property
    def model(self) -> AnomalyModel:
        return self._model

    @property
    def model_version(self) -> str:
        return self._model.version

    def swap(self, model_dir: str | Path) -> str:
        """Load ``model_dir`` and use it from the next batch on; returns its version.

        Raises ``ValueError`` (one line) if the directory is refused; the current model then
        stays in place. The accounts' windows and baselines are kept (same feature set).
        """
        try:
            new = store.load(model_dir)
        except ValueError:
            if self.observer is not None:
                self.observer.on_model(_peek_version(model_dir), False)
            raise
        self._model = new  # atomic: _score reads the attribute once per batch
        self.source = str(model_dir)
        if self.observer is not None:
            self.observer.on_model(new.version, True)
        return new.version

    def tracked(self) -> int:
        return self.features.tracked()

    # -- internals ------------------------------------------------------------------------
    def _group_of(self, user_id: str, t: float) -> str:
        return group_key(self.engine.directory.at(user_id, t))

    def _enqueue(self, batch: FeatureBatch) -> None:
        """Queue a bucket's warm vectors; an account's newer vector supersedes its queued one
        (its windows include everything the older one saw, bar what expired)."""
        live = batch.warm.copy()
        warm = np.flatnonzero(live).tolist()
        if not warm:
            return
        if not self._pending:
            self._oldest = float((batch.bucket + 1) * BUCKET)
        bi = len(self._pending)
        latest, lives, users = self._latest, self._live, batch.users
        added = len(warm)
        for j in warm:
            uid = users[j]
            old = latest.get(uid)
            if old is not None:
                lives[old[0]][old[1]] = False
                added -= 1
            latest[uid] = (bi, j)
        self._pending.append(batch)
        lives.append(live)
        self._n_pending += added
        if self._n_pending >= self.batch_size:
            self._oldest = -math.inf

    def _score(self) -> list[Alert]:
        pending, lives = self._pending, self._live
        if not pending:
            return []
        self._pending, self._live, self._latest = [], [], {}
        self._n_pending = 0
        self._oldest = math.inf
        batches: list[FeatureBatch] = []
        rows: list[np.ndarray] = []
        for b, live in zip(pending, lives, strict=True):
            idx = np.flatnonzero(live)
            if len(idx):
                batches.append(b)
                rows.append(idx)
        model = self._model  # read once: a concurrent swap takes effect at the next batch
        # the model's inputs of the rows to score only (the superseded ones are not needed)
        parts = [b.inputs(idx) for b, idx in zip(batches, rows, strict=True)]
        x = model_inputs(*(np.concatenate(p) for p in zip(*parts, strict=True)))[0]
        busy = x.any(axis=1)
        quiet = model.zero_score()
        if quiet < model.threshold and not busy.all():
            scores = np.full(len(x), quiet)
            if busy.any():
                scores[busy] = model.score(x[busy])
                self.batches += 1
            self.skipped += int(len(x) - busy.sum())
        else:
            scores = model.score(x)
            self.batches += 1
        self.scored += len(scores)
        self._observe_scores(scores)
        alerts: list[Alert] = []
        hits = np.flatnonzero(scores >= model.threshold)
        if len(hits):
            offsets = np.cumsum([0] + [len(idx) for idx in rows])
            for i in hits.tolist():
                bi = int(np.searchsorted(offsets, i, side="right")) - 1
                j = int(rows[bi][i - int(offsets[bi])])
                alert = self._alert(model, batches[bi], j, float(scores[i]), x[i])
                if alert is not None:
                    alerts.append(alert)
        if len(self._last_alert) > 100_000:
            horizon = max(self._last_alert.values()) - self.cooldown
            self._last_alert = {u: t for u, t in self._last_alert.items() if t > horizon}
        return alerts

    def _observe_scores(self, scores: np.ndarray) -> None:
        obs = self.observer
        if obs is None:
            return
        many = getattr(obs, "on_scores", None)
        if many is not None:
            many(scores)
        else:
            for s in scores.tolist():
                obs.on_score(s)

    def _alert(self, model: AnomalyModel, batch: FeatureBatch, j: int, score: float,
               x: np.ndarray) -> Alert | None:
        uid = batch.users[j]
        t = float(batch.t_last[j])
        last = self._last_alert.get(uid)
        if last is not None and t - last < self.cooldown:
            return None
        self._last_alert[uid] = t
        self.alerted += 1
        policy = self.engine.policy
        group = batch.group(j)
        drivers, text = explain(model, x, batch.raw[j], batch.own_mean[j], batch.own_var[j],
                                batch.quantiles[batch.gids[j]], group)
        cited = policy.clauses.get(RULE)
        clauses = (cited,) if cited else ()
        base = policy.severities.get(RULE, "medium")
        severity = "high" if score >= model.threshold_high and base != "critical" else base
        explanation: dict[str, Any] = {
            "model_version": model.version,
            "model_kind": model.kind,
            "threshold": round(model.threshold, 4),
            "threshold_high": round(model.threshold_high, 4),
            "window_end": rfc3339((batch.bucket + 1) * BUCKET),
            "peer_group": group,
            "drivers": drivers,
            "text": text,
        }
        subjects = round(to_natural("subjects_1h", float(batch.raw[j, _SUBJ_1H])))
        eids = batch.event_ids(j)
        return Alert(
            alert_id=alert_id(RULE, uid, eids[-1], str(batch.bucket)),
            rule=RULE,
            severity=severity,
            ts=rfc3339(t),
            user_id=uid,
            event_ids=eids,
            summary=f"Unusual behaviour by account {uid} (score {score:.3f}, threshold "
                    f"{model.threshold:.3f}): {text}. Breaks: {cited or COMMITMENT}",
            subjects=AlertSubjects(subjects),
            clauses=clauses,
            score=round(score, 4),
            explanation=explanation,
            labels={"model_version": model.version},
        )


def _peers_from(model: AnomalyModel) -> PeerBaselines:
    data = model.info.get("peers") or {}
    try:
        return PeerBaselines.from_dict(data, NW, BUCKET, PEER_SCALE)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"model {model.version}: peer baselines unusable: {err}") from None


def _peek_version(model_dir: str | Path) -> str:
    """The version a (possibly refused) directory claims, for the observer; never raises."""
    try:
        doc = json.loads((Path(model_dir) / store.MANIFEST).read_text())
        return str(doc.get("model_version", "unknown"))[:100]
    except Exception:  # a refused model may be anything
        return "unknown"


def load_stage(
    model_dir: str | Path,
    engine: Engine,
    *,
    observer: Observer | None = None,
    **options: Any,
) -> AnomalyStage:
    """The stage for ``watchdog replay --model`` / ``watchdog run --model``.

    Raises ``ValueError`` with a one-line reason when the directory is refused (checksum,
    feature set, format).
    """
    try:
        model = store.load(model_dir)
    except ValueError:
        if observer is not None:
            observer.on_model(_peek_version(model_dir), False)
        raise
    return AnomalyStage(model, engine, observer=observer, source=str(model_dir), **options)


__all__: Sequence[str] = ("AnomalyStage", "Observer", "load_stage")
