"""The anomaly model: fit and score.

Two kinds behind one interface, so that the evaluation compares them on equal terms:

- ``isolation_forest`` (the shipped detector): scikit-learn's IsolationForest; the score is
  ``-score_samples`` (about 0.35-0.45 for ordinary behaviour, towards 1 for the isolated),
  computed from the fitted trees' arrays (:class:`Forest`), the same numbers without
  scikit-learn at scoring time;
- ``zscore`` (the baseline it must beat): the largest upward z-score of any feature against
  the training mean and spread.

Higher is more anomalous for both; the alert threshold is calibrated on held-out baseline
rows (:mod:`watchdog.anomaly.calibration`).

The forest's score saturates: it dilutes one huge deviation across every other dimension in
which ordinary hours are occasionally rare (a billing account reading 15-40x its peers' and
its own number of customers scored 0.58-0.65 against a threshold of 0.69). The isolation
forest model therefore reads its score together with a **tail score**: how far each count
exceeds both the top of the account's own usual range and its peers' 99th percentile (log
scale, :func:`watchdog.anomaly.own_baseline.excess`), in units of that count's **level**
(calibrated per count on held-out rows, :mod:`watchdog.anomaly.tail_levels`: 1.5x-10x
beyond), the largest of them. The tail score is put on the forest's scale
(:meth:`AnomalyModel.combine`: equal to the threshold at the tail threshold, 1: a count at
its level; linear above), and the higher of the two is the score: it grows with the
deviation, and a count past its level alerts whatever the other features say.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from watchdog.anomaly.compiled import kernel

KINDS = ("isolation_forest", "zscore")
ZSCORE_FLOOR = 0.25  # the smallest spread (log units) a z-score divides by
QUANTILES = (0.5, 0.9, 0.99)
LEVELWISE_ROWS = 256  # rows that descend all trees at once (see _FastForest)


@dataclass
class AnomalyModel:
    kind: str
    features: tuple[str, ...]
    # isolation_forest: the fitted IsolationForest (see ``estimator``), or only its trees as
    # arrays (``forest``, all scoring needs) with a way to load the estimator when asked for
    _estimator: Any = field(default=None, repr=False)
    forest: Forest | None = field(default=None, repr=False)
    estimator_loader: Callable[[], Any] | None = field(default=None, repr=False)
    center: np.ndarray | None = None  # zscore: training mean
    scale: np.ndarray | None = None  # zscore: training spread (floored)
    threshold: float = math.inf
    threshold_high: float = math.inf
    tail_threshold: float = math.inf  # the tail deviation that alerts by itself
    # per count the tail reads (TAIL_COLS): the excess (log scale) that is one unit of the tail
    # deviation; None: the deviation is the excess itself
    tail_levels: np.ndarray | None = None
    quantiles: np.ndarray | None = None  # (len(QUANTILES), n_features) of the training rows
    info: dict[str, Any] = field(default_factory=dict)  # the manifest, once saved or loaded
    version: str = "unsaved"

    # the forest's trees as plain arrays, when they check out (False: they did not)
    _fast: _FastForest | Literal[False] | None = None
    _zero: float | None = None

    @property
    def estimator(self) -> Any:
        """The scikit-learn IsolationForest (loaded when first asked for, if the model was
        loaded as arrays only: scoring never needs it)."""
        if self._estimator is None and self.estimator_loader is not None:
            self._estimator = self.estimator_loader()
        return self._estimator

    @estimator.setter
    def estimator(self, est: Any) -> None:
        self._estimator = est
        self._fast = None

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
                self._fast = (_FastForest(self.forest) if self.forest is not None
                              else _FastForest.build(self.estimator)) or False
            if self._fast and len(x) and np.isfinite(x).all():
                return self._fast.score(x)
            return -np.asarray(self.estimator.score_samples(x), dtype=np.float64)
        assert self.center is not None
        assert self.scale is not None
        z = (x - self.center) / self.scale
        return np.asarray(np.max(z, axis=1), dtype=np.float64)

    def combine(self, forest: np.ndarray, tail: np.ndarray) -> np.ndarray:
        """The score the stage compares with the threshold: the forest's, or the tail
        deviation on the forest's scale, whichever is higher (see the module docstring)."""
        if not (math.isfinite(self.tail_threshold) and math.isfinite(self.threshold)):
            return forest
        tail_score = tail_on_scale(tail, self.threshold, self.tail_threshold)
        return np.asarray(np.maximum(forest, tail_score), dtype=np.float64)

    def tail_of(self, excess: np.ndarray) -> np.ndarray:
        """Rows' tail deviations from their excess matrices ((k, len(TAIL_COLS)), see
        :func:`watchdog.anomaly.own_baseline.excess`): the largest in units of its level."""
        if not len(excess):
            return np.zeros(0)
        d = excess if self.tail_levels is None else excess / self.tail_levels
        return np.asarray(d.max(axis=1), dtype=np.float64)

    def unusualness(self, x: np.ndarray) -> np.ndarray:
        """Per feature, how far above the baseline's median, in units of (p99 - median)."""
        if self.quantiles is None:
            return np.zeros_like(x, dtype=np.float64)
        med, p99 = self.quantiles[0], self.quantiles[-1]
        spread = np.maximum(p99 - med, ZSCORE_FLOOR)
        return np.asarray((x - med) / spread, dtype=np.float64)


def tail_on_scale(tail: np.ndarray, threshold: float, tail_threshold: float) -> np.ndarray:
    """Tail deviations on the score's scale: ``threshold`` at ``tail_threshold``, 0 at none."""
    return np.asarray(threshold * np.maximum(tail, 0.0) / tail_threshold, dtype=np.float64)


@dataclass(frozen=True)
class Forest:
    """A fitted isolation forest as plain arrays: all that scoring needs. Per tree: its nodes'
    children (-1: a leaf), feature (into the tree's ``features``; or all of them, None) and
    threshold (x <= threshold: left), and each node's path length (its depth + the average
    path length of the training samples that reached it - 1, as scikit-learn adds them up).
    """

    left: list[np.ndarray]
    right: list[np.ndarray]
    feature: list[np.ndarray]
    threshold: list[np.ndarray]
    features: list[np.ndarray | None]
    path: list[np.ndarray]
    max_samples: int  # the sub-sample size each tree was grown on
    n_features: int

    @classmethod
    def of(cls, est: Any) -> Forest:
        """The arrays of a fitted scikit-learn IsolationForest."""
        trees = [t.tree_ for t in est.estimators_]
        n_in = int(est.n_features_in_)
        return cls(
            [np.asarray(t.children_left, dtype=np.int64) for t in trees],
            [np.asarray(t.children_right, dtype=np.int64) for t in trees],
            [np.asarray(t.feature, dtype=np.int64) for t in trees],
            [np.asarray(t.threshold, dtype=np.float64) for t in trees],
            [None if len(f) == n_in and np.array_equal(f, np.arange(n_in))
             else np.asarray(f, dtype=np.int64) for f in est.estimators_features_],
            # from the trees' public arrays, as scikit-learn derives its own at fit: each
            # node's depth (the root's is 1) and the average path length of its samples
            [np.asarray(t.compute_node_depths(), dtype=np.float64)
             + average_path_length(t.n_node_samples) - 1.0 for t in trees],
            int(est.max_samples_), n_in)


def average_path_length(n: np.ndarray) -> np.ndarray:
    """The average path length of an unsuccessful search in a binary search tree of ``n``
    nodes: scikit-learn's ``_average_path_length``, the same arithmetic."""
    n = np.asarray(n)
    out = np.zeros(n.shape)
    one, two = n <= 1, n == 2
    rest = ~np.logical_or(one, two)
    out[one] = 0.0
    out[two] = 1.0
    out[rest] = 2.0 * (np.log(n[rest] - 1.0) + np.euler_gamma) - 2.0 * (n[rest] - 1.0) / n[rest]
    return out


class _FastForest:
    """``-IsolationForest.score_samples``, every tree at once, from the forest's arrays.

    scikit-learn scores each tree through ``joblib.Parallel`` (about 10 ms per call whatever
    the batch size, here), and even a loop over the fitted trees' ``apply`` costs a few
    microseconds per tree and call. Here the trees' nodes are laid end to end in a few flat
    arrays and all rows descend all trees together, one level per step (as deep as the
    deepest tree; a leaf is its own child), ``LEVELWISE_ROWS`` rows at a time. The path
    lengths are then added up tree by tree in the forest's order, as scikit-learn does, so
    the scores are the same numbers (for finite inputs; the model falls back to
    ``score_samples`` otherwise). Needs neither scikit-learn nor the estimator.
    """

    def __init__(self, forest: Forest) -> None:
        sizes = [len(left) for left in forest.left]
        start = np.cumsum([0, *sizes])
        self.roots = np.asarray(start[:-1], dtype=np.int64)  # each tree's root node
        n = int(start[-1])
        # node i lives at 2 * i: its feature and threshold there, its children at 2 * i
        # (left: x <= threshold) and 2 * i + 1 (right), as positions 2 * child
        self.feature = np.zeros(2 * n, dtype=np.int64)
        self.threshold = np.full(2 * n, np.inf)
        self.child = np.zeros(2 * n, dtype=np.int64)
        self.value = np.zeros(2 * n)  # a leaf's path length
        depth = 0
        for left, right, feat, thr, feats, path, o in zip(
                forest.left, forest.right, forest.feature, forest.threshold, forest.features,
                forest.path, start[:-1].tolist(), strict=True):
            if not len(left) == len(right) == len(feat) == len(thr) == len(path) > 0:
                raise ValueError("tree arrays of different lengths")
            leaf = left == -1
            if not (np.all(leaf == (right == -1)) and np.all(left[~leaf] > 0)
                    and np.all(right[~leaf] > 0) and left.max() < len(left)
                    and right.max() < len(left)):
                raise ValueError("tree children out of range")
            width = forest.n_features if feats is None else len(feats)
            if not np.all((feat[~leaf] >= 0) & (feat[~leaf] < width)):
                raise ValueError("tree features out of range")
            cols = np.where(leaf, 0, feat) if feats is None else feats[np.where(leaf, 0, feat)]
            me = 2 * (o + np.arange(len(left)))
            self.feature[me] = np.where(leaf, 0, cols)
            self.threshold[me] = np.where(leaf, np.inf, thr)
            self.child[me] = np.where(leaf, me, 2 * (o + left))
            self.child[me + 1] = np.where(leaf, me, 2 * (o + right))
            self.value[me] = path
            depth = max(depth, _depth(left, right))
        if self.feature.min(initial=0) < 0 or self.feature.max(initial=0) >= forest.n_features:
            raise ValueError("tree features out of range")
        self.depth = depth
        self.denominator = len(sizes) * float(average_path_length(
            np.asarray([forest.max_samples]))[0])

    @classmethod
    def build(cls, est: Any) -> _FastForest | None:
        """From a fitted estimator, once it has reproduced ``score_samples`` on probe rows."""
        try:
            fast = cls(Forest.of(est))
            probe = np.random.default_rng(0).normal(0, 2, (LEVELWISE_ROWS + 7,
                                                           est.n_features_in_))
            probe = np.ascontiguousarray(probe, dtype=np.float32)
            if np.array_equal(fast.score(probe), -est.score_samples(probe)):
                return fast
        except (AttributeError, TypeError, ValueError, IndexError):
            pass
        return None

    def score(self, x: np.ndarray) -> np.ndarray:
        """Scores of the rows of ``x`` (float32, C-contiguous, finite)."""
        n = len(x)
        if self.denominator <= 0:  # a forest fitted on one row (as scikit-learn scores it)
            return np.full(n, 0.5)
        depths = np.zeros(n)
        _path_lengths(x, self.roots, self.feature, self.threshold, self.child, self.value,
                      self.depth, depths)
        return np.asarray(2.0 ** (-depths / self.denominator), dtype=np.float64)


_BLOCK = 32  # rows that walk a tree together: their node loads overlap


@kernel("void(float32[:, ::1], int64[::1], int64[::1], float64[::1], int64[::1], "
        "float64[::1], int64, float64[::1])")
def _path_lengths(x: np.ndarray, roots: np.ndarray, feature: np.ndarray,
                  threshold: np.ndarray, child: np.ndarray, value: np.ndarray, depth: int,
                  depths: np.ndarray) -> None:
    """Each row's path lengths (:class:`_FastForest`'s node arrays) added up tree after tree
    in the forest's order, a running sum as scikit-learn's (``depths`` zeroed). Rows go
    down each tree ``_BLOCK`` at a time, level by level (a leaf is its own child)."""
    node = np.empty(_BLOCK, np.int64)
    for lo in range(0, x.shape[0], _BLOCK):
        hi = min(lo + _BLOCK, x.shape[0])
        for t in range(roots.shape[0]):
            for r in range(hi - lo):
                node[r] = 2 * roots[t]
            for _ in range(depth):
                for r in range(hi - lo):
                    nd = node[r]
                    node[r] = child[nd + (1 if x[lo + r, feature[nd]] > threshold[nd] else 0)]
            for r in range(hi - lo):
                depths[lo + r] += value[node[r]]


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    """The number of splits on the longest path from the root (node 0) to a leaf."""
    level, depth = np.array([0]), 0
    while True:
        level = level[left[level] != -1]
        if not len(level):
            return depth
        level = np.concatenate([left[level], right[level]])
        depth += 1
        if depth > len(left):
            raise ValueError("tree has a cycle")


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
