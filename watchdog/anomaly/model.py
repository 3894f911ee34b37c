"""The anomaly model: fit, score, calibrate.

Two kinds behind one interface, so that the evaluation compares them on equal terms:

- ``isolation_forest`` (the shipped detector): scikit-learn's IsolationForest; the score is
  ``-score_samples`` (about 0.35-0.45 for ordinary behaviour, towards 1 for the isolated);
- ``zscore`` (the baseline it must beat): the largest upward z-score of any feature against
  the training mean and spread.

Higher is more anomalous for both. The alert threshold is calibrated on held-out baseline
rows to a target number of false alerts per 1,000 accounts per day, counting alerts the way
the stage raises them (one per account per cool-down).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

KINDS = ("isolation_forest", "zscore")
ZSCORE_FLOOR = 0.25  # the smallest spread (log units) a z-score divides by
QUANTILES = (0.5, 0.9, 0.99)


@dataclass
class AnomalyModel:
    kind: str
    features: tuple[str, ...]
    estimator: Any = None  # IsolationForest for kind isolation_forest
    center: np.ndarray | None = None  # zscore: training mean
    scale: np.ndarray | None = None  # zscore: training spread (floored)
    threshold: float = math.inf
    threshold_high: float = math.inf
    quantiles: np.ndarray | None = None  # (len(QUANTILES), n_features) of the training rows
    info: dict[str, Any] = field(default_factory=dict)  # the manifest, once saved or loaded
    version: str = "unsaved"

    _fast: Any = None  # the forest's trees as plain arrays, when they check out
    _zero: float | None = None

    def zero_score(self) -> float:
        """The score of a vector with nothing above its baselines (every input 0)."""
        if self._zero is None:
            self._zero = float(self._score(np.zeros((1, len(self.features))))[0])
        return self._zero

    def score(self, x: np.ndarray) -> np.ndarray:
        """Anomaly scores of the rows of ``x`` (one call, whatever the batch size)."""
        return self._score(x)

    def _score(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.kind == "isolation_forest":
            if self._fast is None:
                self._fast = _FastForest.build(self.estimator) or False
            if self._fast:
                return self._fast.score(x)
            return -np.asarray(self.estimator.score_samples(x), dtype=np.float64)
        assert self.center is not None
        assert self.scale is not None
        z = (x - self.center) / self.scale
        return np.asarray(np.max(z, axis=1), dtype=np.float64)

    def unusualness(self, x: np.ndarray) -> np.ndarray:
        """Per feature, how far above the baseline's median, in units of (p99 - median)."""
        if self.quantiles is None:
            return np.zeros_like(x, dtype=np.float64)
        med, p99 = self.quantiles[0], self.quantiles[-1]
        spread = np.maximum(p99 - med, ZSCORE_FLOOR)
        return np.asarray((x - med) / spread, dtype=np.float64)


class _FastForest:
    """``-IsolationForest.score_samples`` without joblib's per-tree dispatch.

    scikit-learn scores each tree through ``joblib.Parallel`` (about 10 ms per call whatever
    the batch size, here); this loop over the fitted trees computes the same numbers in about
    1 ms plus the trees' own work. It is used only after it has reproduced ``score_samples``
    on probe rows; otherwise the stage falls back to ``score_samples``.
    """

    def __init__(self, est: Any) -> None:
        from sklearn.ensemble._iforest import _average_path_length

        self.trees = [t.tree_ for t in est.estimators_]
        self.features = [None if len(f) == est.n_features_in_ and
                         np.array_equal(f, np.arange(est.n_features_in_)) else np.asarray(f)
                         for f in est.estimators_features_]
        self.path = [np.asarray(p, dtype=np.float64) + np.asarray(a, dtype=np.float64) - 1.0
                     for p, a in zip(est._decision_path_lengths,
                                     est._average_path_length_per_tree, strict=True)]
        self.denominator = len(self.trees) * float(
            _average_path_length([est._max_samples])[0])

    @classmethod
    def build(cls, est: Any) -> _FastForest | None:
        try:
            fast = cls(est)
            probe = np.random.default_rng(0).normal(0, 2, (64, est.n_features_in_))
            probe = np.ascontiguousarray(probe, dtype=np.float32)
            if np.allclose(fast.score(probe), -est.score_samples(probe), rtol=0, atol=1e-9):
                return fast
        except (AttributeError, TypeError, ValueError, IndexError):
            pass
        return None

    def score(self, x: np.ndarray) -> np.ndarray:
        depths = np.zeros(len(x))
        for tree, feats, path in zip(self.trees, self.features, self.path, strict=True):
            sub = x if feats is None else np.ascontiguousarray(x[:, feats])
            depths += path[tree.apply(sub)]
        if self.denominator <= 0:  # a forest fitted on one row (as scikit-learn scores it)
            return np.full(len(x), 0.5)
        return np.asarray(2.0 ** (-depths / self.denominator), dtype=np.float64)


def probes(x: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Synthetic rows beside the baseline: each is a real row with one feature replaced by a
    uniform draw over [0, 3 x max(that feature's largest value, 1)].

    An isolation forest only splits where its training sample varies, so it scores any point
    beyond the normal range like the most extreme normal point, and never splits at all on
    a feature that is always 0 in the baseline (categories the peers never touch). These
    sparse probes give every feature a range to split in beyond the normal one, one feature
    at a time, so that how far beyond normal a behaviour goes counts, while the joint shape
    of normal behaviour is kept.
    """
    k = int(share * len(x))
    if k == 0:
        return np.zeros((0, x.shape[1]), dtype=x.dtype)
    top = 3.0 * np.maximum(x.max(axis=0), 1.0)
    rows = x[rng.integers(0, len(x), k)].copy()
    cols = rng.integers(0, x.shape[1], k)
    rows[np.arange(k), cols] = rng.uniform(0.0, 1.0, k) * top[cols]
    return rows


def fit(
    x: np.ndarray,
    features: Sequence[str],
    *,
    kind: str = "isolation_forest",
    seed: int = 0,
    n_estimators: int = 200,
    max_samples: int = 256,
    probe_share: float = 0.1,
) -> AnomalyModel:
    """Fit on baseline rows ``x`` (n, len(features))."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind '{kind}' (one of {', '.join(KINDS)})")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != len(features) or len(x) < 2:
        raise ValueError(f"need at least 2 rows of {len(features)} features, got {x.shape}")
    quantiles = np.quantile(x, QUANTILES, axis=0).astype(np.float64)
    model = AnomalyModel(kind, tuple(features), quantiles=quantiles)
    if kind == "isolation_forest":
        from sklearn.ensemble import IsolationForest

        rng = np.random.default_rng(seed)
        sample = np.vstack([x, probes(x, probe_share, rng)])
        model.estimator = IsolationForest(
            n_estimators=n_estimators, max_samples=min(max_samples, len(sample)),
            random_state=seed, n_jobs=1).fit(sample)
        model.info["params"] = {"n_estimators": n_estimators,
                                "max_samples": min(max_samples, len(sample)),
                                "probe_share": probe_share}
    else:
        model.center = x.mean(axis=0)
        model.scale = np.maximum(x.std(axis=0), ZSCORE_FLOOR).astype(np.float32)
        model.info["params"] = {"floor": ZSCORE_FLOOR}
    return model


# -- calibration ---------------------------------------------------------------------------
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_false_alerts_per_1000_accounts_per_day": self.target,
            "heldout_false_alerts_per_1000_accounts_per_day": round(self.heldout_rate, 4),
            "heldout_alerts": self.heldout_alerts,
            "heldout_rows": self.heldout_rows,
            "heldout_account_days": self.account_days,
            "method": self.method,
        }


def _threshold_for(
    scores: np.ndarray, users: Sequence[str], times: np.ndarray, allowed: float,
    cooldown: float,
) -> tuple[float, str]:
    """The lowest threshold giving at most ``allowed`` alerts on these rows."""
    # block maxima per account-hour: each block above the threshold is about one alert
    keys: dict[tuple[str, int], float] = {}
    for u, t, s in zip(users, (times // cooldown).astype(np.int64).tolist(), scores.tolist(),
                       strict=True):
        k = (u, t)
        if s > keys.get(k, -math.inf):
            keys[k] = s
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
    return sigma / k * (1 - ratio ** (-k))


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
