"""``watchdog simulate``: write a synthetic organisation's logs with known violations."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from watchdog.simulate import catalog as C
from watchdog.simulate.config import SimConfig
from watchdog.simulate.world import build_world
from watchdog.simulate.writer import write_world

_DEFAULT = SimConfig()


def _start(text: str) -> datetime:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date/time: {text!r}") from None
    if dt.tzinfo is None:  # a bare date or local time: the policy's time zone
        dt = dt.replace(tzinfo=ZoneInfo(C.POLICY_TZ))
    return dt


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--accounts", type=int, default=_DEFAULT.accounts,
                        help=f"staff accounts (default {_DEFAULT.accounts})")
    parser.add_argument("--subjects", type=int, default=None,
                        help="data subjects (default 20 per account)")
    parser.add_argument("--days", type=int, default=_DEFAULT.days,
                        help=f"length of the period (default {_DEFAULT.days})")
    parser.add_argument("--seed", type=int, default=_DEFAULT.seed,
                        help=f"random seed (default {_DEFAULT.seed})")
    parser.add_argument("--start", type=_start, default=_DEFAULT.start,
                        help="start of the period, ISO 8601 (default "
                             f"{_DEFAULT.start.isoformat()}; no offset: Asia/Tokyo)")
    parser.add_argument("--violations-per-rule", type=int,
                        default=_DEFAULT.violations_per_rule,
                        help=f"injected violations per rule (default "
                             f"{_DEFAULT.violations_per_rule})")
    parser.add_argument("--events-per-account-per-day", type=float,
                        default=_DEFAULT.events_per_account_per_day,
                        help="mean events of an employee on a working day (default "
                             f"{_DEFAULT.events_per_account_per_day:g})")
    parser.add_argument("--insiders", type=int, default=_DEFAULT.insiders, metavar="N",
                        help="cases of each insider scenario for the anomaly model, after the "
                             "first 40%% of the period; truth rule 'anomaly' (default "
                             f"{_DEFAULT.insiders}; needs about 20 days or more)")
    parser.add_argument("--gzip", action="store_true", help="write events.jsonl.gz")


def run(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    try:
        cfg = SimConfig(seed=args.seed, accounts=args.accounts, subjects=args.subjects,
                        start=args.start, days=args.days,
                        violations_per_rule=args.violations_per_rule,
                        events_per_account_per_day=args.events_per_account_per_day,
                        insiders=args.insiders)
        world = build_world(cfg)
    except ValueError as err:
        print(f"watchdog simulate: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # the register ran out of customers (many insiders)
        print(f"watchdog simulate: error: {err} (--subjects)", file=sys.stderr)
        return 2
    total_ms = world.calendar.end - world.calendar.start
    written = [0]
    try:
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            with Progress(TextColumn("simulating"), BarColumn(),
                          TextColumn("{task.fields[events]:>12,} events"),
                          TimeElapsedColumn(), TimeRemainingColumn(),
                          console=Console(stderr=True), transient=True) as bar:
                task = bar.add_task("simulate", total=total_ms, events=0)

                def tick(n: int, ts: int) -> None:
                    written[0] = n
                    done = total_ms if ts < 0 else ts - world.calendar.start
                    bar.update(task, completed=done, events=n)

                paths = write_world(world, args.out, gzip=args.gzip, progress=tick)
        else:
            def count(n: int, _ts: int) -> None:
                written[0] = n

            paths = write_world(world, args.out, gzip=args.gzip, progress=count)
    except OSError as err:
        print(f"watchdog simulate: error: {args.out}: {err.strerror}", file=sys.stderr)
        return 2
    rules = len({t["rule"] for t in world.ground_truth})
    if world.skipped:
        names = sorted(set(world.skipped))
        print(f"simulate: note: the period has no room for {len(world.skipped)} scenario(s) "
              f"(e.g. working-day ones in a weekend, erasure deadlines longer than the "
              f"period), skipped: {', '.join(names)}", file=sys.stderr)
    print(f"simulate: {written[0]:,} events, {world.accounts:,} accounts, "
          f"{cfg.subject_count:,} subjects, {cfg.days} days from {cfg.start.isoformat()}; "
          f"{len(world.ground_truth)} expected alerts over {rules} rules, "
          f"{len(world.silent)} cases that must raise none -> "
          f"{paths['events'].parent} ({time.perf_counter() - began:.1f}s)")
    return 0
