"""Benchmark: datasets from events cannot grow state or alerts without bound.

N events (default 200,000) each with a new ``event.dataset``, then one event past the silence
threshold, through the engine as ``watchdog replay`` and the daemon run it (Detector, every
rule). Prints the process's peak RSS before and after, what ``log_gap`` tracks, dropped and
suppressed, and how many alerts the last event raised. Asserts nothing.

    .venv/bin/python bench/bench_datasets.py [--datasets 200000]

Measured 2026-12-06 (2 shared vCPUs), 200,000 datasets: peak RSS 29 -> 69 MB, log_gap tracks
8,751 (cap 10,000; 191,250 dropped), the last event raised 100 alerts (9,900 suppressed). Before
the caps (issue 12, the daemon): 59 -> 423 MB, and the last event raised 200,001 alerts. The
bound: log_gap keeps at most 10,000 datasets (about 200 bytes each); the reorder buffer's
remembered ids are bounded separately (Reorderer.max_remembered).
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import UTC, datetime

from watchdog.alerts.pseudonym import Pseudonymizer
from watchdog.engine.detector import Detector
from watchdog.engine.engine import Engine
from watchdog.engine.ordering import Reorderer
from watchdog.events import AccessEvent, EventInfo, User
from watchdog.policy import parse_policy
from watchdog.rules import default_rules, log_gap

T0 = datetime(2026, 11, 16, tzinfo=UTC).timestamp()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _event(i: int, t: float, dataset: str) -> AccessEvent:
    return AccessEvent(timestamp=datetime.fromtimestamp(t, UTC),
                       event=EventInfo(id=f"ev-{i}", action="read", dataset=dataset),
                       user=User(id="e1"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", type=int, default=200_000)
    args = parser.parse_args()
    eng = Engine(parse_policy({"organization": "bench",
                                   "roles": {"agent": {"categories": ["identity"]}}}, "bench"),
                 Pseudonymizer(b"bench-key-0123456789abcdef"), default_rules())
    det = Detector(eng, Reorderer())
    start = _rss_mb()
    t0 = time.perf_counter()
    for i in range(args.datasets):
        t = T0 + i * 0.01
        det.push(_event(i, t, f"c-SECRET-{i:06d}"), t)
    det.flush()
    mid = _rss_mb()
    last_t = T0 + args.datasets * 0.01 + 4 * 3600
    alerts = [*det.push(_event(args.datasets, last_t, "late"), last_t).alerts, *det.flush()]
    rule = next(r for r in eng.rules if isinstance(r, log_gap.LogGap))
    print(f"datasets pushed                {args.datasets:,} in {time.perf_counter() - t0:.1f} s")
    print(f"peak RSS before / after        {start:.0f} MB / {mid:.0f} MB")
    print(f"log_gap tracks                 {rule.datasets():,} (cap {log_gap.MAX_DATASETS:,}); "
          f"dropped {rule.dropped:,}")
    print(f"alerts raised by the last event {len(alerts):,} "
          f"(cap {log_gap.SILENCES_PER_MINUTE} per minute); suppressed {rule.suppressed:,}")


if __name__ == "__main__":
    main()
