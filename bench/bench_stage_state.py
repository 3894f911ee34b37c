"""What saving the anomaly stage's state costs: snapshot size and time, restore time.

    python bench/bench_stage_state.py --accounts 20000 1000000

Accounts are filled as the memory bench fills them (``anomaly_eval.cost.memory``: one event
per account, all within half an hour, the shipped model), through ``observe_many`` in lists of
512. Two states are measured: **mid-hour** (the events taken apart and reduced to rows, none
committed yet: the most the featurizer holds besides its account rows) and **committed**
(after ``flush``: every row committed and scored). ``snapshot()`` (or ``snapshot_parts()``,
the same bytes not joined) runs on the daemon's event loop: its time is how long the loop
would be blocked.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.anomaly_eval.cost import DEFAULT_MODEL, account_events
from watchdog.alerts.pseudonym import DEMO_KEY, Pseudonymizer
from watchdog.anomaly.stage import AnomalyStage, load_stage
from watchdog.engine.engine import Engine
from watchdog.events import AccessEvent
from watchdog.policy import load_policy


def stage() -> AnomalyStage:
    return load_stage(DEFAULT_MODEL, Engine(load_policy(None), Pseudonymizer(DEMO_KEY), rules=()))


def fill(s: AnomalyStage, accounts: int) -> None:
    items: list[tuple[AccessEvent, float]] = []
    for item in account_events(accounts):  # as the memory bench fills them
        items.append(item)
        if len(items) == 512:
            s.observe_many(items)
            items = []
    s.observe_many(items)


def measure(s: AnomalyStage, rounds: int, accounts: int) -> dict[str, Any]:
    snaps, parts, restores = [], [], []
    blob = b""
    for _ in range(rounds):
        gc.collect()
        began = time.perf_counter()
        two = s.snapshot_parts()
        parts.append(time.perf_counter() - began)
        del two
        gc.collect()
        began = time.perf_counter()
        blob = s.snapshot()
        snaps.append(time.perf_counter() - began)
    for _ in range(rounds):
        fresh = stage()
        gc.collect()
        began = time.perf_counter()
        fresh.restore(blob)
        restores.append(time.perf_counter() - began)
        same = fresh.snapshot() == blob
        del fresh
        assert same, "a restored stage saves other bytes"
    return {"bytes": len(blob), "bytes_per_account": round(len(blob) / accounts, 1),
            "snapshot_s": round(min(snaps), 3), "snapshot_s_max": round(max(snaps), 3),
            "snapshot_parts_s": round(min(parts), 3), "snapshot_parts_s_max": round(max(parts), 3),
            "restore_s": round(min(restores), 3), "restore_s_max": round(max(restores), 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--accounts", type=int, nargs="+", default=[20_000])
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    out = []
    for n in args.accounts:
        s = stage()
        began = time.perf_counter()
        fill(s, n)
        filled = time.perf_counter() - began
        row: dict[str, Any] = {"accounts": n, "fill_s": round(filled, 1),
                               "mid_hour": measure(s, args.rounds, n)}
        s.flush()
        row["committed"] = measure(s, args.rounds, n)
        row["max_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)
        print(json.dumps(row), flush=True)
        out.append(row)
        del s
        gc.collect()


if __name__ == "__main__":
    main()
