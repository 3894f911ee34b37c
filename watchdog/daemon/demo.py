"""The live demo's helpers (``scripts/demo.sh`` runs the broker and the daemon around them).

``python -m watchdog.daemon.demo setup --bootstrap HOST:PORT --out DIR --listen HOST:PORT``
    waits for the broker, creates the topics, publishes the directory and subject register of
    a simulated organisation (``watchdog.simulate``; the contract's examples if the simulator
    is not there), and writes ``DIR/policy.yaml``, ``DIR/events.jsonl`` and the daemon's
    ``DIR/watchdog.yaml``.

``python -m watchdog.daemon.demo run --bootstrap HOST:PORT --out DIR [--seconds 60]``
    feeds the events to ``access-logs`` at a steady rate, as log shippers would, prints each
    alert as it arrives on ``alerts``, and prints a summary at the end (after ``--seconds``,
    or on Ctrl-C; 0 means until Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "contract" / "examples"
PARTITIONS = 4
SEVERITY_COLOUR = {"critical": "\033[1;31m", "high": "\033[31m", "medium": "\033[33m",
                   "low": "\033[36m"}


def _world() -> tuple[dict[str, Any] | None, list[Any], list[Any], list[Any]]:
    """(policy or None for the default, directory, subjects, events) of a small organisation."""
    try:
        from watchdog.simulate import SimConfig, build_world
    except ImportError:
        if not EXAMPLES.is_dir():
            raise SystemExit("demo: neither watchdog.simulate nor the contract examples "
                             "are available") from None

        def read(name: str) -> list[Any]:
            return [orjson.loads(ln) for ln in (EXAMPLES / name).read_bytes().splitlines()
                    if ln.strip()]

        return (yaml.safe_load((EXAMPLES / "policy.yaml").read_text()), read("directory.jsonl"),
                read("subjects.jsonl"), read("access-events.jsonl"))
    world = build_world(SimConfig(accounts=120, days=3, violations_per_rule=2,
                                  events_per_account_per_day=20))
    return world.policy, world.directory, world.subjects, list(world.events())


async def _admin(bootstrap: str, deadline: float) -> AIOKafkaAdminClient:
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            await admin.start()
            return admin
        except KafkaError:
            await admin.close()
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def publish_state(bootstrap: str, directory: list[Any], subjects: list[Any]) -> None:
    admin = await _admin(bootstrap, time.monotonic() + 20)
    try:
        compact = {"cleanup.policy": "compact"}
        topics = [NewTopic("access-logs", PARTITIONS, 1), NewTopic("alerts", 1, 1),
                  NewTopic("access-logs.dlq", 1, 1),
                  NewTopic("directory", 1, 1, topic_configs=compact),
                  NewTopic("subjects", 1, 1, topic_configs=compact)]
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(topics)
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for d in directory:
            await producer.send("directory", orjson.dumps(d), key=d["user_id"].encode())
        for s in subjects:
            await producer.send("subjects", orjson.dumps(s),
                                key=f"{s['subject_id']}/{s['type']}".encode())
        await producer.flush()
    finally:
        await producer.stop()


def setup(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    policy, directory, subjects, events = _world()
    asyncio.run(publish_state(args.bootstrap, directory, subjects))
    (out / "events.jsonl").write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    config: dict[str, Any] = {
        "listen": args.listen,
        # the demo plays three days in ~45 s: 900 s of event time is a fifth of a second here,
        # and partitions fetched a batch apart must not count as out of order
        "detection": {"lateness_seconds": 900},
        "kafka": {"bootstrap": args.bootstrap, "heartbeat_interval_ms": 300,
                  "session_timeout_ms": 3000, "idle_after_seconds": 2.0},
        "sinks": {"kafka": {}, "jsonl": {"path": str(out / "alerts.jsonl")}},
    }
    if policy is not None:
        (out / "policy.yaml").write_text(yaml.safe_dump(policy, sort_keys=False,
                                                        allow_unicode=True))
        config["policy"] = str(out / "policy.yaml")
    (out / "watchdog.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    print(f"demo: {len(directory)} accounts, {len(subjects)} subject records, "
          f"{len(events):,} access events ready")


async def run(args: argparse.Namespace, events: list[bytes]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    seen: Counter[tuple[str, str]] = Counter()
    sent = 0
    colour = sys.stdout.isatty()

    async def watch() -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=args.bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            consumer.assign([TopicPartition("alerts", 0)])
            while True:
                for recs in (await consumer.getmany(timeout_ms=200)).values():
                    for r in recs:
                        a = orjson.loads(r.value)
                        seen[(a["rule"], a["severity"])] += 1
                        sev = f"{a['severity']:>8}"
                        if colour:
                            sev = f"{SEVERITY_COLOUR.get(a['severity'], '')}{sev}\033[0m"
                        print(f"  [{sev}] {a['rule']:<24} {a['summary'][:110]}", flush=True)
        finally:
            await consumer.stop()

    async def feed() -> None:
        nonlocal sent
        producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, linger_ms=10)
        await producer.start()
        try:
            rate = max(50.0, len(events) / 45)  # the whole organisation in ~45 s
            start = time.monotonic()
            for i, raw in enumerate(events):
                user = orjson.loads(raw).get("user", {}).get("id", "")
                await producer.send("access-logs", raw, key=str(user).encode())
                sent += 1
                if i % 50 == 0:
                    delay = start + i / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
            await producer.flush()
        finally:
            await producer.stop()

    tasks = [asyncio.create_task(watch()), asyncio.create_task(feed())]
    if args.seconds > 0:
        loop.call_later(args.seconds, stop.set)
    await stop.wait()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(f"\ndemo summary: {sent:,} events fed, {sum(seen.values())} alerts received")
    for (rule, severity), n in sorted(seen.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {n:>5}  {rule:<24} {severity}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m watchdog.daemon.demo")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("setup")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--listen", default="127.0.0.1:9464")
    p = sub.add_parser("run")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    if args.command == "setup":
        setup(args)
    else:
        events = [ln for ln in (Path(args.out) / "events.jsonl").read_bytes().splitlines() if ln]
        asyncio.run(run(args, events))
    return 0


if __name__ == "__main__":
    sys.exit(main())
