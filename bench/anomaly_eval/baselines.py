"""Honest baselines on the same rows and features as the shipped model.

Both are fitted on the rows of the training part (the same 70/30 split of account-days as
``watchdog train``, the same rows near rule alerts left out), calibrated with the same
``calibrate`` to the same false-alert target on the held-out 30%, and alert as the stage
does: a row at or above the threshold, at most one alert per account per hour.

- ``robust_z``: per feature, how many robust standard deviations (1.4826 x MAD around the
  median) above the training median; the row's score is its largest (upward only, as the
  features are). A feature whose MAD is 0 falls back to its standard deviation, then to 1.
- ``hbos`` (``pyod``'s histogram-based outlier score): a well-kept, feature-independent
  density baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from zlib import crc32

import numpy as np

from bench.anomaly_eval.detect import Found
from watchdog.anomaly.calibration import calibrate
from watchdog.anomaly.retrain import select_training_rows
from watchdog.anomaly.train import DEFAULT_TARGET

BASELINES = ("robust_z", "hbos")
MAX_FIT_ROWS = 200_000
COOLDOWN = 3600.0

Scorer = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Fitted:
    name: str
    threshold: float
    heldout_rate: float  # false alerts per 1,000 account-days on the held-out rows
    alerts: list[Found]


def _robust_z(fit: np.ndarray) -> Scorer:
    med = np.median(fit, axis=0)
    scale = 1.4826 * np.median(np.abs(fit - med), axis=0)
    std = fit.std(axis=0)
    scale = np.where(scale > 0, scale, np.where(std > 0, std, 1.0))

    def score(x: np.ndarray) -> np.ndarray:
        return np.asarray(((x - med) / scale).max(axis=1), dtype=np.float64)
    return score


def _hbos(fit: np.ndarray) -> Scorer:
    from pyod.models.hbos import HBOS

    det = HBOS()
    det.fit(fit)

    def score(x: np.ndarray) -> np.ndarray:
        out = np.empty(len(x))
        for i in range(0, len(x), 100_000):
            out[i:i + 100_000] = det.decision_function(x[i:i + 100_000])
        return out
    return score


FITTERS: dict[str, Callable[[np.ndarray], Scorer]] = {"robust_z": _robust_z, "hbos": _hbos}


def _alerts(scores: np.ndarray, users: Sequence[str], times: np.ndarray,
            threshold: float) -> list[Found]:
    hit = np.flatnonzero(scores >= threshold)
    out: list[Found] = []
    last: dict[str, float] = {}
    for i in sorted(hit.tolist(), key=lambda j: float(times[j])):
        u, t = users[i], float(times[i])
        if t - last.get(u, -np.inf) >= COOLDOWN:
            last[u] = t
            out.append(Found(u, t, float(scores[i]), ""))
    return out


def fit_baselines(x: np.ndarray, users: Sequence[str], times: np.ndarray, train_end: float,
                  rule_times: Mapping[str, Sequence[float]], *, seed: int = 0,
                  names: Sequence[str] = BASELINES) -> dict[str, Fitted]:
    """Fit each baseline on the rows before ``train_end``, calibrate, and alert on the rest."""
    train = times < train_end
    usable = train & select_training_rows(users, times, rule_times, now=None)
    days = (times // 86400).astype(np.int64)
    held = np.array([crc32(f"{u}\x1f{d}".encode()) % 1000 < 300
                     for u, d in zip(users, days.tolist(), strict=True)], dtype=bool)
    fit_idx = np.flatnonzero(usable & ~held)
    held_idx = np.flatnonzero(usable & held)
    rng = np.random.default_rng(seed)
    if len(fit_idx) > MAX_FIT_ROWS:
        fit_idx = np.sort(rng.choice(fit_idx, MAX_FIT_ROWS, replace=False))
    eval_idx = np.flatnonzero(~train)
    held_users = [users[i] for i in held_idx]
    eval_users = [users[i] for i in eval_idx]
    account_days = len({(users[i], int(days[i])) for i in held_idx})
    out: dict[str, Fitted] = {}
    for name in names:
        score = FITTERS[name](x[fit_idx].astype(np.float64))
        cal = calibrate(score(x[held_idx].astype(np.float64)), held_users, times[held_idx],
                        account_days=account_days, target=DEFAULT_TARGET)
        alerts = _alerts(score(x[eval_idx].astype(np.float64)), eval_users, times[eval_idx],
                         cal.threshold)
        out[name] = Fitted(name, cal.threshold, cal.heldout_rate, alerts)
    return out
