"""The anomaly stage: features per event, isolation-forest scores per micro-batch, alerts.

The Detector calls :meth:`AnomalyStage.observe` for every event in event-time order. The
featurizer turns every 10 minutes of event time into one vector per active account, and commits
them an hour at a time (or whenever :meth:`drain` asks: the daemon does, every tick, so that
live alerts do not wait for the hour). Scoring is by **scoring window** (one 10-minute bucket
of event time, aligned: ``SCORING_WINDOW``): once a window has ended and its buckets are
committed, each account's latest vector in it is scored, every complete window pending in
**one** call of the forest, once ``batch_size`` vectors are pending, at every :meth:`drain` and
at :meth:`flush`. What is scored depends on event time only, not on when commits or scoring
happen, so a replay and the live daemon raise the same alerts (a replay raises them later in
its output, in bigger batches). The model's inputs are computed for the scored vectors only,
and a vector with no behaviour above its baselines at all (all inputs 0) is not sent to the
forest: its score is the model's constant score of "nothing unusual", checked against the
threshold when the model is loaded.

The score is the forest's read together with the tail score
(:meth:`~watchdog.anomaly.model.AnomalyModel.combine`): a count far beyond both the account's
own usual range and its peers' alerts whatever the other features say. Every account is scored
from its first hour: within the warm-up (25 hours: its "never before" and own-baseline features
need a day of history) against its peers only. At most one ``anomaly`` alert per account per
``cooldown`` (an hour of event time); it lists the pseudonyms of the subjects of the events it
cites (at most ten), never raw ids. Severity is ``medium`` (or the policy's override), ``high``
past the model's extreme threshold.

Metrics go through an optional :class:`Observer` (no metrics library here). :meth:`swap` loads
another model directory and replaces the model atomically (one attribute assignment, read once
per batch); a refused directory leaves the old model in place.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from watchdog.alerts.model import Alert, rfc3339
from watchdog.anomaly import store
from watchdog.anomaly.batch import FeatureBatch
from watchdog.anomaly.explain import explain
from watchdog.anomaly.featurizer import Featurizer
from watchdog.anomaly.model import AnomalyModel
from watchdog.anomaly.peer_groups import DirectoryGroups
from watchdog.anomaly.peers import PeerBaselines
from watchdog.anomaly.risk import SEEN_SECONDS
from watchdog.anomaly.risk_alerts import RiskHook
from watchdog.anomaly.scoring_windows import latest_per_window, split_windows
from watchdog.anomaly.stage_resume import Resumable
from watchdog.anomaly.tail_levels import alerting_times, times_beyond
from watchdog.anomaly.vocabulary import (
    BUCKET,
    NW,
    PEER_SCALE,
    SCORING_WINDOW,
    WINDOW_FEATURES,
    WINDOW_OF,
    WINDOW_SECONDS,
    to_natural,
)
from watchdog.engine.engine import Engine
from watchdog.events import AccessEvent
from watchdog.rules.base import Finding

RULE = "anomaly"
COMMITMENT = "access to personal data is monitored for unusual behaviour"
_SUBJ_1H = WINDOW_FEATURES.index("subjects_1h")
_PER_WINDOW = SCORING_WINDOW // BUCKET  # buckets per scoring window
_BASE_OF = [n.rpartition("_")[0] for n in WINDOW_FEATURES]
_SPAN_OF = WINDOW_SECONDS[WINDOW_OF].tolist()
_WEEK = 7 * 86400.0


class Observer(Protocol):
    def on_score(self, score: float) -> None: ...

    def on_model(self, version: str, loaded: bool) -> None: ...


class AnomalyStage(Resumable):
    """A Detector stage (``observe``/``flush``) raising ``anomaly`` alerts; its state saved
    and restored by :meth:`snapshot` / :meth:`restore` (:mod:`stage_resume`)."""

    def __init__(
        self,
        model: AnomalyModel,
        engine: Engine,
        *,
        observer: Observer | None = None,
        batch_size: int = 4096,
        cooldown: float = 3600.0,
        warmup: float = 25 * 3600.0,
        source: str = "",
    ) -> None:
        self.engine = engine
        self.observer = observer
        self.batch_size = batch_size
        self.cooldown = cooldown
        self.source = source
        self._model = model
        # the featurizer reads the engine's policy where it matters: a reload applies at once
        self.features = Featurizer(engine.policy, DirectoryGroups(engine), warmup=warmup,
                                   peers=_peers_from(model), policy_source=engine)
        self._features_observe = self.features.observe
        # committed batches with rows to score: (batch, its candidate rows, their windows)
        self._pending: list[tuple[FeatureBatch, np.ndarray, np.ndarray]] = []
        self._n_pending = 0
        self._last_alert: dict[str, float] = {}
        # per account, its last alert by the tail score: (window value, deviation, time)
        # (window value, deviation, time, whether a false-positive label damped it)
        self._last_tail: dict[str, tuple[int, float, float, bool]] = {}
        self.scored = 0  # vectors scored (the forest's or the constant "nothing unusual")
        self.skipped = 0  # of which all-zero: not sent to the forest
        self.batches = 0  # calls of the forest
        self.alerted = 0
        self.risk = RiskHook(model, engine)  # person-level risk over days (risk.py)
        self.late_rule_alerts = False  # the anomaly service's (daemon/rule_alert_feed.py)
        self._front_ids: set[str] = set()  # (with _front: the frontier, stage_resume.py)
        if observer is not None:
            observer.on_model(model.version, True)

    # -- the Stage protocol ---------------------------------------------------------------
    def observe(self, ev: AccessEvent, t: float) -> list[Alert]:
        if self._held is not None and not self._unheld(((ev, t),)):
            return []  # the restored state holds it
        self._passed(((ev, t),))
        batch = self._features_observe(ev, t)
        if batch is None:
            return []
        return self._take(batch, False)

    def observe_many(self, items: Sequence[tuple[AccessEvent, float]]) -> list[Alert]:
        """:meth:`observe` of each (event, event time) in turn (the detector's released
        lists: no call per event)."""
        alerts: list[Alert] = []
        if self._held is not None and items and items[0][1] <= self._held[0]:
            items = self._unheld(items)  # (what the restored state holds)
        if not items:
            return alerts
        self._passed(items)
        for batch in self.features.observe_many(items):
            alerts.extend(self._take(batch, False))
        return alerts

    def flush(self) -> list[Alert]:
        """Commit the open bucket and score everything pending (end of a replay, shutdown)."""
        return self._take(self.features.flush(), True) + self.risk.flush()

    def observe_alerts(self, alerts: Sequence[Alert]) -> None:
        """The rules' alerts (the Detector hands them over before the events' windows are
        scored): they add to the accounts' risk."""
        self.risk.observe_alerts(alerts)

    def drain(self) -> list[Alert]:
        """Commit the closed buckets and score the windows that have ended, without closing
        the open bucket (the daemon, every tick: live alerts need not wait for the hour); with
        :attr:`late_rule_alerts`, also apply the rule alerts that came after their time."""
        out = self._take(self.features.commit(), True)
        return out + self.risk.catch_up() if self.late_rule_alerts else out

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
        new = _load(model_dir, self.observer)
        self._model = new  # atomic: _score reads the attribute once per batch
        self.risk.set_model(new)
        self.source = str(model_dir)
        if self.observer is not None:
            self.observer.on_model(new.version, True)
        return new.version

    def tracked(self) -> int:
        return self.features.tracked()

    def tracks(self, user_id: str) -> bool:
        """Whether this stage has seen the account's events (holds its row)."""
        return user_id in self.features.rows

    def on_new_account(self, hook: Callable[[str], None]) -> None:
        """``hook(user_id)`` whenever an account gets its row, before its windows are scored
        (the rule alerts held for it are handed over then: daemon/rule_alert_feed.py)."""
        self.features.on_new_account = hook

    def forgets_before(self) -> float:
        """Event time before which the risk no longer knows which rule alerts it took."""
        return self.risk.ledger.clock - SEEN_SECONDS

    # -- internals ------------------------------------------------------------------------
    def _take(self, batch: FeatureBatch | None, now: bool) -> list[Alert]:
        """Queue a committed batch's candidates (each account's latest warm vector per scoring
        window) and score the windows whose buckets are all committed, if ``now`` or once
        ``batch_size`` candidates are pending."""
        if batch is not None:
            closed = batch.closed_before
        else:  # nothing closed was left to commit
            open_b = self.features.open_bucket
            closed = -math.inf if open_b is None else open_b
        complete_below = closed // _PER_WINDOW if math.isfinite(closed) else closed
        if batch is not None and len(batch):
            self.risk.committed(batch)  # the day scale adds up each bucket's counts
            order = np.lexsort((batch.buckets, batch.accounts))  # each account's rows in turn
            wins = batch.buckets[order] // _PER_WINDOW
            acc = batch.accounts[order]
            latest = np.ones(len(batch), bool)  # the account's last row in the window
            latest[:-1] = (acc[1:] != acc[:-1]) | (wins[1:] != wins[:-1])
            idx, win = order[latest], wins[latest]
            if len(idx):
                self._pending.append((batch, idx, win))
                self._n_pending += len(idx)
        if not self._pending or (not now and self._n_pending < self.batch_size):
            return []
        due: list[tuple[FeatureBatch, np.ndarray, np.ndarray]] = []
        keep: list[tuple[FeatureBatch, np.ndarray, np.ndarray]] = []
        for b, idx, win in self._pending:
            done = win < complete_below
            if done.all():
                due.append((b, idx, win))
            elif done.any():
                due.append((b, idx[done], win[done]))
                keep.append((b, idx[~done], win[~done]))
            else:
                keep.append((b, idx, win))
        self._pending = keep
        self._n_pending = sum(len(idx) for _, idx, _ in keep)
        return self._score(due, complete_below) if due else []

    def _score(self, due: list[tuple[FeatureBatch, np.ndarray, np.ndarray]],
               complete_below: float = math.inf) -> list[Alert]:
        if len(due) > 1 and split_windows(due):
            due = latest_per_window(due)
        batches = [b for b, _, _ in due]
        rows = [idx for _, idx, _ in due]
        model = self._model  # read once: a concurrent swap takes effect at the next batch
        # the model's inputs of the rows to score only
        levels = model.tail_levels
        parts = [b.scoring(idx, levels) for b, idx in zip(batches, rows, strict=True)]
        x, tail, tail_col = (np.concatenate(p) for p in zip(*parts, strict=True))
        busy = x.any(axis=1)
        quiet = model.zero_score()
        if quiet < model.threshold and not busy.all():
            forest = np.full(len(x), quiet)
            if busy.any():
                forest[busy] = model.score(x[busy])
                self.batches += 1
            self.skipped += int(len(x) - busy.sum())
        else:
            forest = model.score(x)
            self.batches += 1
        scores = model.combine(forest, tail)
        self.scored += len(scores)
        self._observe_scores(scores)
        alerts: list[Alert] = []
        hits = np.flatnonzero(scores >= model.threshold)
        if len(hits):
            # in event-time order (the cool-down takes an account's alerts in turn)
            offsets = np.cumsum([0] + [len(idx) for idx in rows])
            at = []
            for i in hits.tolist():
                bi = int(np.searchsorted(offsets, i, side="right")) - 1
                j = int(rows[bi][i - int(offsets[bi])])
                b = batches[bi]
                at.append((int(b.buckets[j]), int(b.accounts[j]), i, bi, j))
            for _, _, i, bi, j in sorted(at):
                score = float(scores[i])
                by_tail = int(tail_col[i]) if scores[i] > forest[i] else None
                b = batches[bi]
                dev = times_beyond(levels, by_tail, float(tail[i]))  # log scale
                if by_tail is not None and self._repeats(b.users[j], by_tail, dev,
                                                         float(b.t_last[j])):
                    if forest[i] < model.threshold or self._last_tail[b.users[j]][3]:
                        continue  # (the continuation of a damped pattern stays damped)
                    by_tail, score = None, float(forest[i])
                alert = self._alert(model, b, j, score, x[i], by_tail, dev)
                if alert is not None:
                    alerts.append(alert)
        alerts.extend(self.risk.scored(model, batches, rows, scores, x, complete_below))
        if len(self._last_alert) > 100_000:
            horizon = max(self._last_alert.values()) - self.cooldown
            self._last_alert = {u: t for u, t in self._last_alert.items() if t > horizon}
        if len(self._last_tail) > 100_000:
            horizon = max(v[2] for v in self._last_tail.values()) - _WEEK
            self._last_tail = {u: v for u, v in self._last_tail.items() if v[2] > horizon}
        return alerts

    def _repeats(self, uid: str, col: int, dev: float, t: float) -> bool:
        """Whether a tail-score hit only repeats the account's last tail alert: the same
        behaviour, within the hit's window (a burst stays in the 24-hour and 7-day windows
        for that long), and not twice as far beyond as then; or any behaviour within the
        window of a hit a false-positive label damped."""
        last = self._last_tail.get(uid)
        if last is None:
            return False
        l_col, l_dev, l_t, damped = last
        if damped and t - l_t < _SPAN_OF[col]:  # the damped hour's events are still counted
            return True
        return (_BASE_OF[l_col] == _BASE_OF[col] and t - l_t < _SPAN_OF[col]
                and dev < l_dev + math.log(2.0))

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
               x: np.ndarray, by_tail: int | None, dev: float = 0.0) -> Alert | None:
        uid = batch.users[j]
        t = float(batch.t_last[j])
        bucket = int(batch.buckets[j])
        last = self._last_alert.get(uid)
        if last is not None and t - last < self.cooldown:
            return None
        if not self.engine.policy.runs(RULE):  # with commitments, only when one names it
            return None
        group = batch.group(j)
        drivers, text = explain(model, x, batch.raw[j], batch.own_mean[j], batch.own_var[j],
                                batch.quantiles[batch.gids[j]], group, first=by_tail,
                                cold=not batch.warm[j])
        damped = self.risk.suppressed(uid, [d["feature"] for d in drivers], t)
        if by_tail is not None:  # the behaviour's later hours repeat this one
            self._last_tail[uid] = (by_tail, dev, t, damped)
        if damped:
            return None  # an analyst's false-positive label damps this pattern
        self._last_alert[uid] = t
        self.alerted += 1
        factory = self.engine.alerts
        base = factory.severity(RULE, "medium")
        severity = "high" if score >= model.threshold_high and base != "critical" else base
        explanation: dict[str, Any] = {
            "model_version": model.version,
            "model_kind": model.kind,
            "threshold": round(model.threshold, 4),
            "threshold_high": round(model.threshold_high, 4),
            "tail_threshold_times": alerting_times(model.tail_levels, model.tail_threshold,
                                                   by_tail),
            "scored_by": "tail" if by_tail is not None else "forest",
            "window_end": rfc3339((bucket + 1) * BUCKET),
            "peer_group": group,
            "drivers": drivers,
            "text": text,
        }
        subjects = round(to_natural("subjects_1h", float(batch.raw[j, _SUBJ_1H])))
        finding = Finding(
            RULE, f"Unusual behaviour by account {uid} (score {score:.3f}, threshold "
            f"{model.threshold:.3f}): {text}", batch.event_ids(j),
            subject_ids=batch.subject_ids(j), subject_count=subjects,
            key=str(bucket), severity=severity,  # type: ignore[arg-type]
            labels={"model_version": model.version}, score=round(score, 4),
            explanation=explanation)
        return factory.build(finding, t, uid, default_severity="medium", commitment=COMMITMENT)


def _peers_from(model: AnomalyModel) -> PeerBaselines:
    data = model.info.get("peers") or {}
    try:
        return PeerBaselines.from_dict(data, NW, BUCKET, PEER_SCALE)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"model {model.version}: peer baselines unusable: {err}") from None


def _load(model_dir: str | Path, observer: Observer | None) -> AnomalyModel:
    """The model in ``model_dir``; a refusal is told to the observer, then raised."""
    try:
        return store.load(model_dir)
    except ValueError:
        if observer is not None:
            observer.on_model(store.claimed_version(model_dir), False)
        raise


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
    return AnomalyStage(_load(model_dir, observer), engine, observer=observer,
                        source=str(model_dir), **options)


__all__: Sequence[str] = ("AnomalyStage", "Observer", "load_stage")
