"""The anomaly model's cost on the live daemon (issue 13: "in one process, the daemon's events
per CPU-second with the default model at least 75% of its rules-only rate, measured in
interleaved runs").

``watchdog run`` rules only and with ``--model`` (default: the shipped model) consume the same
backlog of a real Tansu broker (default 200k simulated events of ``events // 220`` accounts
over 10 days, 4 partitions), in ``--pairs`` rounds; ``--together`` (the default) starts a
round's daemons at once, each in its own consumer group, so that both see the same moment of
the shared machine (one after the other, the machine's drift moves a round's ratio by 20-30
points). The rate is events per CPU-second of the daemon's whole process (every thread) until
every offset is committed. The rounds are those of bench/bench_archive.py's daemon step
(``bench/archive_cost/daemon_rounds.py``) with the model in place of the archive; the
replay's share is ``bench/bench_anomaly.py --cost-only``.

    .venv/bin/python bench/bench_model_share.py [--events 200000] [--pairs 5] [--model DIR]
        [--one-after-another] [--before TREE ...]

Prints a table; asserts nothing (timings depend on the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.archive_cost.daemon_rounds import daemon_cost  # noqa: E402
from bench.archive_cost.round_table import print_table  # noqa: E402

GOAL_SHARE = 0.75


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--pairs", type=int, default=5, help="rounds")
    p.add_argument("--model", default="default",
                   help="anomaly model directory ('default': the shipped model)")
    p.add_argument("--one-after-another", action="store_true",
                   help="a round's daemons one after the other, not at once")
    p.add_argument("--before", action="append", metavar="TREE",
                   help="one more daemon with the model per round, run from this tree")
    args = p.parse_args()
    # what the archive's rounds read and this bench leaves off
    args.together = not args.one_after_another
    args.live = 0
    args.s3 = False
    args.ab = False
    args.flush_seconds = None
    args.broker_cpus = args.daemon_cpus = None
    rows = asyncio.run(daemon_cost(args))
    rows.append(("goal: share of the rules-only rate", f"at least {GOAL_SHARE:.0%}"))
    print_table(rows)


if __name__ == "__main__":
    main()
