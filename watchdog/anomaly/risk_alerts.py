"""The anomaly stage's side of the person-level risk (:mod:`watchdog.anomaly.risk`).

:class:`RiskHook` turns what the stage has (scored windows, the rules' alerts, the directory's
``notice_at``, the analysts' labels) into ledger input, and the ledger's :class:`RiskAlert`
into an ``anomaly`` alert whose explanation lists its contributions: which days, which
behaviours (with the event ids they rest on), which rule alerts (with their alert ids).
Pure: no I/O; the labels are handed in (:meth:`RiskHook.set_labels`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from watchdog.alerts.model import Alert, rfc3339
from watchdog.anomaly.batch import FeatureBatch
from watchdog.anomaly.day_baseline import DAY_WORDS, DayBaselines, DayEvidence, day_shift
from watchdog.anomaly.labels import Labels
from watchdog.anomaly.model import AnomalyModel
from watchdog.anomaly.risk import (
    DAY,
    MAX_IDS,
    Contribution,
    RiskAlert,
    RiskConfig,
    RiskLedger,
)
from watchdog.anomaly.vocabulary import BUCKET, SCORING_WINDOW
from watchdog.engine.engine import Engine
from watchdog.rules.base import Finding

RULE = "anomaly"
COMMITMENT = "access to personal data is monitored for unusual behaviour"
MAX_BEHAVIOURS = 2  # named per window contribution
MAX_EVENT_IDS = 20  # in the risk alert's event_ids


def risk_config(model: AnomalyModel) -> RiskConfig:
    """The model's calibrated risk settings (``risk`` in its manifest), else defaults placed
    between the score of "nothing unusual" and the per-window threshold."""
    doc = model.info.get("risk")
    if isinstance(doc, dict) and doc:
        return RiskConfig.from_dict(doc, model.threshold)
    zero = model.zero_score()
    return RiskConfig(floor=zero + 0.6 * (model.threshold - zero),
                      window_threshold=model.threshold)


def behaviour_names(features: Sequence[str]) -> list[str]:
    """The behaviour each model feature measures: 'exports_24h_vs_peers' -> 'exports_24h'."""
    return [f.split("_vs_")[0] for f in features]


class RiskHook:
    """Owned by the anomaly stage: feeds the ledger, builds the alerts."""

    def __init__(self, model: AnomalyModel, engine: Engine) -> None:
        self.engine = engine
        self.labels = Labels.empty()
        self.ledger = RiskLedger(risk_config(model), leaver=self._leaver, damped=self._damped)
        self._behaviours = behaviour_names(model.features)
        self.days = DayBaselines()  # the usual day of each account (day_baseline.py)
        # day evidence waiting for its scoring window to be scored: (window, signal)
        self._days: list[tuple[int, tuple[float, str, float, str, tuple[str, ...], str]]] = []

    def set_model(self, model: AnomalyModel) -> None:
        """A swapped model brings its own calibration; the accumulated risk is kept."""
        self.ledger.config = risk_config(model)
        self._behaviours = behaviour_names(model.features)

    def set_labels(self, labels: Labels) -> None:
        self.labels = labels

    # -- input ------------------------------------------------------------------------------
    def observe_alerts(self, alerts: Sequence[Alert]) -> None:
        """The rules' alerts (the stage's own ``anomaly`` alerts are not fed back)."""
        add = self.ledger.add_rule_alert
        for a in alerts:
            if a.rule != RULE:
                add(a.user_id, _epoch(a.ts), a.rule, a.severity, a.alert_id,
                    a.event_ids[-1] if a.event_ids else "")

    def committed(self, batch: FeatureBatch) -> None:
        """A committed batch: its rows' counts add to the accounts' days; the evidence waits
        for its scoring window (so that it meets the ledger in the same order as the scored
        windows, however the commits were cut)."""
        hours = self.engine.policy.business_hours
        shift = day_shift(hours.timezone if hours else None, float(batch.bucket * BUCKET))
        found: list[DayEvidence] = self.days.observe(batch.users, batch.accounts,
                                                     batch.buckets, batch.t_last,
                                                     batch.counts, BUCKET, shift)
        per_window = SCORING_WINDOW // BUCKET
        for e in found:
            self._days.append((int(batch.buckets[e.row]) // per_window, (
                e.t, e.user, e.points, f"{e.measure}_day", batch.event_ids(e.row, MAX_IDS),
                _day_detail(e.measure, e.today, e.usual))))

    def scored(self, model: AnomalyModel, batches: Sequence[FeatureBatch],
               rows: Sequence[np.ndarray], scores: np.ndarray, x: np.ndarray,
               complete_below: float = float("inf")) -> list[Alert]:
        """The stage's scored windows: ``batches[b]``'s rows ``rows[b]``, in turn, scored
        ``scores`` on inputs ``x``; with the day evidence of windows before
        ``complete_below``."""
        cfg = self.ledger.config
        days = [d for w, d in self._days if w < complete_below]
        if days:
            self._days = [(w, d) for w, d in self._days if w >= complete_below]
        small = np.flatnonzero(scores > cfg.floor)
        if not len(small):
            return self._alerts(self.ledger.add_windows((), days)) if days else []
        offsets = np.cumsum([0] + [len(r) for r in rows])
        where = np.searchsorted(offsets, small, side="right") - 1
        users, times, eids = [], np.zeros(len(scores)), {}
        for k, bi in zip(small.tolist(), where.tolist(), strict=True):
            b = batches[bi]
            j = int(rows[bi][k - int(offsets[bi])])
            users.append(b.users[j])
            times[k] = float(b.t_last[j])
            eids[k] = b.event_ids(j)
        by_k = dict(zip(small.tolist(), users, strict=True))
        return self.windows(model, by_k, times, scores, x, small, eids.__getitem__, days)

    def windows(self, model: AnomalyModel, users: Mapping[int, str], times: np.ndarray,
                scores: np.ndarray, x: np.ndarray, small: np.ndarray,
                event_ids: Callable[[int], Sequence[str]],
                days: Sequence[tuple[float, str, float, str, tuple[str, ...], str]] = (),
                ) -> list[Alert]:
        """Windows ``small`` (indices) that scored above the floor: ``users[i]`` at
        ``times[i]`` scored ``scores[i]`` on inputs ``x[i]``; ``event_ids(i)``: the ids its
        contribution rests on."""
        u = model.unusualness(x[small])
        names = self._behaviours
        items = []
        for row, k in zip(u, small.tolist(), strict=True):
            top = np.argsort(-row, kind="stable")[:MAX_BEHAVIOURS * 2].tolist()
            what: list[str] = []
            for f in top:
                b = names[f]
                if b not in what and (row[f] > 1.0 or not what):
                    what.append(b)
            items.append((float(times[k]), users[k], float(scores[k]),
                          tuple(sorted(what[:MAX_BEHAVIOURS])), event_ids(k)))
        return self._alerts(self.ledger.add_windows(items, days))

    def flush(self) -> list[Alert]:
        """Apply every queued day evidence and rule alert (end of a replay)."""
        days = [d for _, d in self._days]
        self._days = []
        out = self._alerts(self.ledger.add_windows((), days)) if days else []
        return out + self._alerts(self.ledger.advance(float("inf")))

    def catch_up(self) -> list[Alert]:
        """Apply the queued rule alerts that event time has already passed (the anomaly service,
        whose rule alerts come late from the rules service's topic); none in one process, where
        every rule alert comes before the windows after it are scored."""
        return self._alerts(self.ledger.advance(self.ledger.clock))

    def suppressed(self, user_id: str, behaviours: Sequence[str], t: float) -> bool:
        """Whether a per-window alert on these behaviours is damped by a label."""
        return self._damped(user_id, behaviours, t)

    # -- saved state (watchdog.anomaly.stage_state; labels are the labels file's) -------------
    def state(self, row_users: Sequence[str | None]) -> dict[str, Any]:
        """The ledger, the usual days (rows: the featurizer's, ``row_users`` their accounts)
        and the day evidence waiting for its window, as plain data."""
        return {"ledger": self.ledger.state(), "days": self.days.state(row_users),
                "waiting": [[w, list(d[:4]), list(d[4]), d[5]] for w, d in self._days]}

    def load_state(self, doc: dict[str, Any], row_users: Sequence[str | None]) -> None:
        """:meth:`state`'s document back (errors if it does not fit)."""
        waiting = [(int(w), (float(t), str(u), float(p), str(what), tuple(map(str, ids)),
                             str(detail)))
                   for w, (t, u, p, what), ids, detail in doc["waiting"]]
        ledger = RiskLedger(self.ledger.config, leaver=self._leaver, damped=self._damped)
        ledger.load_state(doc["ledger"])
        days = DayBaselines(self.days.config)
        days.load_state(doc["days"], row_users)
        self.ledger, self.days, self._days = ledger, days, waiting

    # -- internals ---------------------------------------------------------------------------
    def _leaver(self, user: str, t: float) -> bool:
        rec = self.engine.directory.at(user, t)
        if rec is None or not rec.notice_at or rec.status != "active":
            return False
        return rec.notice_at.timestamp() <= t

    def _damped(self, user: str, behaviours: Sequence[str], t: float) -> bool:
        labels = self.labels
        if not labels:
            return False
        return labels.damped(self.engine.pseudonymize(user), behaviours, t)

    def _alerts(self, raised: list[RiskAlert]) -> list[Alert]:
        if not raised or not self.engine.policy.runs(RULE):  # with commitments: if named
            return []
        return [self._alert(r) for r in raised]

    def _alert(self, r: RiskAlert) -> Alert:
        cfg = self.ledger.config
        contribs = [_describe(c, r.t, cfg) for c in r.contributions]
        days = sorted({c.day for c in r.contributions})
        text = "; ".join(c["text"] for c in contribs)
        eids: list[str] = []
        for c in r.contributions:  # the windows' events, and the events completing rule alerts
            eids.extend(i for i in (c.ids if c.kind == "behaviour" else c.events)
                        if i not in eids)
        rule_ids = [i for c in r.contributions if c.kind == "rule" for i in c.ids]
        refs = tuple(eids[:MAX_EVENT_IDS]) or tuple(rule_ids[:MAX_EVENT_IDS]) or ("risk",)
        factory = self.engine.alerts
        base = factory.severity(RULE, "medium")
        severity = "high" if r.leaver and base in ("low", "medium") else base
        leaver = " while in the notice period (leaver)" if r.leaver else ""
        if r.escalated_from is not None:  # within the last alert's cool-down
            t0, v0 = r.escalated_from
            leaver += (f", {r.value / v0:.1f}x the risk of this account's alert of "
                       f"{rfc3339(t0)[:16]}Z ({v0:.2f}) {(r.t - t0) / 3600.0:.0f} h before")
        explanation: dict[str, Any] = {
            "kind": "risk",
            "risk": round(r.value, 3),
            "threshold": round(r.threshold, 3),
            "half_life_days": cfg.half_life_days,
            "days": [rfc3339(d * DAY)[:10] for d in days],
            "leaver": r.leaver,
            **({"escalated_from": {"at": rfc3339(r.escalated_from[0]),
                                   "risk": round(r.escalated_from[1], 3)}}
               if r.escalated_from is not None else {}),
            "contributions": contribs,
            "rule_alerts": rule_ids,
            "text": text,
        }
        finding = Finding(
            RULE, f"Risk of account {r.user_id} accumulated to {r.value:.2f} (threshold "
            f"{r.threshold:.2f}) over {len(days)} day(s){leaver}: {text}", refs,
            key=f"risk:{int(r.t)}", severity=severity,  # type: ignore[arg-type]
            labels={"detector": "risk"}, score=round(r.value, 4), explanation=explanation)
        return factory.build(finding, r.t, r.user_id, default_severity="medium",
                             commitment=COMMITMENT)


def _describe(c: Contribution, t: float, cfg: RiskConfig) -> dict[str, Any]:
    from watchdog.anomaly.explain import WHAT, WHEN

    day = rfc3339(c.day * DAY)[:10]
    if c.kind == "rule":
        what = f"rule {c.what[0]} ({c.count} alert{'s' if c.count > 1 else ''})"
    elif c.kind == "day":
        what = c.detail
    else:
        words = []
        for b in c.what:
            base, _, window = b.rpartition("_")
            words.append(f"{WHAT.get(base, base)} {WHEN.get(window, window)}".strip()
                         if base else b)
        what = (f"unusual {' and '.join(words)} ({c.count} scored window"
                f"{'s' if c.count > 1 else ''})")
    weight = c.weight_at(t, cfg)
    return {
        "day": day, "kind": c.kind, "what": list(c.what), "count": c.count,
        "points": round(c.points, 3), "points_now": round(weight, 3),
        "first": rfc3339(c.t_first), "last": rfc3339(c.t_last), "leaver": c.leaver,
        ("alert_ids" if c.kind == "rule" else "event_ids"): list(c.ids),
        **({"event_ids": list(c.events)} if c.kind == "rule" else {}),
        "text": f"{day}: {what}, {weight:.2f} points" + (" (leaver x"
                                                           f"{cfg.leaver_factor:g})"
                                                           if c.leaver else ""),
    }


def _day_detail(measure: str, today: float, usual: float) -> str:
    """'115 distinct ... that day by then, 2.9x this account's usual day (39)'."""
    from watchdog.anomaly.explain import WHAT

    words = DAY_WORDS.get(measure) or WHAT.get(measure, measure).replace("distinct ", "")
    times = f", {today / usual:.1f}x this account's usual day" if usual >= 1.0 else ""
    return (f"{today:.0f} {words} that day by then{times} "
            f"(usually {usual:.{1 if usual < 10 else 0}f} a working day)")


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(UTC).timestamp()


__all__: Sequence[str] = ("RiskHook", "behaviour_names", "risk_config")
