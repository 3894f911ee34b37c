"""The person-level risk's floor and threshold, calibrated on the training baseline (pure).

Like the per-window threshold (:mod:`watchdog.anomaly.calibration`), the risk threshold is set
for a target number of false alerts per 1,000 account-days on the held-out baseline, which is
assumed normal:

1. **floor**: the ``floor_quantile`` (99th percentile) of the held-out windows' scores: a
   window scoring above what 99 in 100 ordinary windows score is a "small anomaly";
2. **daily points** of each held-out account-day, as the ledger counts them: the windows'
   points (capped per day) plus each rule that raised an alert that day, once;
3. **threshold**: the lowest one at which the accumulated risk (decaying with the half-life)
   crosses no more often than ``target`` per 1,000 account-days, over long sequences of days
   drawn from the held-out days (a bootstrap: the held-out days are ~30% of the baseline,
   scattered, so they cannot be replayed as runs of days): each day one of the account's own
   with probability n / (n + 7) for an account with n held-out days, else anyone's, so that a
   busy account stays busy once its days show it, and one unusual day of an account with
   three is not taken for its habit. Small baselines (100 accounts x 2 weeks gives ~400
   held-out account-days, fewer than one false alert at the target) are why it is simulated:
   the draws give ``sim_account_days`` account-days whatever the baseline's size. Never below
   ``min_threshold`` (more than one day's capped points: a single busy day is the per-window
   detector's job, a trend needs two days or more).

Known limit: days are drawn independently, so noise that comes in runs of days (month-end
reports) is under-represented; label such alerts false positives and they are damped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from watchdog.anomaly.risk import DAY, RiskConfig

SIM_ACCOUNT_DAYS = 200_000
SHRINK_DAYS = 7.0  # an account's own days are drawn with probability n / (n + SHRINK_DAYS)
# the leaver period's budget: false risk alerts per 1,000 notice days that a leaver's ordinary
# days may raise. 20 (was 10): on the tuning worlds it found 8 of 29 gradual 2-3x leavers
# within two days instead of 3 (their second day is only 1.2x-2x their usual; see
# docs/risk-and-labels.md); at 1-2% of account-days in a notice period it adds 0.2-0.4 per
# 1,000 account-days to the overall budget of 1, which the other alerts use half of (0.45)
LEAVER_TARGET = 20.0
LEAVER_FACTORS = (1.0, 4.0)  # the leaver factor is calibrated within these


@dataclass(frozen=True)
class RiskCalibration:
    config: RiskConfig
    heldout_account_days: int
    simulated_account_days: int
    simulated_alerts: int
    target: float
    # the same simulated days as if every account were in its notice period (every signal
    # weighing leaver_factor times): what a leaver's ordinary days would raise
    simulated_leaver_alerts: int = 0
    leaver_target: float | None = None  # None: the leaver factor was given, not calibrated

    def to_dict(self) -> dict[str, object]:
        return {**self.config.to_dict(), "calibration": {
            "target_false_alerts_per_1000_account_days": self.target,
            "heldout_account_days": self.heldout_account_days,
            "simulated_account_days": self.simulated_account_days,
            "simulated_false_alerts_per_1000_account_days":
                round(1000.0 * self.simulated_alerts / max(self.simulated_account_days, 1), 4),
            "simulated_false_alerts_per_1000_leaver_days":
                round(1000.0 * self.simulated_leaver_alerts
                      / max(self.simulated_account_days, 1), 4),
            "target_false_alerts_per_1000_leaver_days": self.leaver_target,
            "method": "bootstrap of held-out days, own days weighted n/(n+7)"}}


def daily_points(
    scores: np.ndarray, users: Sequence[str], times: np.ndarray, cfg: RiskConfig,
    days: set[tuple[str, int]],
    rule_alerts: Mapping[str, Sequence[tuple[float, str, str]]] | None = None,
) -> dict[str, list[float]]:
    """Per account, the points of each of its account-days in ``days`` (user, day index)."""
    pts: dict[tuple[str, int], float] = dict.fromkeys(days, 0.0)
    for s, u, t in zip(scores.tolist(), users, times.tolist(), strict=True):
        key = (u, int(t // DAY))
        if key in pts:
            pts[key] = min(cfg.window_day_cap, pts[key] + cfg.window_points(s))
    for u, alerts in (rule_alerts or {}).items():
        seen: set[tuple[int, str]] = set()
        for t, rule, severity in sorted(alerts):
            key = (u, int(t // DAY))
            if key in pts and (key[1], rule) not in seen:
                seen.add((key[1], rule))
                pts[key] += cfg.rule_points.get(severity, 0.0)
    out: dict[str, list[float]] = {}
    for (u, _), p in sorted(pts.items()):
        out.setdefault(u, []).append(p)
    return out


def count_crossings(draws: np.ndarray, threshold: float, cfg: RiskConfig) -> int:
    """Risk alerts over ``draws`` (accounts x days of points), counted as the ledger raises
    them: at the end of each day, reset after an alert, within the cool-down only when the
    risk escalates (``cfg.escalation`` times the last alert's value)."""
    keep = float(2.0 ** (-1.0 / cfg.half_life_days))
    # days after an alert still within its cool-down: the ledger's ``t - last < cooldown``
    # for evidence at the same hour each day (an alert exactly ``cooldown_days`` later is out)
    cool = int(np.ceil(cfg.cooldown_days)) - 1
    esc = cfg.escalation
    r = np.zeros(draws.shape[0])
    last = np.zeros(draws.shape[0])  # the value the last alert reported
    quiet = np.zeros(draws.shape[0], dtype=np.int64)  # days left in the cool-down
    n = 0
    for d in range(draws.shape[1]):
        r = r * keep + draws[:, d]
        cooling = quiet > 0
        hit = (~cooling & (r >= threshold)) if esc is None else np.where(
            cooling, r >= esc * last, r >= threshold)
        n += int(hit.sum())
        last = np.where(hit, r, last)
        r[hit] = 0.0
        quiet = np.where(hit, cool, quiet - 1)
    return n


def calibrate_risk(
    scores: np.ndarray, users: Sequence[str], times: np.ndarray, *,
    window_threshold: float,
    days: set[tuple[str, int]],
    rule_alerts: Mapping[str, Sequence[tuple[float, str, str]]] | None = None,
    target: float = 0.5,
    base: RiskConfig | None = None,
    floor_quantile: float = 0.99,
    min_threshold: float | None = None,
    sim_account_days: int = SIM_ACCOUNT_DAYS,
    shrink_days: float = SHRINK_DAYS,
    seed: int = 0,
    day_points: Mapping[str, Sequence[float]] | None = None,
    leaver_target: float | None = LEAVER_TARGET,
) -> RiskCalibration:
    """Floor and threshold of the risk for ``target`` false alerts per 1,000 account-days,
    from the held-out rows (``scores`` of ``users`` at ``times``) and account-days ``days``;
    ``day_points``: per account, the day scale's points of the days it judged (any
    training day: they do not depend on the model), drawn the same way and added.
    ``leaver_target``: false alerts per 1,000 leaver days (the same days, every signal
    weighing the leaver factor) the leaver factor may raise: the largest factor within
    ``LEAVER_FACTORS`` that stays within it (None: ``base.leaver_factor`` as given)."""
    if not len(scores) or not days:
        raise ValueError("too little held-out baseline to calibrate the risk")
    base = base or RiskConfig()
    floor = float(np.quantile(scores, floor_quantile))
    floor = min(floor, window_threshold - 1e-6)
    cfg = replace(base, floor=floor, window_threshold=window_threshold)
    per_account = daily_points(scores, users, times, cfg, days, rule_alerts)
    accounts = sorted(per_account)
    n_days = max(30, -(-sim_account_days // len(accounts)))
    draws = _draws(per_account, accounts, n_days, shrink_days, seed)
    if day_points:
        own = {u: list(day_points.get(u, ())) for u in accounts}
        pool = [p for u in sorted(day_points) for p in day_points[u]]
        draws += _draws(own, accounts, n_days, shrink_days, seed + 1, pool)
    total = draws.size
    allowed = target * total / 1000.0
    lo = min_threshold if min_threshold is not None else 1.25 * cfg.window_day_cap
    hi = max(lo, float(draws.sum(axis=1).max()) + 1.0)
    if count_crossings(draws, lo, cfg) <= allowed:
        thr = lo
    else:
        for _ in range(40):  # the lowest threshold within the allowance, to 1e-12 of the span
            mid = (lo + hi) / 2
            if count_crossings(draws, mid, cfg) <= allowed:
                hi = mid
            else:
                lo = mid
        thr = hi
    final = replace(cfg, threshold=math.ceil(thr * 1e4) / 1e4)  # rounded up: still within
    if leaver_target is not None:
        final = replace(final, leaver_factor=leaver_factor(
            draws, final, leaver_target * total / 1000.0))
    return RiskCalibration(final, len(days), total, count_crossings(draws, final.threshold, cfg),
                           target, count_crossings(draws * final.leaver_factor,
                                                   final.threshold, cfg), leaver_target)


def leaver_factor(draws: np.ndarray, cfg: RiskConfig, allowed: float) -> float:
    """The largest factor (within ``LEAVER_FACTORS``, to 0.05) at which the simulated days
    raise at most ``allowed`` alerts with every signal weighing it: the leaver period as a
    prior whose cost is stated, not a fixed weight whose cost depends on the organisation."""
    lo, hi = LEAVER_FACTORS
    if count_crossings(draws * lo, cfg.threshold, cfg) > allowed:
        return lo
    if count_crossings(draws * hi, cfg.threshold, cfg) <= allowed:
        return hi
    while hi - lo > 0.05:
        mid = (lo + hi) / 2
        if count_crossings(draws * mid, cfg.threshold, cfg) <= allowed:
            lo = mid
        else:
            hi = mid
    return math.floor(lo * 20) / 20  # rounded down: still within


def _draws(per_account: Mapping[str, list[float]], accounts: Sequence[str], n_days: int,
           shrink_days: float, seed: int, pool_of: Sequence[float] | None = None,
           ) -> np.ndarray:
    """Simulated days (accounts x n_days): each day one of the account's own held-out days
    with probability n / (n + shrink_days) (n: how many it has), else any account's. With the
    3-4 held-out days a two-week baseline gives an account, drawing only its own would turn
    one unusual day into a third of its life, a trend it never had; with many days its own
    level dominates."""
    rng = np.random.default_rng(seed)
    pool = (np.asarray(pool_of, np.float64) if pool_of is not None else
            np.concatenate([np.asarray(per_account[u]) for u in accounts]))
    rows = []
    for u in accounts:
        own = np.asarray(per_account[u], np.float64)
        mine = rng.random(n_days) < len(own) / (len(own) + shrink_days)
        theirs = rng.choice(pool, n_days) if len(pool) else np.zeros(n_days)
        rows.append(np.where(mine, rng.choice(own, n_days), theirs) if len(own) else theirs)
    return np.vstack(rows)


__all__: Sequence[str] = ("LEAVER_TARGET", "RiskCalibration", "calibrate_risk",
                          "count_crossings", "daily_points", "leaver_factor")
