"""``watchdog run`` without and with the archive, in interleaved rounds on one backlog of a real
Tansu broker (step 1 of bench/bench_archive.py): events per CPU-second of each daemon until
every offset is committed, its CPU by thread and by stretch; ``--before`` trees, ``--live``,
``--together``, ``--ab`` (bench/daemon_ab.py) as its docstring says."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import orjson
import yaml

from bench.archive_cost import BATCH, KEY, ROOT
from bench.archive_cost.round_table import ab_rows, ab_run, round_rows
from bench.archive_cost.traffic import bench_world
from bench.bench_daemon import (
    PARTITIONS,
    _cpu_seconds,
    metric_sum,
    produce,
    until,
    user_key,
)
from bench.daemon_probe import (
    at_least,
    committed,
    minor_faults,
    thread_cpu,
    topic_ends,
)
from tests.services.procs import ManagedProcess, free_port, wait_for_http
from tests.services.tansu import MotoS3, TansuBroker, create_topics


async def daemon_cost(args: argparse.Namespace) -> list[tuple[str, str]]:
    warm = args.live or 0
    world, events = bench_world(args.events, warm)
    with TemporaryDirectory() as tmp, TansuBroker() as broker, ExitStack() as stack:
        s3 = stack.enter_context(MotoS3()) if args.s3 else None
        bs = broker.bootstrap_servers
        if args.broker_cpus:  # every thread of it
            assert broker.proc is not None
            cpus = {int(c) for c in args.broker_cpus.split(",")}
            for task in os.listdir(f"/proc/{broker.proc.pid}/task"):
                os.sched_setaffinity(int(task), cpus)
        pin = ["taskset", "-c", args.daemon_cpus] if args.daemon_cpus else []
        await create_topics(bs, ["access-logs"], partitions=PARTITIONS)
        await create_topics(bs, ["directory", "subjects", "alerts", "access-logs.dlq"])
        await produce(bs, "directory", [orjson.dumps(d) for d in world.directory],
                      key=lambda d: str(orjson.loads(d)["user_id"]).encode())
        await produce(bs, "subjects", [orjson.dumps(d) for d in world.subjects])
        if not warm:
            await produce(bs, "access-logs", events, key=user_key)
            ends = await topic_ends(bs, "access-logs")
        policy = Path(tmp) / "policy.yaml"
        policy.write_text(yaml.safe_dump(world.policy))
        env = dict(os.environ, WATCHDOG_PSEUDONYM_KEY=KEY)
        s3_env = dict(env, WATCHDOG_ARCHIVE_S3_ACCESS_KEY_ID="test",
                      WATCHDOG_ARCHIVE_S3_SECRET_ACCESS_KEY="test")  # noqa: S106 (moto)
        # (name, archived, tree the daemon runs from: ``-m`` puts its directory first on
        # sys.path, so ``--before`` runs another commit's code from its copy)
        variants = [("without", False, ROOT), ("with", True, ROOT)]
        for tree in args.before or ():
            variants.append((f"with, {Path(tree).name}", True, Path(tree)))
        if args.ab:  # one daemon per round, the archive handed every other few batches
            variants = [("A/B", True, ROOT)]
        model = getattr(args, "model", None)  # bench/bench_model_share.py: no archive
        if model:
            variants = [("rules only", False, ROOT), ("model", False, ROOT)]
            for tree in args.before or ():
                variants.append((f"model, {Path(tree).name}", False, Path(tree)))
        ab: dict[str, list[float]] = {}
        results: dict[str, list[float]] = {name: [] for name, _a, _t in variants}
        split: dict[str, list[tuple[float, float]]] = {name: [] for name, _a, _t in variants}
        # CPU s of the event loop / other threads until every event was consumed, then until
        # every offset was committed, and that last stretch's wall seconds
        tails: dict[str, list[tuple[float, ...]]] = {name: [] for name, _a, _t in variants}
        batches: dict[str, list[float]] = {name: [] for name, _a, _t in variants}

        async def one(name: str, archived: bool, tree: Path, run: int) -> None:
            nonlocal ends
            port = free_port()  # never one handed out before: daemons start at once
            topic = f"access-logs-{run}" if warm else "access-logs"
            if warm:  # a topic of its own: the warm-up's events, then the timed ones
                await create_topics(bs, [topic], partitions=PARTITIONS)
                await produce(bs, topic, events[:warm], key=user_key)
                ends = await topic_ends(bs, topic)
            cfg: dict[str, Any] = {
                "kafka": {"bootstrap": bs, "heartbeat_interval_ms": 300,
                          "session_timeout_ms": 3000, "idle_after_seconds": 1.0,
                          "max_poll_records": BATCH, "group": f"bench-{run}"},
                "listen": f"127.0.0.1:{port}", "policy": str(policy),
                "delivery": {"max_pending": 100000},
                "topics": {"access_logs": topic},
                "sinks": {"jsonl": {"path": str(Path(tmp) / f"alerts-{run}.jsonl")}},
            }
            if model and name != "rules only":
                cfg["model"] = model
            if archived:
                if s3 is not None:
                    bucket = s3.create_bucket()
                    location = f"s3://{bucket}/a?endpoint={s3.endpoint}"
                else:
                    location = str(Path(tmp) / f"archive-{run}")
                cfg["archive"] = {"location": location}
                if args.flush_seconds:
                    cfg["archive"]["flush_seconds"] = args.flush_seconds
            path = Path(tmp) / f"watchdog-{run}.yaml"
            path.write_text(yaml.safe_dump(cfg))
            command = [*pin, sys.executable, "-m", "watchdog", "run", "--config", str(path)]
            run_env = s3_env if archived and s3 else env
            ab_out = Path(tmp) / f"ab-{run}.json"
            if args.ab:
                command[len(pin) + 2] = "bench.daemon_ab"
                run_env = dict(run_env, WATCHDOG_BENCH_AB_OUT=str(ab_out))
            with ManagedProcess(f"watchdog-{run}", command, env=run_env, cwd=tree) as proc:
                url = f"http://127.0.0.1:{port}/metrics"
                await asyncio.to_thread(wait_for_http, f"http://127.0.0.1:{port}/healthz",
                                        timeout=60, proc=proc)

                async def started(u: str = url) -> bool:
                    return metric_sum(u, "watchdog_events_total") >= 1

                if warm:  # the warm-up consumed, written and committed
                    await until(lambda u=url: at_least(u, warm), 0.1)
                    await until(lambda g=f"bench-{run}", e=ends, t=topic:
                                committed(bs, t, e, g), 0.1)

                async def consumed(u: str = url) -> bool:
                    return metric_sum(u, "watchdog_events_total") >= len(events)

                await until(started, 0.01)
                pid = proc.pid
                assert pid is not None  # started: it answered /healthz
                cpu0 = _cpu_seconds(pid)
                threads0 = thread_cpu(pid)
                faults0 = minor_faults(pid)
                broker0 = _cpu_seconds(broker.proc.pid) if broker.proc else 0.0
                if warm:  # the timed events, sent while the daemon runs
                    t_p = time.perf_counter()
                    await produce(bs, topic, events[warm:], key=user_key)
                    ends = await topic_ends(bs, topic)
                    print(f"produced {len(events) - warm:,} events in "
                          f"{time.perf_counter() - t_p:.1f} s", file=sys.stderr)
                # (a scrape every 0.25 s while consuming: the same small cost either way)
                await until(consumed, 0.25)
                cpu_c = _cpu_seconds(pid) - cpu0
                main_c = thread_cpu(pid).get(pid, 0.0) - threads0.get(pid, 0)
                t_c = time.perf_counter()
                await until(lambda g=f"bench-{run}", e=ends, t=topic: committed(bs, t, e, g))
                tail = time.perf_counter() - t_c
                cpu = _cpu_seconds(pid) - cpu0
                threads = thread_cpu(pid)
                # consumed batches (every topic): fewer events per batch, more per-batch
                # work per event
                batches[name].append(metric_sum(url, "watchdog_batch_seconds_count"))
                f_all, f_main = (b - a for a, b in zip(faults0, minor_faults(pid),
                                                      strict=True))
                broker_cpu = (_cpu_seconds(broker.proc.pid) if broker.proc else 0.0) - broker0
            main = threads.get(pid, 0.0) - threads0.get(pid, 0.0)
            split[name].append((main, cpu - main))
            tails[name].append((main_c, cpu_c - main_c, main - main_c,
                                cpu - cpu_c - (main - main_c), tail))
            results[name].append(args.events / cpu)
            print(f"run {run}: {name:<12} {args.events / cpu:,.0f} events per CPU-second "
                  f"({cpu:.2f} s: event loop {main:.2f} s, other threads {cpu - main:.2f} s; "
                  f"until every event was consumed {main_c:.2f} / {cpu_c - main_c:.2f} s, "
                  f"then until committed {main - main_c:.2f} / "
                  f"{cpu - cpu_c - (main - main_c):.2f} s in {tail:.1f} s; "
                  f"{batches[name][-1]:,.0f} batches; minor faults {f_main:,} event loop, "
                  f"{f_all - f_main:,} others; the broker's CPU {broker_cpu:.2f} s)",
                  file=sys.stderr)
            if args.ab:
                ab_run(orjson.loads(ab_out.read_bytes()), ab)

        run = 0
        for r in range(args.pairs):
            todo = []
            # one after another, each round starts with the next variant: a place in the round
            # (the broker's caches, the machine's drift within a round) favours none of them
            k = 0 if args.together else r % len(variants)
            for name, archived, tree in variants[k:] + variants[:k]:
                run += 1
                todo.append(one(name, archived, tree, run))
            if args.together:  # at once, on the same backlog: the same moment of the machine
                await asyncio.gather(*todo)
            else:
                for job in todo:
                    await job
    if args.ab:
        return ab_rows(ab)
    return round_rows(args.pairs, [name for name, _a, _t in variants], results, split, tails,
                      batches)
