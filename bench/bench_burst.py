"""A burst against the live daemon: memory, consumer lag and recovery, on this machine.

``watchdog run`` (a real subprocess) consumes ``access-logs`` (4 partitions) from a real Tansu
broker. Events stamped "now" (event time = wall time, as a live shipper sends them) are
produced at a sustained rate (default 2,000 events/s for 15 s), then a 10x burst (20,000
events/s for 20 s), then the sustained rate again until the daemon has caught up (plus a few
seconds), at most ``--max-recovery`` seconds. Every 0.5 s the daemon's RSS (``/proc/PID/status``
VmRSS/VmHWM) and its ``watchdog_consumer_lag`` (summed over the access-logs partitions, from
/metrics) are sampled, with the events produced minus the events it consumed (its
``watchdog_events_total``) as a second view of the backlog.

Reported: peak RSS, max lag, and the time to recover: from the end of the burst until the lag
is back to ~0 (at most a quarter second of the sustained rate, by both views). The events are
the simulated organisation's batch-job accounts (cloned into 96 accounts so that keys spread
over the partitions), lawful at any hour, with one violation (personal data to a USB stick)
in 1,000 events, so the alert path carries load too. What the producer achieved is printed:
on a small machine it may fall short of the burst rate (the broker, the daemon and this
producer share the CPUs).

    .venv/bin/python bench/bench_burst.py [--base-rate 2000] [--burst-rate 20000]
        [--warmup 15] [--burst 20] [--max-recovery 90] [--lateness 2]

Prints a table; asserts nothing (timings depend on the machine). Stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
import orjson
import yaml
from aiokafka import AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.services.procs import ManagedProcess, free_port, wait_for_http  # noqa: E402
from tests.services.tansu import TansuBroker, create_topics  # noqa: E402
from watchdog.simulate import SimConfig, build_world  # noqa: E402

PARTITIONS = 4
TOPIC = "access-logs"
SAMPLE = 0.5  # seconds between samples
TICK = 0.01  # seconds between produce rounds
CLONES = 16  # copies of each batch-job account (6 -> 96 keys)
VIOLATION_EVERY = 1000
ID_MARK, TS_MARK = b"@@ID@@", b"@@TS@@"


# -- events ------------------------------------------------------------------------------------
Template = tuple[int, bytes, tuple[bytes, bytes, bytes, bool]]  # partition, key, split event


def templates() -> tuple[list[Template], list[dict[str, Any]], dict[str, Any]]:
    """(partition, key, event split around its id and timestamp) for the batch-job accounts'
    events; the directory records (clones included); the violation, policy and subjects."""
    world = build_world(SimConfig(accounts=100, days=2))
    out: list[Template] = []
    staff: dict[str, Any] | None = None
    seen = 0
    for ev in world.events():
        uid = ev["user"]["id"]
        if staff is None and uid.startswith("e") and ev.get("data", {}).get("categories"):
            staff = ev
        if not uid.startswith("svc-"):
            continue
        seen += 1
        if seen > 4000:
            break
        clone = f"{uid}-{seen % CLONES:02d}"
        e = dict(ev, user={"id": clone})
        e["event"] = {k: v for k, v in ev["event"].items() if k != "sequence"}  # no gap noise
        out.append(_template(clone, e))
    assert staff is not None
    bad = dict(staff, data=dict(staff["data"], categories=["contact"]),
               destination={"kind": "external_media"})
    bad["event"] = {"action": "copy", "outcome": "success",
                    "dataset": staff["event"].get("dataset", "crm.audit")}
    directory = list(world.directory)
    for rec in world.directory:
        if rec["user_id"].startswith("svc-"):
            directory += [dict(rec, user_id=f"{rec['user_id']}-{i:02d}") for i in range(CLONES)]
    return out, directory, {"violation": _template(staff["user"]["id"], bad),
                            "policy": world.policy, "subjects": world.subjects}


def _template(user: str, ev: dict[str, Any]) -> Template:
    ev = dict(ev, event=dict(ev["event"], id="@@ID@@"))
    ev["@timestamp"] = "@@TS@@"
    raw = orjson.dumps(ev)
    head, rest = raw.split(ID_MARK)
    if TS_MARK in head:  # the timestamp comes first in the document
        a, b = head.split(TS_MARK)
        split = (a, b, rest, True)
    else:
        b, c = rest.split(TS_MARK)
        split = (head, b, c, False)
    return zlib.crc32(user.encode()) % PARTITIONS, user.encode(), split


def render(split: tuple[bytes, bytes, bytes, bool], eid: bytes, ts: bytes) -> bytes:
    a, b, c, ts_first = split
    return a + ts + b + eid + c if ts_first else a + eid + b + ts + c


def event_stream(normal: list[Template], violation: Template) -> Iterator[tuple[Template, int]]:
    i = 0
    while True:
        for tpl in normal:
            i += 1
            yield (violation if i % VIOLATION_EVERY == 0 else tpl), i


# -- producing -----------------------------------------------------------------------------------
@dataclass
class Producer:
    producer: AIOKafkaProducer
    events: Iterator[tuple[Template, int]]
    produced: int = 0

    async def phase(self, rate: float, seconds: float,
                    done: Callable[[], bool] = lambda: False) -> tuple[int, float]:
        """Produce at ``rate`` events/s for ``seconds`` (or until ``done()``); returns the events
        sent and the seconds it took. One round every TICK; the acks of a round are awaited
        before the next, so a broker that cannot keep up slows the producer (reported)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        while True:
            elapsed = loop.time() - start
            if elapsed >= seconds or done():
                break
            due = min(int(rate * elapsed) - sent, int(rate * 0.1) + 1)
            if due > 0:
                await self._round(due)
                sent += due
            await asyncio.sleep(TICK)
        return sent, loop.time() - start

    async def _round(self, n: int) -> None:
        now = time.time()
        ts = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
        ts_b = ts.replace("+00:00", "Z").encode()
        ms = int(now * 1000)
        batches = [self.producer.create_batch() for _ in range(PARTITIONS)]
        futures = []
        for _ in range(n):
            (p, key, split), i = next(self.events)
            value = render(split, b"burst-%d" % i, ts_b)
            if batches[p].append(key=key, value=value, timestamp=ms) is None:
                futures.append(await self.producer.send_batch(batches[p], TOPIC, partition=p))
                batches[p] = self.producer.create_batch()
                batches[p].append(key=key, value=value, timestamp=ms)
        for p, batch in enumerate(batches):
            if batch.record_count():
                futures.append(await self.producer.send_batch(batch, TOPIC, partition=p))
        await asyncio.gather(*futures)
        self.produced += n


# -- sampling ------------------------------------------------------------------------------------
@dataclass
class Sample:
    t: float  # seconds since the start of the run
    phase: str
    rss_kb: int
    hwm_kb: int
    lag: float | None  # watchdog_consumer_lag summed over access-logs (None: no answer)
    backlog: float | None  # produced - consumed
    alerts: float | None  # watchdog_alerts_total


@dataclass
class Sampler:
    pid: int
    metrics_url: str
    prod: Producer
    t0: float = field(default_factory=time.monotonic)
    phase: str = "warmup"
    samples: list[Sample] = field(default_factory=list)

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=SAMPLE * 0.9) as http:
            nxt = time.monotonic()
            while True:
                lag = consumed = alerts = None
                try:
                    text = (await http.get(self.metrics_url)).text
                    lag, consumed, alerts = 0.0, 0.0, 0.0
                    for line in text.splitlines():
                        if line.startswith("watchdog_consumer_lag{") and f'"{TOPIC}"' in line:
                            lag += float(line.rsplit(" ", 1)[1])
                        elif line.startswith("watchdog_events_total{"):
                            consumed += float(line.rsplit(" ", 1)[1])
                        elif line.startswith("watchdog_alerts_total{"):
                            alerts += float(line.rsplit(" ", 1)[1])
                except httpx.HTTPError:
                    pass  # a daemon too busy to answer in time: recorded as no answer
                rss, hwm = _mem(self.pid)
                backlog = None if consumed is None else self.prod.produced - consumed
                self.samples.append(Sample(time.monotonic() - self.t0, self.phase, rss, hwm,
                                           lag, backlog, alerts))
                nxt += SAMPLE
                await asyncio.sleep(max(0.0, nxt - time.monotonic()))

    def caught_up(self, threshold: float) -> bool:
        s = self.samples[-1] if self.samples else None
        return (s is not None and s.lag is not None and s.backlog is not None
                and s.lag <= threshold and s.backlog <= threshold)


def _mem(pid: int) -> tuple[int, int]:
    rss = hwm = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


# -- the run -------------------------------------------------------------------------------------
async def main(args: argparse.Namespace) -> int:
    normal, directory, extra = templates()
    with TemporaryDirectory() as tmp, TansuBroker() as broker:
        bs = broker.bootstrap_servers
        await create_topics(bs, [TOPIC], partitions=PARTITIONS)
        await create_topics(bs, ["directory", "subjects", "alerts", "access-logs.dlq"])
        setup = AIOKafkaProducer(bootstrap_servers=bs, linger_ms=20)
        await setup.start()
        try:
            for rec in directory:
                await setup.send("directory", orjson.dumps(rec), key=rec["user_id"].encode())
            for rec in extra["subjects"]:
                await setup.send("subjects", orjson.dumps(rec),
                                 key=f"{rec['subject_id']}/{rec['type']}".encode())
            await setup.flush()
        finally:
            await setup.stop()
        port = free_port()
        policy = Path(tmp) / "policy.yaml"
        policy.write_text(yaml.safe_dump(extra["policy"]))
        cfg = Path(tmp) / "watchdog.yaml"
        cfg.write_text(yaml.safe_dump({
            "kafka": {"bootstrap": bs, "heartbeat_interval_ms": 300, "session_timeout_ms": 3000,
                      "idle_after_seconds": 1.0},
            "listen": f"127.0.0.1:{port}", "policy": str(policy),
            "detection": {"lateness_seconds": args.lateness},
        }))
        env = dict(os.environ, WATCHDOG_PSEUDONYM_KEY="bench-key-0123456789abcdef")
        with ManagedProcess("watchdog", [sys.executable, "-m", "watchdog", "run", "--config",
                                         str(cfg)], env=env, cwd=ROOT, stop_timeout=15) as proc:
            base = f"http://127.0.0.1:{port}"
            wait_for_http(f"{base}/healthz", timeout=60, proc=proc)

            def consuming() -> bool:
                r = httpx.get(f"{base}/readyz", timeout=2)
                return r.status_code == 200 and len(r.json().get("partitions", [])) == PARTITIONS

            deadline = time.monotonic() + 60
            while not consuming():  # the group join (bounded)
                if time.monotonic() > deadline or not proc.running:
                    print("the daemon did not start consuming", file=sys.stderr)
                    return 1
                await asyncio.sleep(0.1)
            rss_idle = _mem(proc.pid or 0)[0]
            producer = AIOKafkaProducer(bootstrap_servers=bs, acks=1, linger_ms=5)
            await producer.start()
            prod = Producer(producer, event_stream(normal, extra["violation"]))
            sampler = Sampler(proc.pid or 0, f"{base}/metrics", prod)
            task = asyncio.create_task(sampler.run())
            threshold = max(100.0, args.base_rate * 0.25)
            phases: list[tuple[str, float, int, float]] = []
            try:
                n, took = await prod.phase(args.base_rate, args.warmup)
                phases.append(("sustained", args.base_rate, n, took))
                sampler.phase = "burst"
                n, took = await prod.phase(args.burst_rate, args.burst)
                phases.append(("burst (10x)", args.burst_rate, n, took))
                burst_end = time.monotonic() - sampler.t0
                sampler.phase = "after"
                recovered: list[float] = []

                def settled() -> bool:
                    if not recovered and sampler.samples[-1].t > burst_end \
                            and sampler.caught_up(threshold):
                        recovered.append(sampler.samples[-1].t - burst_end)
                    return bool(recovered) and (
                        time.monotonic() - sampler.t0 - burst_end - recovered[0] >= args.settle)

                n, took = await prod.phase(args.base_rate, args.max_recovery, settled)
                phases.append(("sustained again", args.base_rate, n, took))
            finally:
                task.cancel()
                await producer.stop()
            t_stop = time.monotonic()
            code = proc.stop()
            stop_s = time.monotonic() - t_stop
            processed = _processed(proc.log_text())

    _report(args, phases, sampler.samples, recovered, threshold, rss_idle, code, stop_s,
            processed)
    return 0


def _processed(log: str) -> str:
    for line in reversed(log.splitlines()):
        if line.startswith("{") and '"stopped"' in line:
            doc = orjson.loads(line)
            return f"{doc.get('processed', '?')} events processed at exit"
    return "?"


def _report(args: argparse.Namespace, phases: list[tuple[str, float, int, float]],
            samples: list[Sample], recovered: list[float], threshold: float, rss_idle: int,
            code: int | None, stop_s: float, processed: str) -> None:
    def mb(kb: float) -> str:
        return f"{kb / 1024:,.0f} MB"

    print(f"\n{'phase':<16} {'target ev/s':>11} {'produced':>9} {'achieved ev/s':>13} "
          f"{'max lag':>8} {'max backlog':>11} {'peak RSS':>9} {'no answer':>9}")
    print("-" * 94)
    names = {"sustained": "warmup", "burst (10x)": "burst", "sustained again": "after"}
    for name, rate, n, took in phases:
        ss = [s for s in samples if s.phase == names[name]]
        lags = [s.lag for s in ss if s.lag is not None]
        backlogs = [s.backlog for s in ss if s.backlog is not None]
        print(f"{name:<16} {rate:>11,.0f} {n:>9,} {n / took:>13,.0f} "
              f"{max(lags, default=0):>8,.0f} {max(backlogs, default=0):>11,.0f} "
              f"{mb(max((s.rss_kb for s in ss), default=0)):>9} "
              f"{sum(s.lag is None for s in ss):>9}")
    lags = [s.lag for s in samples if s.lag is not None]
    backlogs = [s.backlog for s in samples if s.backlog is not None]
    rows = [
        ("daemon RSS idle -> peak (VmHWM)",
         f"{mb(rss_idle)} -> {mb(max((s.hwm_kb for s in samples), default=0))}"),
        ("max consumer lag (watchdog_consumer_lag, sum)", f"{max(lags, default=0):,.0f} records"),
        ("max backlog (produced - consumed)", f"{max(backlogs, default=0):,.0f} events"),
        (f"time to recover (lag and backlog <= {threshold:,.0f})",
         f"{recovered[0]:.1f} s after the burst" if recovered
         else f"not within {args.max_recovery:.0f} s"),
        ("alerts raised (watchdog_alerts_total)",
         f"{max((s.alerts for s in samples if s.alerts is not None), default=0):,.0f} "
         f"(one violation in {VIOLATION_EVERY:,} events)"),
        ("samples (every 0.5 s) / without a /metrics answer",
         f"{len(samples)} / {sum(s.lag is None for s in samples)}"),
        ("detection.lateness_seconds", f"{args.lateness:g} (events wait this long to be ordered)"),
        ("SIGTERM at the end", f"exit {code} in {stop_s:.1f} s, {processed}"),
    ]
    width = max(len(r[0]) for r in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-rate", type=float, default=2000)
    parser.add_argument("--burst-rate", type=float, default=20000)
    parser.add_argument("--warmup", type=float, default=15, help="seconds at the base rate")
    parser.add_argument("--burst", type=float, default=20, help="seconds at the burst rate")
    parser.add_argument("--max-recovery", type=float, default=90,
                        help="at most this long at the base rate after the burst")
    parser.add_argument("--settle", type=float, default=3,
                        help="seconds to keep producing once recovered")
    parser.add_argument("--lateness", type=float, default=2.0)
    sys.exit(asyncio.run(main(parser.parse_args())))
