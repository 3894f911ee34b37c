"""How well the shipped anomaly detector finds insiders it was never tuned on, and at what cost.

    python bench/bench_anomaly.py --quick                 # minutes: sizes 100, 500; 1 tuning seed
    python bench/bench_anomaly.py --seeds tuning          # tune on these, as often as you like
    python bench/bench_anomaly.py --seeds report --png docs/anomaly-envelope.png \\
        --json out.json --md out.md                       # the numbers a release states
    python bench/bench_anomaly.py --cost-only --throughput-rounds 7 --memory-accounts 1000000
                                                          # the cost alone (step 5)

For every organisation size (100, 500, 2,000 accounts) and seed of the chosen set (TUNING or
REPORT, fixed in ``bench/anomaly_eval/worlds.py``; never report on tuning seeds):

1. simulate the organisation's clean traffic with insider cases whose parameters are drawn at
   random after its first two weeks (``watchdog.simulate.drawn``: bursts, leavers' sustained
   changes, low-and-slow exports, off-pattern access; 1.5x-50x the account's own usual, 20
   minutes to three weeks, sudden or gradual, time of day, role);
2. train with ``watchdog train``'s defaults on the first two weeks and replay the whole stream
   through ``watchdog replay --model``'s engine (``bench/anomaly_eval/detect.py``): whatever
   the detector becomes, this measures it as shipped;
3. fit the baselines (robust per-feature z-score, pyod HBOS) on the same rows and features,
   calibrated to the same false-alert target on the same training data;
4. score per family: recall, recall within the issue's deadline, time to first alert, false
   ``anomaly`` alerts per 1,000 account-days, and the issue-13 targets marked PASS/FAIL
   (``bench/anomaly_eval/score.py`` says exactly what counts); print markdown, optionally
   write JSON and the detection envelope PNG (recall over intensity x duration);
5. cost (``bench/anomaly_eval/cost.py``): events per CPU-second of the replay with the model
   against rules only, interleaved rounds on the largest world's evaluated part (goal: at
   least 75%), and the shipped stage's memory per tracked account (goal: at most 2 KB).

Worlds are cached under ``--work`` (by their parameters); models are retrained every run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.anomaly_eval import cost  # noqa: E402
from bench.anomaly_eval import worlds as W  # noqa: E402
from bench.anomaly_eval.baselines import BASELINES, fit_baselines  # noqa: E402
from bench.anomaly_eval.detect import run_world  # noqa: E402
from bench.anomaly_eval.envelope import draw, envelope_doc  # noqa: E402
from bench.anomaly_eval.report import cost_markdown, markdown  # noqa: E402
from bench.anomaly_eval.score import Outcome, examples, match, summarize  # noqa: E402

SHIPPED = "shipped"
RISK_PREFIX = "Risk of account"  # a person-level risk alert's summary


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--sizes", type=_ints, default=W.SIZES, help="accounts, comma-separated")
    p.add_argument("--seeds", default=None,
                   help="'report', 'tuning' or comma-separated seeds (default: report; with "
                   "--quick, tuning)")
    p.add_argument("--n-seeds", type=int, default=None, help="use only the first N seeds")
    p.add_argument("--days", type=int, default=W.DAYS)
    p.add_argument("--train-days", type=int, default=W.TRAIN_DAYS)
    p.add_argument("--per-family", type=int, default=None,
                   help="cases per family and world (default: by size, 3-20)")
    p.add_argument("--quick", action="store_true",
                   help=f"sizes {W.QUICK['sizes']}, {W.QUICK['days']} days, one seed")
    p.add_argument("--no-baselines", action="store_true")
    p.add_argument("--work", type=Path,
                   default=Path(tempfile.gettempdir()) / "watchdog-bench-anomaly")
    p.add_argument("--throughput-rounds", type=int, default=None,
                   help="interleaved replays (rules only / with the model) of the largest "
                   "world's evaluated part (default 3; --quick 1; 0 skips)")
    p.add_argument("--memory-accounts", type=int, default=None,
                   help="accounts for the stage's memory per account (default 200,000; "
                   "--quick 20,000; 0 skips)")
    p.add_argument("--cost-only", action="store_true",
                   help="only step 5, the cost, on the largest size's first seed's world (made "
                   "and trained if not cached)")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--md", type=Path, help="write the markdown tables here")
    p.add_argument("--png", type=Path, help="draw the detection envelope here")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.days = W.QUICK["sizes"], W.QUICK["days"]
        args.n_seeds = args.n_seeds or W.QUICK["seeds"]
    args.seeds = args.seeds or ("tuning" if args.quick else "report")
    if args.throughput_rounds is None:
        args.throughput_rounds = 1 if args.quick else 3
    if args.memory_accounts is None:
        args.memory_accounts = 20_000 if args.quick else 200_000
    seeds = {"report": W.REPORT_SEEDS, "tuning": W.TUNING_SEEDS}.get(args.seeds)
    seed_set = args.seeds if seeds else "explicit"
    seeds = seeds or _ints(args.seeds)
    if args.n_seeds:
        seeds = seeds[:args.n_seeds]
    if seed_set == "explicit" and set(seeds) & set(W.REPORT_SEEDS):
        print("note: report seeds given explicitly; do not tune on them", file=sys.stderr)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.cost_only:
        return _cost_only(args, seeds)
    dets = [SHIPPED] + ([] if args.no_baselines else list(BASELINES))
    outcomes: dict[str, list[Outcome]] = {d: [] for d in dets}
    false = dict.fromkeys(dets, 0)
    account_days = 0.0
    worlds: list[dict[str, Any]] = []
    largest: W.WorldFiles | None = None
    found_examples: dict[str, str] = {}
    false_now = 0
    began = time.perf_counter()
    for size in args.sizes:
        for seed in seeds:
            w = W.make_world(args.work, size, seed, days=args.days, train_days=args.train_days,
                             per_family=args.per_family)
            run = run_world(w, rows=not args.no_baselines)
            if largest is None or size >= largest.accounts:
                largest = w
            alerts = {SHIPPED: run.anomaly}
            if not args.no_baselines:
                fitted = fit_baselines(run.x, run.users, run.times, w.train_end,
                                       run.rule_times)
                alerts |= {k: v.alerts for k, v in fitted.items()}
            ad = w.directory_accounts * w.eval_days
            account_days += ad
            row: dict[str, Any] = {"name": w.root.name, "accounts": size, "seed": seed,
                                   "cases": len(w.cases), "skipped": list(w.skipped),
                                   "account_days": ad, "threshold": run.threshold,
                                   "false": {}, "false_per_1000": {},
                                   "rule_alerts": dict(run.rule_counts),
                                   "seconds": run.seconds,
                                   "alert_examples": [a.summary for a in run.anomaly[:3]]}
            for fam, text in examples(w.cases, run.anomaly).items():
                found_examples.setdefault(fam, text)
            for d in dets:
                outs, f = match(w.cases, alerts[d], w.root.name, w.train_end)
                outcomes[d].extend(outs)
                false[d] += f
                row["false"][d] = f
                row["false_per_1000"][d] = 1000.0 * f / ad
                if d == SHIPPED:
                    false_now = f
            # which of the shipped detector's false alerts are per-window (burst-scale) and
            # which person-level risk alerts (the day-scale detector)
            risk = [a for a in run.anomaly if a.summary.startswith(RISK_PREFIX)]
            row["false_risk"] = match(w.cases, risk, w.root.name, w.train_end)[1]
            print(f"{w.root.name}: false per 1,000 account-days {1000.0 * false_now / ad:.2f}"
                  f" = window {1000.0 * (false_now - row['false_risk']) / ad:.2f} + risk "
                  f"{1000.0 * row['false_risk'] / ad:.2f}", file=sys.stderr)
            worlds.append(row)
    summary = {d: summarize(outcomes[d], false[d], account_days) for d in dets}
    results: dict[str, Any] = {
        "config": {"sizes": list(args.sizes), "seeds": list(seeds), "seed_set": seed_set,
                   "days": args.days, "train_days": args.train_days,
                   "per_family": args.per_family, "work": str(args.work)},
        "summary": summary, "worlds": worlds, "alert_examples": found_examples,
        "envelope": envelope_doc(outcomes),
        "cases": [{"detector": d, "world": o.world, "ttd_s": o.ttd, **o.case.to_doc()}
                  for d in dets for o in outcomes[d]],
        "seconds": time.perf_counter() - began,
    }
    if args.throughput_rounds and largest is not None:
        results["throughput"] = cost.throughput(largest, args.throughput_rounds)
    if args.memory_accounts:
        results["memory"] = cost.memory(args.memory_accounts)
    _report(args, markdown(results), results)
    if args.png:
        draw(outcomes, args.png, f"Detection envelope: recall by intensity x duration "
             f"({seed_set} seeds {list(seeds)}, sizes {list(args.sizes)}; cells: found/cases)")
    return 0


def _cost_only(args: argparse.Namespace, seeds: tuple[int, ...]) -> int:
    w = W.make_world(args.work, max(args.sizes), seeds[0], days=args.days,
                     train_days=args.train_days, per_family=args.per_family)
    cost.ensure_model(w)
    results: dict[str, Any] = {"config": {"world": w.root.name, "work": str(args.work)}}
    if args.throughput_rounds:
        results["throughput"] = cost.throughput(w, args.throughput_rounds)
    if args.memory_accounts:
        results["memory"] = cost.memory(args.memory_accounts)
    _report(args, cost_markdown(results), results)
    return 0


def _report(args: argparse.Namespace, text: str, results: dict[str, Any]) -> None:
    """Print the report; write it as Markdown (``--md``) and the results as JSON (``--json``)."""
    print(text)
    if args.md:
        args.md.write_text(text + "\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
