"""How much later the anomaly service of a split deployment processes a live stream when it
follows the rules service (``detection.follow_rules_seconds``, watchdog/daemon/rules_follow.py)
than when it does not (0).

A Tansu broker on 127.0.0.1; both services in this process (``--only rules`` with the Kafka
sink, ``--only anomaly`` with the shipped default model); events of 30 accounts produced at
``--rate`` per second with their event time the wall time, for ``--seconds``. Every second it
samples how many events the anomaly stage has processed and how long ago the last of those was
produced: the stage's delay behind the stream. Prints the median and p90 delay over the second
half of the run, with and without following (``--rounds`` alternated).

    python bench/bench_follow.py --seconds 300 --rate 50
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import yaml
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.anomaly.conftest import directory_records
from tests.daemon.kafkautil import make_topics, produce
from tests.services.tansu import TansuBroker
from watchdog.alerts.pseudonym import Pseudonymizer
from watchdog.anomaly.stage import load_stage
from watchdog.daemon.app import Service
from watchdog.daemon.config import load_config
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.sinks.memory import MemorySink
from watchdog.engine.engine import Engine
from watchdog.policy import load_policy
from watchdog.rules import default_rules

MODEL = Path(__file__).resolve().parent.parent / "watchdog" / "models" / "default"
KEY = b"bench-follow-key"
ACCOUNTS = 30


def _event(i: int) -> bytes:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    u = f"u{i % ACCOUNTS:03d}"
    return msgspec.json.encode({
        "@timestamp": now, "event": {"id": f"f{i}", "action": "read", "outcome": "success",
                                     "dataset": "crm.access"},
        "user": {"id": u}, "source": {"ip": "10.0.0.1"},
        "data": {"categories": ["contact"], "subject_ids": [f"c{i % 997}"], "records": 1,
                 "purpose": "customer_support"},
        "resource": {"type": "record", "id": f"r{i % 50}"}})


def _config(path: Path, bootstrap: str, follow: float) -> Path:
    path.write_text(yaml.safe_dump({
        "kafka": {"bootstrap": bootstrap, "heartbeat_interval_ms": 300,
                  "session_timeout_ms": 3000},
        "detection": {"follow_rules_seconds": follow},
        "sinks": {"kafka": {}}, "model": str(MODEL),
        "model_state": {"path": str(path.with_suffix(".state"))}}))
    return path


async def _round(bootstrap: str, work: Path, follow: float, rate: float, seconds: float,
                 topic_round: int) -> list[float]:
    cfg_path = _config(work / f"w{topic_round}.yaml", bootstrap, follow)

    def service(only: str) -> Service:
        eng = Engine(load_policy(None), Pseudonymizer(KEY), default_rules())
        cfg = load_config(str(cfg_path), overrides={"detection.only": only})
        if only == "anomaly":
            return Service(cfg, eng, metrics=Metrics(), stages=[load_stage(MODEL, eng)],
                           sinks=[MemorySink()], listen=False)
        return Service(cfg, eng, metrics=Metrics(), listen=False)

    rules, anomaly = service("rules"), service("anomaly")
    runs = [asyncio.create_task(s.run()) for s in (rules, anomaly)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    sent_at: list[float] = []
    delays: list[float] = []
    try:
        await asyncio.sleep(5.0)  # both joined
        t0 = time.monotonic()
        next_sample = t0 + 1.0
        i = 0
        while (now := time.monotonic()) - t0 < seconds:
            due = int((now - t0) * rate)
            while i < due:
                await producer.send("access-logs", _event(i), key=f"u{i % ACCOUNTS:03d}".encode())
                sent_at.append(time.monotonic())
                i += 1
            if now >= next_sample:
                next_sample += 1.0
                done = anomaly.pipeline.detector.processed
                if done and now - t0 > seconds / 2:
                    delays.append(now - sent_at[min(done, len(sent_at)) - 1])
            await asyncio.sleep(0.01)
    finally:
        await producer.stop()
        for s in (rules, anomaly):
            s.request_stop()
        await asyncio.wait(runs, timeout=30)
    return delays


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=300.0)
    p.add_argument("--rate", type=float, default=50.0, help="events per second")
    p.add_argument("--rounds", type=int, default=1, help="pairs (follow, not), alternated")
    a = p.parse_args()
    for r in range(a.rounds):
        for follow in (300.0, 0.0):
            with TansuBroker() as broker, tempfile.TemporaryDirectory() as tmp:
                bs = broker.bootstrap_servers
                await make_topics(bs, partitions=2)
                await produce(bs, "directory", [msgspec.json.encode(x) for x in
                                                directory_records(ACCOUNTS)], key="directory")
                d = await _round(bs, Path(tmp), follow, a.rate, a.seconds, r)
            if not d:
                print(f"round {r} follow_rules_seconds={follow:g}: the anomaly stage processed "
                      f"nothing in the second half of the run (lengthen --seconds)", flush=True)
                continue
            q = statistics.quantiles(d, n=10) if len(d) > 1 else d * 9
            print(f"round {r} follow_rules_seconds={follow:g}: the anomaly stage behind the "
                  f"stream median {statistics.median(d):.1f} s, p90 {q[8]:.1f} s "
                  f"({len(d)} samples)", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
