"""The alert threshold: calibrated on held-out baseline rows to a target number of false
alerts per 1,000 accounts per day, counting alerts the way the stage raises them (one per
account per cool-down); empirical when the rows show enough alerts, else a tail fit
(generalised Pareto) never below what the rows show. With the tail score
(:func:`calibrate_with_tail`) the tail takes at most half the target (its levels per count:
:mod:`watchdog.anomaly.tail_levels`), the forest the rest."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from watchdog.anomaly.model import tail_on_scale


def count_alerts(
    scores: np.ndarray, users: Sequence[str], times: np.ndarray, threshold: float,
    cooldown: float = 3600.0,
) -> int:
    """Alerts the stage would raise: scores >= threshold, one per account per cool-down."""
    hit = np.flatnonzero(scores >= threshold)
    if not len(hit):
        return 0
    order = sorted(hit.tolist(), key=lambda i: (users[i], times[i]))
    n = 0
    last_user, last_t = None, -math.inf
    for i in order:
        u, t = users[i], float(times[i])
        if u != last_user or t - last_t >= cooldown:
            n += 1
            last_user, last_t = u, t
    return n


@dataclass(frozen=True)
class Calibration:
    threshold: float
    threshold_high: float
    target: float  # false alerts per 1,000 accounts per day
    heldout_rate: float  # observed on the held-out rows at ``threshold``
    heldout_alerts: int
    heldout_rows: int
    account_days: int
    method: str  # "empirical" or "tail fit"
    tail_threshold: float | None = None  # the tail score's, if it has one
    tail_calibrated: float | None = None  # ... as calibrated, before TAIL_MIN/TAIL_MAX
    tail_levels: tuple[float, ...] | None = None  # per count the tail reads (log scale)
    tail_fitted: tuple[float, ...] | None = None  # ... before LEVEL_FLOOR/LEVEL_MAX

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_false_alerts_per_1000_accounts_per_day": self.target,
            "heldout_false_alerts_per_1000_accounts_per_day": round(self.heldout_rate, 4),
            "heldout_alerts": self.heldout_alerts,
            "heldout_rows": self.heldout_rows,
            "heldout_account_days": self.account_days,
            "method": self.method,
            **({"tail_threshold": round(self.tail_threshold, 4),
                "tail_threshold_times": round(math.exp(self.tail_threshold), 2),
                "tail_calibrated": round(self.tail_calibrated or 0.0, 4)}
               if self.tail_threshold is not None and self.tail_levels is None else {}),
            **({"tail_levels_times": _times(self.tail_levels),
                "tail_fitted_times": _times(self.tail_fitted or self.tail_levels)}
               if self.tail_levels is not None else {}),
        }


def _times(levels: Sequence[float]) -> dict[str, float]:
    """Per count the tail reads: how many times beyond its usual ranges alerts."""
    from watchdog.anomaly.vocabulary import TAIL_COLS, WINDOW_FEATURES

    return {WINDOW_FEATURES[c]: round(math.exp(min(v, 50.0)), 2)
            for c, v in zip(TAIL_COLS.tolist(), levels, strict=True)}


def _threshold_for(
    scores: np.ndarray, users: Sequence[str], times: np.ndarray, allowed: float,
    cooldown: float,
) -> tuple[float, str]:
    """The lowest threshold giving at most ``allowed`` alerts on these rows."""
    # block maxima per account-hour: each block above the threshold is about one alert
    keys: dict[tuple[str, int], float] = {}
    for user, block, s in zip(users, (times // cooldown).astype(np.int64).tolist(),
                              scores.tolist(), strict=True):
        key = (user, block)
        if s > keys.get(key, -math.inf):
            keys[key] = s
    blocks = np.sort(np.fromiter(keys.values(), np.float64, len(keys)))[::-1]
    if allowed >= 20 and allowed < len(blocks):
        # empirical: walk down the candidate thresholds while the count stays allowed
        lo, hi = 0, min(len(blocks) - 1, int(allowed * 3))
        while lo < hi:  # largest index whose threshold still gives <= allowed alerts
            mid = (lo + hi + 1) // 2
            if count_alerts(scores, users, times, blocks[mid], cooldown) <= allowed:
                lo = mid
            else:
                hi = mid - 1
        return float(blocks[lo]), "empirical"
    # Fewer allowed alerts than the held-out rows can show directly: fit the tail (peaks
    # over a threshold, excesses as a generalised Pareto distribution, probability-weighted
    # moments; scores are bounded above, so the shape is usually negative and the fit does
    # not run off past the largest reachable score), but never below what the rows show:
    # at most floor(allowed) of them may be above the threshold.
    n_u = min(max(30, len(blocks) // 50), 1000, len(blocks) - 1)
    u = float(blocks[n_u])
    fitted = u + gpd_excess(blocks[:n_u] - u, n_u / max(allowed, 1e-6))
    k = int(allowed)
    floor_ = float(np.nextafter(blocks[k], np.inf)) if k < len(blocks) else float(blocks[-1])
    while k > 0 and count_alerts(scores, users, times, floor_, cooldown) > allowed:
        k -= 1
        floor_ = float(np.nextafter(blocks[k], np.inf))
    return max(fitted, floor_), "tail fit"


def gpd_excess(excess: np.ndarray, ratio: float) -> float:
    """The excess over the fitting threshold exceeded ``1/ratio`` as often as the threshold
    itself, under a generalised Pareto fit of ``excess`` (Hosking and Wallis' PWM)."""
    y = np.sort(np.asarray(excess, dtype=np.float64))
    n = len(y)
    a0 = float(y.mean())
    if n < 5 or a0 <= 0:
        return float(y.max(initial=0.0))
    p = (np.arange(1, n + 1) - 0.35) / n
    a1 = float(((1 - p) * y).mean())
    denom = a0 - 2 * a1
    if denom <= 0:
        return float(y.max())
    k = a0 / denom - 2  # Hosking's shape (xi = -k)
    sigma = 2 * a0 * a1 / denom
    if abs(k) < 1e-6:
        return sigma * math.log(ratio)
    return sigma / k * (1 - float(ratio ** (-k)))


def calibrate(
    scores: np.ndarray,
    users: Sequence[str],
    times: np.ndarray,
    *,
    account_days: int,
    target: float = 0.5,
    cooldown: float = 3600.0,
    high_factor: float = 20.0,
    ceiling: float | None = None,
) -> Calibration:
    """Thresholds for ``target`` false alerts per 1,000 accounts per day (and target/20 for
    severity high, at most half-way to ``ceiling``, the largest possible score), from held-out
    baseline rows scored by the model."""
    if len(scores) < 50 or account_days < 1:
        raise ValueError("too little held-out baseline to calibrate "
                         f"({len(scores)} rows, {account_days} account-days)")
    allowed = target * account_days / 1000.0
    thr, method = _threshold_for(scores, users, times, allowed, cooldown)
    high, _ = _threshold_for(scores, users, times, allowed / high_factor, cooldown)
    high = max(high, thr + 0.02)
    if ceiling is not None:  # scores cannot exceed it: keep "high" reachable
        high = min(high, thr + (ceiling - thr) / 2)
    alerts = count_alerts(scores, users, times, thr, cooldown)
    return Calibration(thr, high, target, 1000.0 * alerts / account_days, alerts,
                       len(scores), account_days, method)


def calibrate_with_tail(
    forest: np.ndarray,
    excess: np.ndarray,
    users: Sequence[str],
    times: np.ndarray,
    *,
    account_days: int,
    target: float = 0.5,
    cooldown: float = 3600.0,
    high_factor: float = 20.0,
) -> Calibration:
    """The tail score's per-count levels for half of ``target`` (:mod:`tail_levels`: events
    and exports in the last hour and the last 20 minutes calibrated, each within
    [LEVEL_FLOOR, LEVEL_MAX]; the other counts at LEVEL_MAX),
    and the forest's threshold for what the tail's held-out alerts leave of the target;
    "high" and the held-out rate are those of the combined score
    (:meth:`~watchdog.anomaly.model.AnomalyModel.combine`). ``excess``: the held-out rows'
    :func:`~watchdog.anomaly.own_baseline.excess` matrix."""
    from watchdog.anomaly.own_baseline import largest
    from watchdog.anomaly.tail_levels import LEVEL_MAX, SHORT, calibrate_levels

    if len(forest) < 50 or account_days < 1:
        raise ValueError("too little held-out baseline to calibrate "
                         f"({len(forest)} rows, {account_days} account-days)")
    levels = np.full(excess.shape[1], LEVEL_MAX)
    fitted = levels.copy()
    levels[SHORT], fitted[SHORT] = calibrate_levels(
        excess[:, SHORT], users, times, allowed=target / 2 * account_days / 1000.0,
        cooldown=cooldown)
    tail, _ = largest(excess, levels)
    t_thr = 1.0  # a count at its level
    # the forest gets what the tail leaves of the target (at least half of it)
    tail_rate = 1000.0 * count_alerts(tail, users, times, t_thr, cooldown) / account_days
    cal_f = calibrate(forest, users, times, account_days=account_days,
                      target=max(target - tail_rate, target / 2), cooldown=cooldown,
                      ceiling=1.0)
    thr = cal_f.threshold
    combined = np.maximum(forest, tail_on_scale(tail, thr, t_thr))
    high, _ = _threshold_for(combined, users, times,
                             target * account_days / 1000.0 / high_factor, cooldown)
    high = max(high, thr + 0.02, cal_f.threshold_high)
    alerts = count_alerts(combined, users, times, thr, cooldown)
    return Calibration(thr, high, target, 1000.0 * alerts / account_days, alerts,
                       len(forest), account_days, cal_f.method, t_thr, None,
                       tuple(levels.tolist()), tuple(fitted.tolist()))
