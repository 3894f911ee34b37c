"""A Prometheus histogram that takes a batch of observations at once, through the public
collector API of prometheus_client (no reaching into ``Histogram``'s private buckets).

The anomaly stage scores thousands of accounts at a time; ``Histogram.observe`` per score is a
Python call and a lock each. Here a batch is one ``numpy.searchsorted`` and one add per
bucket; the exposition (a ``HistogramMetricFamily`` built at scrape time) is the same series
``Histogram`` gives: cumulative ``le`` buckets ending in ``+Inf``, ``_count`` and ``_sum``.
As with ``Histogram``, a NaN falls in no bucket but makes ``_sum`` NaN.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString


class BatchHistogram(Collector):
    def __init__(self, name: str, documentation: str, buckets: Sequence[float],
                 registry: CollectorRegistry) -> None:
        bounds = sorted(float(b) for b in buckets)
        if not bounds or bounds[-1] != math.inf:
            bounds.append(math.inf)
        self.name = name
        self.documentation = documentation
        self.bounds = np.array(bounds, dtype=np.float64)
        self._les = [floatToGoString(b) for b in bounds]  # type: ignore[no-untyped-call]
        self._counts = np.zeros(len(bounds), dtype=np.int64)  # per bucket, not cumulative
        self._total = 0.0
        self._lock = threading.Lock()  # scrapes may come from another thread
        registry.register(self)

    def observe(self, value: float) -> None:
        self.observe_many(np.array([value], dtype=np.float64))

    def observe_many(self, values: Iterable[float] | np.ndarray) -> None:
        v = values if isinstance(values, np.ndarray) else np.fromiter(values, np.float64)
        if not len(v):
            return
        # the first bucket whose bound is >= the value, as Histogram.observe; NaN fits none
        idx = np.searchsorted(self.bounds, v, side="left")
        counts = np.bincount(idx, minlength=len(self.bounds) + 1)[:len(self.bounds)]
        with self._lock:
            self._counts += counts
            self._total += float(v.sum())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            cumulative = np.cumsum(self._counts).tolist()
            total = self._total
        yield HistogramMetricFamily(
            self.name, self.documentation,
            buckets=[(le, float(c)) for le, c in zip(self._les, cumulative, strict=True)],
            sum_value=total)

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation)
