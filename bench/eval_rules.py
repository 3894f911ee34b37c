"""Precision and recall per rule of `watchdog replay` on a simulated month.

    python bench/eval_rules.py [--accounts 2000] [--days 30] [--seed 7]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from bench_replay import world_dir  # noqa: E402

from watchdog.rules import RULE_IDS  # noqa: E402
from watchdog.simulate.scoring import score, table  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    d = world_dir(args.accounts, args.days, args.seed)
    out = d / "alerts.jsonl"
    env = {**os.environ, "WATCHDOG_PSEUDONYM_KEY": "bench-key-0123456789abcdef"}
    subprocess.run([sys.executable, "-m", "watchdog", "replay", "--events",
                    str(d / "events.jsonl"), "--directory", str(d / "directory.jsonl"),
                    "--subjects", str(d / "subjects.jsonl"), "--policy", str(d / "policy.yaml"),
                    "--out", str(out)], check=True, env=env)
    truth = [orjson.loads(x) for x in (d / "truth.jsonl").read_bytes().splitlines()]
    alerts = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    rules = [r for r in RULE_IDS if r != "anomaly"]
    print(table(score(truth, alerts, rules)))


if __name__ == "__main__":
    main()
