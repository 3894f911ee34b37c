"""Benchmark of the live daemon against a real Tansu broker on this machine.

1. backlog: N simulated events (default 200k) are produced to ``access-logs`` (4 partitions)
   before ``watchdog run`` (a real subprocess) starts; we time from its first consumed event
   until every event is processed and every partition's offset committed to the end.
2. the raw aiokafka consume rate over the same topic, for scale.
3. latency: events stamped "now" are produced at a fixed rate (default 5k events/s), one in
   200 a violation (a copy to external media); for each alert on the ``alerts`` topic, the wall
   time from producing its completing event to reading the alert (p50/p99). Such a rule judges
   an event alone, so the daemon raises it on arrival: ``detection.lateness_seconds`` (the
   daemon's default, 60 s) bounds only the window rules' alerts, which wait for the order.
4. the daemon's peak RSS (VmHWM).

    .venv/bin/python bench/bench_daemon.py [--events 200000] [--rate 5000] [--seconds 20]
        [--lateness 60] [--model default [--split]]

``--seconds 0`` skips the latency part. The default backlog is sparse in event time (10 days of
a small organisation: ~140 events per 10 minutes), where the anomaly model's per-10-minute work
weighs most; ``--accounts 20000 --days 3 --warm-hours 26 --start 2026-11-02T00:00:00+09:00``
times a day of a large organisation's traffic (~3,000 events per 10 minutes) after a warm
working day, as a high-rate deployment sees it.

Prints a table; asserts nothing (timings depend on the machine). Measured 2026-12-04 (2 shared
vCPUs whose speed drifted by up to 25% within minutes: compare runs made back to back, and
the daemon's rate with the raw aiokafka rate of the same run):

- rules only, per CPU-second: 37-68k events/s over eleven runs (median ~57k; 62.7k and 64.3k
  with raw aiokafka at 275-277k msg/s, 0.18-0.27 of the raw rate of the same run); p50 33 ms,
  p99 53-62 ms at 5k events/s; peak RSS 207-240 MB. The GC policy (``watchdog/gc_policy.py``),
  before -> after in pairs: 47.4k -> 53.5k, 52.2k -> 56.3k, 41.8k -> 45.1k.
- with ``--model default`` in one process, 2026-12-04 after the featurizer's rework
  (column-wise reduction, hourly commits, released lists at once), three interleaved rounds
  against the code before it: 34.9k, 41.9k, 39.1k events per CPU-second (27-42% fewer than
  rules only in the same round: 60.6k, 57.6k, 57.5k), before it 34.4k, 39.4k, 28.9k (29-43%
  fewer); earlier the same day 39-45% fewer. The large organisation's day: 18.1k against
  29.9k rules only (one pair).
- 2026-12-06, feature version 7 (tail score, 7-day window, every account scored from its
  first hour), in one process, two interleaved pairs: rules only 49.1k and 49.4k, with the
  model 35.1k and 33.2k events per CPU-second (72% and 67%: the 75% goal is not met). Note:
  ``--model default`` had been resolved against the working directory (a directory that does
  not exist) and the daemon then ran rules only: 48-55k against 50-57k in the same session.
- ``--split`` (the model as its own service, its own consumer group): the anomaly service
  needs 3.8-4.0 s of CPU for the 200k sparse events against 3.4 s for the rules service (two
  runs; 50-53k events per CPU-second against 59k; rules only in one process, same runs:
  55-62k), so with a core for each service the pair's end-to-end rate is 5-18% below rules
  only. On the large organisation's day the anomaly service is the faster one (4.6 s against
  5.7 s): the model costs no end-to-end rate at all, and the split's wall rate (31.9k) was
  above that of rules only in one process (28.1k). On these 2 cores the broker shares them
  with both services, so wall rates are no measure of what a core each would give.
- the large organisation's day, rules only: 25-39k events per CPU-second (more state per
  event: directory bisects, reidentification windows, the subject register's 400k ids).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.services.procs import ManagedProcess, free_port, wait_for_http  # noqa: E402
from tests.services.tansu import TansuBroker, create_topics  # noqa: E402
from watchdog.simulate import SimConfig, build_world  # noqa: E402

PARTITIONS = 4
LATENESS = 60.0  # the daemon's default


def metric_sum(url: str, name: str) -> float:
    total = 0.0
    for line in httpx.get(url, timeout=5).text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def produce(bs: str, topic: str, docs: list[bytes], key: Any = None) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bs, linger_ms=20, max_batch_size=262144)
    await producer.start()
    t0 = time.perf_counter()
    try:
        futures = [await producer.send(topic, d, key=key(d) if key else None) for d in docs]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(docs) / (time.perf_counter() - t0)


def user_key(raw: bytes) -> bytes:
    return str(orjson.loads(raw)["user"]["id"]).encode()


async def committed_to_end(bs: str, ends: dict[int, int], group: str = "watchdog") -> bool:
    c = AIOKafkaConsumer(bootstrap_servers=bs, group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        for p, end in ends.items():
            if (await c.committed(TopicPartition("access-logs", p)) or 0) < end:
                return False
        return True
    finally:
        await c.stop()


async def raw_consume_rate(bs: str, n: int) -> float:
    c = AIOKafkaConsumer(bootstrap_servers=bs, enable_auto_commit=False,
                         max_partition_fetch_bytes=8 << 20)
    await c.start()
    tps = [TopicPartition("access-logs", p) for p in range(PARTITIONS)]
    c.assign(tps)
    await c.seek_to_beginning(*tps)
    got = 0
    t0 = time.perf_counter()
    try:
        while got < n:
            for recs in (await c.getmany(timeout_ms=1000, max_records=10000)).values():
                got += len(recs)
        return got / (time.perf_counter() - t0)
    finally:
        await c.stop()


def live_events(templates: list[dict[str, Any]], violator: dict[str, Any], n: int,
                every: int = 200) -> list[dict[str, Any]]:
    """Events to be stamped at send time: ids unique, no sequences (no gap noise)."""
    out = []
    for i in range(n):
        if i % every == every - 1:
            ev = dict(violator, event={"id": f"live-{i}", "action": "copy"},
                      destination={"kind": "external_media"})
        else:
            t = templates[i % len(templates)]
            ev = dict(t, event={"id": f"live-{i}", "action": t["event"]["action"],
                                "dataset": t["event"].get("dataset", "live")})
        out.append(ev)
    return out


async def latency(bs: str, events: list[dict[str, Any]], rate: int) -> list[float]:
    """Produce at ``rate``/s, stamping each event now; latency of every resulting alert."""
    sent: dict[str, float] = {}
    lat: list[float] = []
    consumer = AIOKafkaConsumer(bootstrap_servers=bs, enable_auto_commit=False,
                                fetch_max_wait_ms=20)
    await consumer.start()
    tp = TopicPartition("alerts", 0)
    consumer.assign([tp])
    await consumer.seek_to_end(tp)
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            for recs in (await consumer.getmany(timeout_ms=100)).values():
                now = time.time()
                for r in recs:
                    eid = orjson.loads(r.value)["event_ids"][-1]
                    if eid in sent:
                        lat.append(now - sent[eid])

    watcher = asyncio.create_task(watch())
    producer = AIOKafkaProducer(bootstrap_servers=bs, linger_ms=2)
    await producer.start()
    tick, per_tick = 0.01, max(1, rate // 100)
    start = time.monotonic()
    for i in range(0, len(events), per_tick):
        now = time.time()
        stamp = datetime.fromtimestamp(now, UTC).isoformat()
        for ev in events[i:i + per_tick]:
            ev["@timestamp"] = stamp
            sent[ev["event"]["id"]] = now
            await producer.send("access-logs", orjson.dumps(ev),
                                key=str(ev["user"]["id"]).encode())
        delay = start + (i // per_tick + 1) * tick - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    await producer.flush()
    await producer.stop()
    # the last alerts: once every partition has been quiet for idle_after_seconds
    expected = len(events) // 200
    deadline = time.monotonic() + 30

    async def enough() -> bool:
        return len(lat) >= expected or time.monotonic() > deadline

    await until(enough, 0.1)
    stop.set()
    await watcher
    await consumer.stop()
    return lat


async def until(cond: Any, interval: float = 0.05) -> None:
    while True:
        if await cond():
            return
        await asyncio.sleep(interval)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


async def main(args: argparse.Namespace) -> None:
    world = build_world(SimConfig(accounts=args.accounts or max(100, args.events // 220),
                                  days=args.days, start=datetime.fromisoformat(args.start)))
    events, warm, first = [], 0, None
    for ev in world.events():
        t = datetime.fromisoformat(ev["@timestamp"]).timestamp()
        first = t if first is None else first
        if t - first < args.warm_hours * 3600:
            warm += 1  # read before the timing starts (features warm, models scoring)
        events.append(orjson.dumps(ev))
        if len(events) - warm >= args.events:
            break
    timed = len(events) - warm
    staff = [orjson.loads(e) for e in events[:20000]]
    # background: the batch jobs' accounts (lawful at any hour); violations: a staff member
    templates = [e for e in staff if e["user"]["id"].startswith("svc-")]
    violator = next(e for e in staff if e["user"]["id"].startswith("e")
                    and e.get("data", {}).get("categories"))

    with TemporaryDirectory() as tmp, TansuBroker() as broker:
        bs = broker.bootstrap_servers
        await create_topics(bs, ["access-logs"], partitions=PARTITIONS)
        await create_topics(bs, ["directory", "subjects", "alerts", "access-logs.dlq"])
        await produce(bs, "directory", [orjson.dumps(d) for d in world.directory],
                      key=lambda d: str(orjson.loads(d)["user_id"]).encode())
        await produce(bs, "subjects", [orjson.dumps(d) for d in world.subjects])
        produce_rate = await produce(bs, "access-logs", events, key=user_key)
        policy = Path(tmp) / "policy.yaml"
        policy.write_text(yaml.safe_dump(world.policy))
        env = dict(os.environ, WATCHDOG_PSEUDONYM_KEY="bench-key-0123456789abcdef")
        # one daemon (rules, and the model if given), or with --split two services that share
        # the work: the rules, and the model in its own consumer group
        roles = ["rules", "anomaly"] if args.split else [None]
        with ExitStack() as stack:
            procs, urls = [], []
            for role in roles:
                port = free_port()
                cfg = Path(tmp) / f"watchdog-{role}.yaml"
                cfg.write_text(yaml.safe_dump({
                    "kafka": {"bootstrap": bs, "heartbeat_interval_ms": 300,
                              "session_timeout_ms": 3000, "idle_after_seconds": 1.0,
                              "max_poll_records": 5000},
                    "listen": f"127.0.0.1:{port}", "policy": str(policy),
                    "detection": {"lateness_seconds": args.lateness, "only": role},
                    "delivery": {"max_pending": 100000},
                    **({"model": args.model} if args.model else {}),
                }))
                procs.append(stack.enter_context(ManagedProcess(
                    f"watchdog-{role or 'all'}", [sys.executable, "-m", "watchdog", "run",
                                                  "--config", str(cfg)], env=env, cwd=ROOT)))
                urls.append(f"http://127.0.0.1:{port}/metrics")
                wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60, proc=procs[-1])

            async def consumed(n: int) -> bool:
                return all(metric_sum(u, "watchdog_events_total") >= n for u in urls)

            async def started() -> bool:
                return any(metric_sum(u, "watchdog_events_total") >= 1 for u in urls)

            await until(started if not warm else lambda: consumed(warm), 0.01)
            t0 = time.perf_counter()
            cpu0 = [_cpu_seconds(p.pid) for p in procs]
            await until(lambda: consumed(len(events)))
            t_processed = time.perf_counter() - t0
            # the machine is shared (broker, this script, other jobs): the daemon's own CPU time
            # gives the per-core rate
            cpus = [_cpu_seconds(p.pid) - c0 for p, c0 in zip(procs, cpu0, strict=True)]
            cpu = sum(cpus)
            c = AIOKafkaConsumer(bootstrap_servers=bs)
            await c.start()
            tps = [TopicPartition("access-logs", p) for p in range(PARTITIONS)]
            ends = {tp.partition: off for tp, off in (await _ends(c, tps)).items()}
            await c.stop()
            groups = ["watchdog", "watchdog.anomaly"] if args.split else ["watchdog"]
            for g in groups:
                await until(lambda g=g: committed_to_end(bs, ends, g))
            t_committed = time.perf_counter() - t0
            backlog_alerts = sum(metric_sum(u, "watchdog_alerts_total") for u in urls)
            lat: list[float] = []
            if args.seconds:
                live = live_events(templates, violator, args.rate * args.seconds)
                lat = await latency(bs, live, args.rate)
            rss = max(_peak_rss(p.pid) for p in procs)
        consume_rate = await raw_consume_rate(bs, len(events))

    model = f", model {Path(args.model).name}" if args.model else ", rules only"
    if args.split:
        model += " (split: rules / anomaly services)"
    rows = [
        ("events produced (simulated, 4 partitions)", f"{len(events):,} at {produce_rate:,.0f}/s"
         + (f"; {warm:,} of the first {args.warm_hours:g} h read before timing" if warm else "")),
        ("daemon: backlog decoded+detected" + model,
         f"{timed / t_processed:,.0f} events/s ({t_processed:.1f} s)"),
        ("daemon: ... per CPU-second of the daemon" + ("s" if args.split else ""),
         f"{timed / cpu:,.0f} events/s ({' + '.join(f'{c:.1f}' for c in cpus)} s of "
         "CPU)"),
        ("daemon: ... and every offset committed",
         f"{timed / t_committed:,.0f} events/s ({t_committed:.1f} s, "
         f"{backlog_alerts:.0f} alerts)"),
        ("raw aiokafka getmany, same topic", f"{consume_rate:,.0f} msg/s"),
        (f"produce->alert at {args.rate:,} ev/s (lateness {args.lateness:g} s)",
         f"p50 {pct(lat, 50) * 1000:,.0f} ms, p99 {pct(lat, 99) * 1000:,.0f} ms "
         f"({len(lat)} alerts)"),
        ("daemon peak RSS (VmHWM)", f"{rss / 1024:,.0f} MB"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 40}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


async def _ends(c: AIOKafkaConsumer, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """End offsets from a fetch's high watermark (Tansu's ListOffsets(latest) is off)."""
    c.assign(tps)
    await c.seek_to_end(*tps)
    await c.getmany(timeout_ms=500)
    return {tp: c.highwater(tp) or 0 for tp in tps}


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far: every thread's, those that ended included
    (/proc/PID/stat fields 14 and 15), and its children's once they ended (16 and 17; the
    daemon starts none, so nothing can hide there)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _peak_rss(pid: int | None) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="events timed")
    parser.add_argument("--accounts", type=int, default=0,
                        help="simulated staff accounts (default: events / 220)")
    parser.add_argument("--days", type=int, default=10, help="simulated period")
    parser.add_argument("--start", default="2026-11-01T00:00:00+09:00",
                        help="its first day (the default is a Sunday)")
    parser.add_argument("--warm-hours", type=float, default=0.0,
                        help="events of the first hours read before the timing starts (26: "
                             "every account past the anomaly model's 25 h warm-up)")
    parser.add_argument("--rate", type=int, default=5_000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--lateness", type=float, default=LATENESS,
                        help="detection.lateness_seconds of the daemon (the latency floor)")
    parser.add_argument("--split", action="store_true",
                        help="with --model: two services, `--only rules` and `--only anomaly`")
    parser.add_argument("--model", help="anomaly model directory: the daemon runs with it "
                        "(compare the backlog rate with and without: issue #4)")
    options = parser.parse_args()
    if options.model and Path(options.model).exists():
        # a directory here; otherwise a name the daemon resolves (``default``: the packaged
        # model; resolving it against the working directory measured rules only)
        options.model = str(Path(options.model).resolve())
    asyncio.run(main(options))
