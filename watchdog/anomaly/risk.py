"""Person-level risk: small signals that add up over days (pure logic, event time, no I/O).

An hour-by-hour detector misses what is small every hour but sustained for days (an account
reading 2-3x its usual customers every working day before leaving; many small exports, each
under every threshold). The ledger keeps, per account, one number that every signal adds to
and that halves every ``half_life_days`` of event time:

- **small anomalies**: a scored window adds ``(score - floor) / (threshold - floor)`` points,
  0 below ``floor`` (the calibrated level where "slightly unusual" begins) and 1 at the
  per-window alert threshold; at most ``window_day_cap`` points per account per day, so one
  busy day cannot make a trend;
- **rule alerts**: a rule adds points by severity (``rule_points``) once per account and
  day (its further alerts that day are listed, not counted again: a rule that fires a
  hundred times for one mistake is one signal; distinct rules add up);
- **the leaver period**: from the directory's ``notice_at`` (contract 1.1) on, every signal
  weighs ``leaver_factor`` times as much.

When the number reaches ``threshold`` (calibrated on the training baseline: see
:mod:`watchdog.anomaly.risk_calibration`) a :class:`RiskAlert` is raised, carrying its
contributions (which days, which behaviours, which rule alerts, with the event ids and alert
ids they rest on); the account's risk then starts again from 0, and for ``cooldown_days`` the
next risk alert comes only if the risk escalates: when what accumulated since reaches
``escalation`` times what the last alert reported (a leaver's ordinary busy day that alerted
must not hide the theft that starts the day after; each such alert raises the bar again, so
they stay rate-limited: 2x, then 4x, ...).

Live equals replay: signals are applied in event-time order. Windows come from the stage in
scoring order (times increase from one call to the next); rule alerts may arrive early (the
daemon judges some on arrival) and wait in a queue until the first window at or after their
time, or :meth:`RiskLedger.advance`. Memory is bounded per account: a few numbers and at
most ``max_contributions`` contributions (merged per day and behaviour; the smallest dropped).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

DAY = 86400.0
SEEN_SECONDS = DAY  # the alert ids taken are kept this long behind the clock (redeliveries)
MAX_IDS = 3  # event or alert ids kept per contribution
RULE_POINTS: Mapping[str, float] = {"low": 0.25, "medium": 0.5, "high": 1.0, "critical": 1.5}


@dataclass(frozen=True)
class RiskConfig:
    """How signals become points; ``threshold`` and ``floor`` come from calibration."""

    threshold: float = 3.0
    floor: float = 0.5  # window score where small anomalies begin
    window_threshold: float = 1.0  # the per-window alert threshold (1 point)
    half_life_days: float = 3.0
    window_day_cap: float = 2.0
    rule_points: Mapping[str, float] = field(default_factory=lambda: dict(RULE_POINTS))
    leaver_factor: float = 2.0
    cooldown_days: float = 3.0
    # within the cool-down, a new alert once the risk since the last one reaches this many
    # times that alert's value (None: none at all, as models calibrated without it)
    escalation: float | None = 2.0
    max_contributions: int = 6

    def bar(self, cooling: bool, last_value: float) -> float:
        """The risk at which an alert is raised: the threshold, or within the cool-down
        ``escalation`` times the last alert's value."""
        if not cooling:
            return self.threshold
        return math.inf if self.escalation is None else self.escalation * last_value

    def window_points(self, score: float) -> float:
        """Points of one scored window (before the leaver factor and the day cap)."""
        if score <= self.floor:
            return 0.0
        span = self.window_threshold - self.floor
        if span <= 0 or score >= self.window_threshold:
            return 1.0
        return (score - self.floor) / span

    def decay(self, dt: float) -> float:
        """The factor a value keeps after ``dt`` seconds."""
        return float(2.0 ** (-dt / (self.half_life_days * DAY))) if dt > 0 else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "floor": self.floor,
                "half_life_days": self.half_life_days, "window_day_cap": self.window_day_cap,
                "rule_points": dict(self.rule_points), "leaver_factor": self.leaver_factor,
                "cooldown_days": self.cooldown_days, "escalation": self.escalation}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], window_threshold: float) -> RiskConfig:
        """From a model manifest's ``risk`` section (missing keys: the defaults)."""
        keys = ("threshold", "floor", "half_life_days", "window_day_cap", "leaver_factor",
                "cooldown_days")
        kw: dict[str, Any] = {k: float(doc[k]) for k in keys if k in doc}
        # a model calibrated before escalation existed: none (its threshold did not count it)
        kw["escalation"] = None if doc.get("escalation") is None else float(doc["escalation"])
        if "rule_points" in doc:
            kw["rule_points"] = {str(k): float(v) for k, v in dict(doc["rule_points"]).items()}
        cfg = cls(window_threshold=window_threshold, **kw)
        if not (cfg.threshold > 0 and cfg.half_life_days > 0 and cfg.window_day_cap > 0
                and cfg.leaver_factor > 0 and cfg.cooldown_days >= 0
                and (cfg.escalation is None or cfg.escalation > 1)):
            raise ValueError("risk: threshold, half_life_days, window_day_cap and "
                             "leaver_factor must be above 0, escalation above 1")
        return cfg


@dataclass(frozen=True, slots=True)
class Contribution:
    """Signals of one kind on one day that added to an account's risk."""

    day: int  # event-time day (epoch seconds // 86400)
    kind: str  # "behaviour" (scored windows) or "rule" (rule alerts)
    what: tuple[str, ...]  # behaviour names (features), or the rule id
    points: float  # as added (leaver factor in), before decay
    t_first: float
    t_last: float
    count: int  # windows or alerts merged here
    ids: tuple[str, ...]  # event ids (behaviour) or alert ids (rule), at most MAX_IDS
    leaver: bool
    events: tuple[str, ...] = ()  # rule: the event completing each alert, at most MAX_IDS
    detail: str = ""  # day: what the day's total was against the usual day (the latest)

    def weight_at(self, t: float, cfg: RiskConfig) -> float:
        return self.points * cfg.decay(t - self.t_last)


@dataclass(frozen=True)
class RiskAlert:
    user_id: str
    t: float
    value: float
    threshold: float
    contributions: tuple[Contribution, ...]  # largest first (decayed to ``t``)
    leaver: bool
    # within the last alert's cool-down: that alert's time and value (the risk escalated)
    escalated_from: tuple[float, float] | None = None


class _Account:
    __slots__ = ("contribs", "day", "day_points", "last_alert", "last_value", "t", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.t = -math.inf
        self.day = -1
        self.day_points = 0.0  # window points taken on ``day``
        self.last_alert = -math.inf
        self.last_value = 0.0  # the risk the last alert reported
        self.contribs: list[Contribution] = []


def _never(_user: str, _t: float) -> bool:
    return False


def _none_damped(_user: str, _what: Sequence[str], _t: float) -> bool:
    return False


class RiskLedger:
    """Accumulated risk per account; feed it windows and rule alerts, get :class:`RiskAlert`s.

    ``leaver(user, t)``: whether the account is in its notice period at ``t``.
    ``damped(user, behaviours, t)``: whether an analyst's false-positive label damps this
    pattern for this account at ``t`` (then it adds nothing).
    """

    def __init__(
        self,
        config: RiskConfig,
        *,
        leaver: Callable[[str, float], bool] = _never,
        damped: Callable[[str, Sequence[str], float], bool] = _none_damped,
    ) -> None:
        self.config = config
        self.leaver = leaver
        self.damped = damped
        self._accounts: dict[str, _Account] = {}
        # rule alerts waiting for event time to reach them:
        # (t, alert id, user, rule, severity, the event completing it)
        self._pending: list[tuple[float, str, str, str, str, str]] = []
        self._seen: dict[str, float] = {}  # alert ids taken (redeliveries), by time
        self._clock = -math.inf
        self._applied = 0
        self.alerts = 0

    # -- input ------------------------------------------------------------------------------
    def add_rule_alert(self, user: str, t: float, rule: str, severity: str,
                       alert_id: str, event_id: str = "") -> None:
        """Queue a rule alert (``event_id``: the event completing it); it counts once event
        time reaches ``t``."""
        if alert_id in self._seen or not self.config.rule_points.get(severity, 0.0) > 0:
            return
        self._seen[alert_id] = t
        heapq.heappush(self._pending, (t, alert_id, user, rule, severity, event_id))

    def add_windows(
        self, windows: Iterable[tuple[float, str, float, Sequence[str], Sequence[str]]],
        days: Iterable[tuple[float, str, float, str, Sequence[str], str]] = (),
    ) -> list[RiskAlert]:
        """Scored windows ``(t, user, score, behaviours, event_ids)`` and day evidence
        ``(t, user, points, behaviour, event_ids, detail)`` (:mod:`day_baseline`); applied in
        (t, user) order, the queued rule alerts up to each signal's time first."""
        out: list[RiskAlert] = []
        cfg = self.config
        signals = [(w[0], w[1], 0, w) for w in windows] + [(d[0], d[1], 1, d) for d in days]
        for t, user, is_day, sig in sorted(signals, key=lambda w: w[:3]):
            out.extend(self.advance(t))
            if is_day:
                _, _, points, what, eids, detail = sig  # type: ignore[misc]
                if not self.damped(user, (what,), t):
                    out.extend(self._add(user, t, "day", (what,), points, eids, window=False,
                                         detail=detail))
                continue
            _, _, score, behaviours, eids = sig  # type: ignore[misc]
            points = cfg.window_points(score)
            if points <= 0.0 or self.damped(user, behaviours, t):
                continue
            out.extend(self._add(user, t, "behaviour", tuple(behaviours), points, eids,
                                 window=True))
        return out

    def advance(self, t: float) -> list[RiskAlert]:
        """Apply the queued rule alerts at or before ``t`` (``math.inf``: all of them)."""
        out: list[RiskAlert] = []
        pending = self._pending
        while pending and pending[0][0] <= t:
            ta, aid, user, rule, severity, eid = heapq.heappop(pending)
            if self.damped(user, (f"rule:{rule}",), ta):
                continue
            out.extend(self._add(user, ta, "rule", (rule,), self.config.rule_points[severity],
                                 (aid,), window=False, events=(eid,) if eid else ()))
        if t > self._clock and math.isfinite(t):
            self._clock = t
        return out

    # -- state ------------------------------------------------------------------------------
    def value(self, user: str, t: float) -> float:
        """The account's risk at ``t`` (decayed; 0 if untracked)."""
        acc = self._accounts.get(user)
        if acc is None:
            return 0.0
        return acc.value * self.config.decay(t - acc.t)

    def tracked(self) -> int:
        return len(self._accounts)

    @property
    def clock(self) -> float:
        """The latest time of a signal applied (event time); -inf before the first."""
        return self._clock

    def contributions(self, user: str) -> tuple[Contribution, ...]:
        acc = self._accounts.get(user)
        return () if acc is None else tuple(acc.contribs)

    # -- saved state (watchdog.anomaly.stage_state) --------------------------------------------
    def state(self) -> dict[str, Any]:
        """The accounts, the queued rule alerts and the ids taken, as plain data (the config
        is the model's)."""
        accounts = [[u, a.value, a.t, a.day, a.day_points, a.last_alert, a.last_value,
                     [[getattr(c, f) for f in _FIELDS] for c in a.contribs]]
                    for u, a in self._accounts.items()]
        return {"accounts": accounts, "pending": [list(p) for p in self._pending],
                "seen": [list(self._seen), list(self._seen.values())],
                "counts": [self._clock, self._applied, self.alerts]}

    def load_state(self, doc: dict[str, Any]) -> None:
        """:meth:`state`'s document back (TypeError, ValueError if it does not fit: nothing
        is changed then)."""
        accounts: dict[str, _Account] = {}
        for u, value, t, day, day_points, last_alert, last_value, contribs in doc["accounts"]:
            a = accounts[str(u)] = _Account()
            a.value, a.t, a.day, a.day_points = float(value), float(t), int(day), float(
                day_points)
            a.last_alert, a.last_value = float(last_alert), float(last_value)
            a.contribs = [_contribution(c) for c in contribs]
        pending = [(float(t), str(aid), str(u), str(r), str(sev), str(e))
                   for t, aid, u, r, sev, e in doc["pending"]]
        keys, times = doc["seen"]
        seen = dict(zip(map(str, keys), map(float, times), strict=True))
        clock, applied, alerts = doc["counts"]
        self._accounts, self._pending, self._seen = accounts, pending, seen
        self._clock, self._applied, self.alerts = float(clock), int(applied), int(alerts)

    # -- internals ---------------------------------------------------------------------------
    def _add(self, user: str, t: float, kind: str, what: tuple[str, ...], points: float,
             ids: Sequence[str], *, window: bool, events: tuple[str, ...] = (),
             detail: str = "") -> list[RiskAlert]:
        cfg = self.config
        acc = self._accounts.get(user)
        if acc is None:
            acc = self._accounts[user] = _Account()
        leaver = self.leaver(user, t)
        if leaver:
            points *= cfg.leaver_factor
        day = int(t // DAY)
        if kind == "rule" and any(c.day == day and c.kind == kind and c.what == what
                              for c in acc.contribs):
            points = 0.0  # the rule already counted today: listed, not counted again
        elif window:
            if day != acc.day:
                acc.day, acc.day_points = day, 0.0
            points = min(points, cfg.window_day_cap - acc.day_points)
            if points <= 0.0:
                return []
            acc.day_points += points
        if t > acc.t:
            acc.value = acc.value * cfg.decay(t - acc.t) + points
            acc.t = t
        else:  # an earlier signal (same time, or a rule alert's own time): decayed to now
            acc.value += points * cfg.decay(acc.t - t)
        self._remember(acc, Contribution(day, kind, what, points, t, t, 1,
                                         tuple(ids)[:MAX_IDS], leaver, events, detail))
        self._applied += 1
        if self._applied % 65536 == 0:
            self._prune(t)
        cooling = t - acc.last_alert < cfg.cooldown_days * DAY
        bar = cfg.bar(cooling, acc.last_value)
        if acc.value >= bar:
            # what still weighs (a contribution decayed to nothing explains nothing)
            weighs = [c for c in acc.contribs if c.weight_at(t, cfg) >= 0.01 * cfg.threshold]
            alert = RiskAlert(user, t, acc.value, bar,
                              tuple(sorted(weighs, key=lambda c: (-c.weight_at(t, cfg),
                                                                  c.t_first))),
                              leaver, (acc.last_alert, acc.last_value) if cooling else None)
            acc.last_value = acc.value
            acc.value, acc.contribs, acc.last_alert = 0.0, [], t
            self.alerts += 1
            return [alert]
        return []

    def _remember(self, acc: _Account, c: Contribution) -> None:
        """Merge ``c`` into the same day's same pattern, else keep it, dropping the smallest
        (decayed) one past ``max_contributions``."""
        contribs = acc.contribs
        for i, old in enumerate(contribs):
            if old.day == c.day and old.kind == c.kind and old.what == c.what:
                contribs[i] = Contribution(
                    c.day, c.kind, c.what, old.points * self.config.decay(c.t_last - old.t_last)
                    + c.points, min(old.t_first, c.t_first), max(old.t_last, c.t_last),
                    old.count + c.count, _merged(old.ids, c.ids), old.leaver or c.leaver,
                    _merged(old.events, c.events), c.detail or old.detail)
                return
        contribs.append(c)
        if len(contribs) > self.config.max_contributions:
            t = max(x.t_last for x in contribs)
            contribs.remove(min(contribs, key=lambda x: (x.weight_at(t, self.config),
                                                         x.t_first)))

    def _prune(self, now: float) -> None:
        """Forget accounts whose risk has decayed to nothing and that are out of cool-down,
        and alert ids older than a day behind the clock (redeliveries come sooner)."""
        cfg = self.config
        eps = cfg.threshold * 1e-3
        cool = cfg.cooldown_days * DAY
        self._accounts = {u: a for u, a in self._accounts.items()
                          if a.value * cfg.decay(now - a.t) > eps or now - a.last_alert < cool}
        horizon = self._clock - SEEN_SECONDS
        self._seen = {k: v for k, v in self._seen.items() if v >= horizon}


_FIELDS = tuple(f.name for f in fields(Contribution))


def _contribution(c: Sequence[Any]) -> Contribution:
    """A :class:`Contribution` from its saved fields (tuples came back as lists)."""
    day, kind, what, points, t_first, t_last, count, ids, leaver, events, detail = c
    return Contribution(int(day), str(kind), tuple(map(str, what)), float(points),
                        float(t_first), float(t_last), int(count), tuple(map(str, ids)),
                        bool(leaver), tuple(map(str, events)), str(detail))


def _merged(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    """The first MAX_IDS distinct ids of both."""
    if len(old) >= MAX_IDS or not new:
        return old
    return (old + tuple(x for x in new if x not in old))[:MAX_IDS]


__all__: Sequence[str] = ("Contribution", "RiskAlert", "RiskConfig", "RiskLedger")
