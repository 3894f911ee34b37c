"""Benchmark: accounts from events cannot grow the windowed rules' state without bound.

N distinct accounts (default 200,000), each with a failed login, an export of personal data
and a read of an anonymised extract (one entry in each windowed rule: brute_force,
bulk_export, reidentification), through the Detector as ``watchdog replay`` runs it. Two
spreads of event time: ``burst`` (all within 20 minutes: every window still open, only the cap
bounds the state) and ``spread`` (over 10 days: windows close, the event-time sweep forgets
them). Prints the process's peak RSS before and after, what the rules keep, forgot and dropped,
and events per CPU-second. Asserts nothing.

    .venv/bin/python bench/bench_accounts.py [--accounts 200000] [--spread burst|spread]

Each run is one process (peak RSS is per process): run the two spreads separately.

Measured 2026-12-06 (2 shared vCPUs, loaded), 200,000 accounts (the state of the events list
itself, 241 MB, is the starting RSS):
  burst, before the caps (main ff67fd1): +582 MB; brute_force and bulk_export 200,000 each
  burst, with them: +314 MB; 100,000 each (100,000 dropped each), reidentification 200,000
  spread over 10 days, before: +40 MB (17-18k keys each); with the sweep: +2 MB (< 1,600)
  400,000 accounts in a burst: +1,167 MB before, +540 MB with the caps (reidentification then
  at 400,000 pairs; its cap is now 200,000).
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
from watchdog.events import AccessEvent, Data, EventInfo, User
from watchdog.policy import parse_policy
from watchdog.rules import default_rules

T0 = datetime(2026, 11, 16, tzinfo=UTC).timestamp()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _events(i: int, t: float) -> list[AccessEvent]:
    user = User(id=f"acct-{i:07d}")
    stamp = datetime.fromtimestamp(t, UTC)
    return [
        AccessEvent(timestamp=stamp, event=EventInfo(id=f"l-{i}", action="login",
                                                     outcome="failure"), user=user),
        AccessEvent(timestamp=stamp, event=EventInfo(id=f"x-{i}", action="export"), user=user,
                    data=Data(resource="crm.customers", categories=("identity",),
                              subject_ids=(f"c-{i % 5000}",))),
        AccessEvent(timestamp=stamp, event=EventInfo(id=f"a-{i}", action="read"), user=user,
                    data=Data(resource="crm.extract", anonymized=True)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--spread", choices=("burst", "spread"), default="burst")
    args = parser.parse_args()
    span = 1200.0 if args.spread == "burst" else 10 * 86400.0
    eng = Engine(parse_policy({"organization": "bench",
                               "roles": {"agent": {"categories": ["identity"]}}}, "bench"),
                 Pseudonymizer(b"bench-key-0123456789abcdef"), default_rules())
    det = Detector(eng, Reorderer(release_step=60.0))
    events = [ev for i in range(args.accounts)
              for ev in _events(i, T0 + i * span / args.accounts)]
    start = _rss_mb()
    cpu = time.process_time()
    for ev in events:
        det.push(ev, ev.timestamp.timestamp())
    det.flush()
    cpu = time.process_time() - cpu
    end = _rss_mb()
    windowed = [r for r in eng.rules if r.windowed]
    print(f"{args.accounts:,} accounts x 3 events, {args.spread} ({span:,.0f} s of event time): "
          f"peak RSS {start:,.0f} -> {end:,.0f} MB (+{end - start:,.0f}); "
          f"{len(events) / cpu:,.0f} events/CPU-s")
    for r in windowed:
        forgetting = getattr(r, "forgetting", None)
        idle, capped = forgetting() if forgetting is not None else (0, 0)
        print(f"  {r.id:<18} keeps {r.tracked():>8,}  forgot idle {idle:>8,}  "
              f"dropped past the cap {capped:>8,}")


if __name__ == "__main__":
    main()
