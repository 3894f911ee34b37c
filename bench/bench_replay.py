"""Replay throughput, per-event latency percentiles and peak memory on simulated data.

    python bench/bench_replay.py [--accounts 2000] [--days 30] [--events-limit N]

Generates (once, cached under bench/out/) a simulated organisation, then:
1. runs `watchdog replay` as a subprocess on the first quarter and on all of the events and
   reports events/s and peak RSS of each: memory must not grow with the number of events;
2. runs the detector in-process, timing every event, for latency percentiles.
Prints a table; asserts nothing (numbers are for the issue notes, not for tests).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


def world_dir(accounts: int, days: int, seed: int) -> Path:
    from watchdog.simulate import SimConfig, build_world, write_world

    d = OUT / f"sim-{accounts}x{days}-s{seed}"
    if not (d / "accounts.jsonl").exists():  # also: a world written before contract 1.1
        d.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        write_world(build_world(SimConfig(seed=seed, accounts=accounts, days=days)), d)
        print(f"simulated {accounts} accounts x {days} days in {time.perf_counter() - t:.1f} s",
              file=sys.stderr)
    return d


def run_replay(events: Path, d: Path) -> tuple[int, float, float, int]:
    """(events, wall seconds, CPU seconds, peak RSS KiB) of a `watchdog replay` subprocess.

    CPU seconds (user + sys) measure "events/s on one core" even on a shared machine, where
    the wall clock also counts the time the process waited for a core."""
    out = OUT / "alerts.jsonl"
    env = {**os.environ, "WATCHDOG_PSEUDONYM_KEY": "bench-key-0123456789abcdef"}
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before, cpu0 = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "watchdog", "replay", "--events", str(events),
                    "--directory", str(d / "directory.jsonl"), "--subjects",
                    str(d / "subjects.jsonl"), "--policy", str(d / "policy.yaml"),
                    "--out", str(out)], check=True, env=env, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - t
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu0
    with events.open("rb") as f:
        n = sum(1 for _ in f)
    return n, seconds, cpu, max(peak, before)


def latency(d: Path, limit: int) -> tuple[float, float, float, float]:
    """p50/p99/p99.9 per-event in-process time (us) and the in-process events/s."""
    from watchdog.decode import Decoder
    from watchdog.engine.detector import Detector
    from watchdog.events import AccessEvent, DirectoryRecord, SubjectRecord, epoch
    from watchdog.files.jsonl import lines, read_records
    from watchdog.policy import load_policy
    from watchdog.replay import build_engine

    engine = build_engine(load_policy(d / "policy.yaml"), b"bench-key-0123456789abcdef")
    for r in read_records(str(d / "directory.jsonl"), Decoder(DirectoryRecord)):
        engine.apply_directory(r)
    for s in read_records(str(d / "subjects.jsonl"), Decoder(SubjectRecord)):
        engine.apply_subject(s)
    det = Detector(engine)
    dec = Decoder(AccessEvent)
    raws = [raw for _, raw in islice(lines(str(d / "events.jsonl")), limit)]
    samples = []
    clock = time.perf_counter_ns
    start = clock()
    for raw in raws:
        t0 = clock()
        ev = dec.decode(raw)
        det.push(ev, epoch(ev.timestamp))  # type: ignore[union-attr]
        samples.append(clock() - t0)
    det.flush()
    total = (clock() - start) / 1e9
    samples.sort()

    def pct(p: float) -> float:
        return samples[min(len(samples) - 1, int(p * len(samples)))] / 1000

    return pct(0.50), pct(0.99), pct(0.999), len(raws) / total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--latency-events", type=int, default=300_000)
    args = ap.parse_args()
    d = world_dir(args.accounts, args.days, args.seed)
    events = d / "events.jsonl"
    quarter = OUT / "events-quarter.jsonl"
    with events.open("rb") as src, quarter.open("wb") as dst:
        total = sum(1 for _ in src)
        src.seek(0)
        dst.writelines(islice(src, total // 4))
    rows = []
    for name, path in (("replay, first quarter", quarter), ("replay, all events", events)):
        n, secs, cpu, rss = run_replay(path, d)
        rows.append((name, f"{n:,}", f"{n / secs:,.0f}", f"{n / cpu:,.0f}",
                     f"{rss / 1024:,.0f} MiB"))
    p50, p99, p999, rate = latency(d, args.latency_events)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'run':<24} {'events':>12} {'events/s':>10} {'ev/CPU-s':>10} {'peak RSS':>10}")
    for r in rows:
        print(f"{r[0]:<24} {r[1]:>12} {r[2]:>10} {r[3]:>10} {r[4]:>10}")
    print(f"in-process detector: {rate:,.0f} events/s; per-event latency p50 {p50:.1f} us, "
          f"p99 {p99:.1f} us, p99.9 {p999:.1f} us")


if __name__ == "__main__":
    main()
