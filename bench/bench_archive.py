"""Benchmark of the archive (watchdog/archive, watchdog/daemon/sinks/archive.py).

0. the sink alone (``--writer-reps`` runs, in this process, one thread): us an event of the
   hand-over (a batch's Chunk, made right after its events are decoded) and of the writer
   (add_chunk, then one flush: columns, Parquet, hash, files, manifest). Far steadier than 1.
1. sink cost: the same backlog (default 200k simulated events, 4 partitions of a real Tansu
   broker) consumed by ``watchdog run`` without and with ``archive:`` (a local directory, or
   ``--s3`` a moto server), alternately (``--pairs`` rounds; machine speed drifts, so compare
   within a round); events per CPU-second of the daemon until every offset is committed (with
   the archive that includes writing every segment). The daemon's CPU is user + system of
   all its threads, ended ones included, and of its children (it has none); it is split by
   thread (the event loop; the others: the writer) and into the time until every event was
   consumed and the rest until the commit. ``--flush-seconds`` sets the daemons'
   ``archive.flush_seconds`` (3600: the 200k events are written once, after consuming: a
   diagnosis of what overlapping the event loop costs).
2. size: bytes of Parquet (zstd) per million events, against the JSONL.
3. subject-report: one subject over a month of a simulated 2,000-account organisation (in
   process: the DuckDB query; and the whole ``watchdog subject-report`` command), then over
   ``--big`` events (default 10M): the month's segments copied with shifted days and ids
   (the same subjects recur, each copy a month later), which is what the query scans.

    .venv/bin/python bench/bench_archive.py [--events 200000] [--pairs 2] [--s3]
        [--before TREE ...] [--live WARM] [--ab] [--flush-seconds S] [--broker-cpus L]
        [--daemon-cpus L] [--writer-reps 5] [--month-accounts 2000] [--big 10000000]
        [--skip-daemon] [--skip-month]

``--before TREE`` (repeatable): one more daemon in each round per tree, with the archive, run
from another commit's tree (``git archive REV | tar -x -C TREE``), for before / after in the
same rounds. ``--live WARM``: a stream, not a backlog: each daemon gets a topic of its own,
reads WARM events from it (written and committed) before the timing starts, and the timed
events are sent while it runs. Each run also prints the daemon's minor page faults (event loop,
other threads) and the broker's CPU; ``--broker-cpus`` / ``--daemon-cpus`` pin them.
``--together``: a round's daemons run at once on the same backlog (each its own consumer
group), so they see the same moment of the shared machine.
``--ab``: instead, one daemon per round whose pipeline hands the archive every other batch
(bench/daemon_ab.py): its event loop's CPU per record with and without the archive, and in
the batches a flush overlapped, inside one process (immune to the 10-25% between processes).

Prints a table; asserts nothing. Measured 2026-12-06 (2 shared vCPUs, other engineers' test
suites running; local-directory archive):

- daemon cost, 200k events, four interleaved rounds without / with the archive:
  63.3k / 48.9k (-22.7%), 64.3k / 52.8k (-17.9%), 65.4k / 46.7k (-28.5%),
  63.9k / 48.8k (-23.7%) events per CPU-second: above the 10% target. The segment writer's
  thread: 0.47-0.61 s of CPU per 200k events (was 0.87-1.07 s, when rounds measured
  59.2k / 46.8k, 55.7k / 44.5k, 61.0k / 43.1k: -20% to -29%): per-batch pieces joined while
  in cache instead of one 75 MB join per flush, records by year (148 -> 14 files), bulk
  dedupe, pyarrow warmed at start. What it does is Parquet + zstd of the documents: ~1.2 us
  an event alone (encode 0.75, arrays 0.45), about twice that beside the event loop. The
  event loop's own extra varies from run to run (0.2-0.6 s). Before the lean segments (JSON
  parsed into columns) it was -40% and -65%.
  Later the same day (load 6-8, test suites beside): 48.1k / 39.4k (-17.9%), 48.7k / 39.4k
  (-18.9%), 51.0k / 41.8k (-18.0%). Part of the earlier spread was not the archive's: in 4 of
  6 runs (either side) aiokafka fetched the new assignment while the source's rebalance
  callback was still looking up offsets, and those records (14k of 200k, 28k once) were
  dropped and fetched again; now paused until positioned, every run fetches each record once
  (counted: 200,000 of access-logs). The archive's tuple per event (300 more young-generation
  collections, +0.1 s) is gone too. What is left: the writer thread, 0.56-0.68 s per 200k
  events on the loaded machine (per column alone, of 0.73 us an event: raw 0.51 of which zstd
  0.40, id 0.09, subject_ids 0.10, ts 0.04); zstd level 1 is already the default, and larger
  pages, level -1/-3, LZ4 or DELTA_LENGTH_BYTE_ARRAY save at most 0.1 us an event for
  +33-85% size (measured: 56.6, 65.0, 110 MiB per million against 63.9).
  Then (each batch's Arrow columns made once over its own memory, ``ts`` without dictionary
  pages), rounds of without / the code before (its tree run from a copy) / after, the daemon's
  CPU split by thread (event loop, other threads = the writer): at load 7-8, 48.2k / 37.0k
  (-21.0%) / 41.2k (-14.5%; -19.5% to -6.7%), writer 0.85 -> 0.58 s; at load 9-12, 49.3k /
  38.4k (-20.5%) / 40.7k (-16.8%; -29.8% to -13.7%), writer 0.77 -> 0.60 s, event loop 4.04 s
  without, 4.42 / 4.33 s with. Still above 10%. Alone on a core the writer needs ~1.4 us an
  event: Parquet encoding 0.75-0.8 (zstd of raw ~0.4), subject_ids from the decoded tuples
  0.24 (pyarrow's converter; flattened, ASCII-buffer and orjson + JSON-reader builds measured
  0.24-0.48), id 0.05, dedupe 0.1, raw 0.03 (was 0.27), hash + write 0.05; next to the event
  loop on the loaded machine its CPU time is 1.5-2x that. With ``--before`` (the tree of
  6f77c2d), load 6-10: 48.3k / 41.2k (-14.6%; -21.2% to -7.2%) / 39.0k (-21.1%; -36.0% to
  -4.4%), writer 0.53 s against 0.69 s, event loop 4.12 s without, 4.38 s with (perf of one
  round's +0.09 s: page faults of the batches' joined documents 0.04, the collector 0.025).
- size: 62 MiB of Parquet per million events (65 before ``ts`` lost its dictionary pages; the
  JSONL: 359 MiB), documents kept whole.
- subject-report, the busiest subject of a month of 2,000 accounts (1.28M events, 115 hits):
  0.81 s for the DuckDB query, 1.52 s for the whole command (Python start, imports, the audit
  entry): under the 2 s target. Over 10.04M events (the month copied 7 times, 907 hits):
  3.8-4.8 s query, 5.2-6.0 s command, measured with a load average of 8 on the 2 cores
  (3.4 s / 3.6 s on a quieter machine the session before). ``archive write`` of the month:
  24-41 s. At a load average of 10-12 (2026-12-06, later): 0.94 s query, 2.2 s
  command for the month (0.85 / 2.4 s with the code before), 6.7 / 8.5 s over 10M (6.8 /
  8.5 s before). Without pyarrow and numpy in the command (a local archive), 7 interleaved
  rounds at load 2: month 0.44 s median against 0.71 s before, query alone 0.25-0.33 s; 10.04M
  events 1.9 s either way (4 rounds; the scan of ``raw`` is the time).
- A later session (load 6-9; docs/operations.md "Cost" has the whole account): 23 rounds of
  main's archive code (as of 5012573), six sessions: median -15.3% (-32.7% to +4.2%),
  writer 0.60 s, event loop +0.23 s, all of it while the writer runs beside it
  (``--flush-seconds 3600``, 4 rounds: the event loop as without, -10.8% median, -5.6% to
  -13.4%). Tried against it in the same rounds, not kept: row groups encoded as a day fills
  (writer 0.74 s against 0.60), the documents copied by Arrow's builder at hand-over (event
  loop 5.00 s against 4.77, 4 of 4 rounds), the Arrow id / subject arrays made at hand-over
  (-9.5% against -9.8%). The same day at load 7, the fast suite running beside: 62 MiB per
  million events; subject-report month 0.99 s query / 1.72 s command, 10.04M events 7.68 /
  8.40 s.
- The next session (same day, load 0.4-7, the same code): 21 backlog rounds -15.1% (-29.3% to
  -0.2%), ``--live 50000`` 6 rounds -15.8% (-21.5% to -7.0%); broker on CPU 0 and daemons on
  CPU 1, 4 rounds: -16.8%; the sink handed nothing (a tree whose ``put_events`` is a no-op)
  -4.4%, chunks kept but never written -6.1%. docs/operations.md "Cost" has the account.
- The session after (load 3-5): records written before the stream, 5 rounds -11.8% against
  main's -12.2%; ``--ab --events 300000``, 4 runs: 17.24 / 17.07 us a record with / without
  the archive when no flush runs, 26-65 us in the batches a flush overlaps (on or off alike);
  ``--flush-seconds 2``: -11.1% to -22.4%.
- The session after (load 1.7-6): segments without ``subject_ids`` (format 2, reverted, never
  released, no longer readable):
  writer alone 1.85-1.89 -> 1.28-1.41 us an event; 4 rounds without / format 2 / main's:
  -6.7% median (-9.4% to +20.0%) against -12.3% (-33.0% to +10.1%); size 57 MiB per million
  against 62; but subject-report then scans every document: month 2.40 s command against
  1.09 s, 10.04M events 8.7 s against 2.8 s. ``--together``, 5 rounds without / with /
  format 2: -14.4% (-18.1% to -12.8%) / -10.1% (-16.8% to -5.1%); the writer 0.60 / 0.49 s
  per 200k events. docs/operations.md "Cost" has the account.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_daemon import (  # noqa: E402
    PARTITIONS,
    _cpu_seconds,
    metric_sum,
    produce,
    until,
    user_key,
)
from bench.daemon_probe import (  # noqa: E402
    at_least,
    committed,
    minor_faults,
    thread_cpu,
    topic_ends,
)
from tests.services.procs import ManagedProcess, free_port, wait_for_http  # noqa: E402
from tests.services.tansu import MotoS3, TansuBroker, create_topics  # noqa: E402
from watchdog.alerts.pseudonym import DEMO_KEY, Pseudonymizer  # noqa: E402
from watchdog.archive import manifest as mf  # noqa: E402
from watchdog.archive.reader import ArchiveQuery  # noqa: E402
from watchdog.archive.report import subject_report  # noqa: E402
from watchdog.archive.store import open_store  # noqa: E402
from watchdog.archive.writer import encode_segment  # noqa: E402
from watchdog.simulate import SimConfig, build_world  # noqa: E402

KEY = "bench-key-0123456789abcdef"


async def daemon_cost(args: argparse.Namespace) -> list[tuple[str, str]]:
    warm = args.live or 0
    # --live: the same accounts over as many more days as the warm-up's events need
    world = build_world(SimConfig(accounts=max(100, args.events // 220),
                                  days=10 + -(-10 * warm // args.events)))
    events = []
    for ev in world.events():
        events.append(orjson.dumps(ev))
        if len(events) >= warm + args.events:
            break
    rows: list[tuple[str, str]] = []
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
        ab: dict[str, list[float]] = {}
        results: dict[str, list[float]] = {name: [] for name, _a, _t in variants}
        split: dict[str, list[tuple[float, float]]] = {name: [] for name, _a, _t in variants}
        # CPU s of the event loop / other threads until every event was consumed, then until
        # every offset was committed, and that last stretch's wall seconds
        tails: dict[str, list[tuple[float, ...]]] = {name: [] for name, _a, _t in variants}
        batches: dict[str, list[float]] = {name: [] for name, _a, _t in variants}

        async def one(name: str, archived: bool, tree: Path, run: int) -> None:
            nonlocal ends
            port = free_port()
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
                cpu0 = _cpu_seconds(proc.pid)
                threads0 = thread_cpu(proc.pid)
                faults0 = minor_faults(proc.pid)
                broker0 = _cpu_seconds(broker.proc.pid) if broker.proc else 0.0
                if warm:  # the timed events, sent while the daemon runs
                    t_p = time.perf_counter()
                    await produce(bs, topic, events[warm:], key=user_key)
                    ends = await topic_ends(bs, topic)
                    print(f"produced {len(events) - warm:,} events in "
                          f"{time.perf_counter() - t_p:.1f} s", file=sys.stderr)
                # (a scrape every 0.25 s while consuming: the same small cost either way)
                await until(consumed, 0.25)
                cpu_c = _cpu_seconds(proc.pid) - cpu0
                main_c = thread_cpu(proc.pid).get(proc.pid, 0.0) - threads0.get(proc.pid, 0)
                t_c = time.perf_counter()
                await until(lambda g=f"bench-{run}", e=ends, t=topic: committed(bs, t, e, g))
                tail = time.perf_counter() - t_c
                cpu = _cpu_seconds(proc.pid) - cpu0
                threads = thread_cpu(proc.pid)
                # consumed batches (every topic): fewer events per batch, more per-batch
                # work per event
                batches[name].append(metric_sum(url, "watchdog_batch_seconds_count"))
                f_all, f_main = (b - a for a, b in zip(faults0, minor_faults(proc.pid),
                                                      strict=True))
                broker_cpu = (_cpu_seconds(broker.proc.pid) if broker.proc else 0.0) - broker0
            main = threads.get(proc.pid, 0.0) - threads0.get(proc.pid, 0.0)
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
        for _round in range(args.pairs):
            todo = []
            for name, archived, tree in variants:
                run += 1
                todo.append(one(name, archived, tree, run))
            if args.together:  # at once, on the same backlog: the same moment of the machine
                await asyncio.gather(*todo)
            else:
                for job in todo:
                    await job
    if args.ab:
        return ab_rows(ab)
    base = results["without"]
    for i in range(args.pairs):
        rows.append((f"round {i + 1}: events per daemon CPU-second, "
                     + " / ".join(name for name, _a, _t in variants),
                     " / ".join(f"{results[name][i]:,.0f}" for name, _a, _t in variants)))
    for name, _a, _t in variants:
        rates = results[name]
        mains = [m for m, _o in split[name]]
        others = [o for _m, o in split[name]]
        rows.append((f"{name}: median events per CPU-second (lowest, highest)",
                     f"{statistics.median(rates):,.0f} ({min(rates):,.0f}, {max(rates):,.0f})"))
        rows.append((f"{name}: median CPU s, event loop / other threads (the writer)",
                     f"{statistics.median(mains):.2f} / {statistics.median(others):.2f}"))
        med = [statistics.median(x) for x in zip(*tails[name], strict=True)]
        rows.append((f"{name}: until consumed, then until committed: CPU s (loop / others)",
                     f"{med[0]:.2f} / {med[1]:.2f}, then {med[2]:.2f} / {med[3]:.2f} "
                     f"in {med[4]:.1f} s"))
        rows.append((f"{name}: median batches consumed",
                     f"{statistics.median(batches[name]):,.0f}"))
        if name != "without":
            changes = [(r - b) / b for r, b in zip(rates, base, strict=True)]
            rows.append((f"{name}: median change within a round (lowest, highest)",
                         f"{statistics.median(changes):+.1%} ({min(changes):+.1%}, "
                         f"{max(changes):+.1%})"))
    return rows


def ab_run(stats: dict[str, list[float]], ab: dict[str, list[float]]) -> None:
    """One --ab daemon's totals (bench/daemon_ab.py): printed, and added to ``ab``."""
    for key, (cpu, n, batches, gc_cpu) in sorted(stats.items()):
        print(f"  {key}: {n:,.0f} records in {batches:,.0f} batches, event loop "
              f"{cpu / max(n, 1) * 1e6:.2f} us a record (collector {gc_cpu / max(n, 1) * 1e6:.2f})",
              file=sys.stderr)
        ab.setdefault(f"{key}: us a record, each run", []).append(cpu / max(n, 1) * 1e6)
        ab.setdefault(f"{key}: collector us a record, each run", []).append(
            gc_cpu / max(n, 1) * 1e6)


def ab_rows(ab: dict[str, list[float]]) -> list[tuple[str, str]]:
    return [(key, f"median {statistics.median(v):.2f} ({', '.join(f'{x:.2f}' for x in v)})")
            for key, v in sorted(ab.items())]


def writer_alone(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The sink's own work per event, alone on one thread of this process (no broker, no
    event loop beside it, so far steadier than the daemon's ratio): the pipeline's part (each
    batch handed over as a Chunk, right after its events are decoded, as in the daemon) and
    the writer's (add_chunk, then one flush into a fresh directory: columns, Parquet,
    hash, files, manifest). Minimum and median of ``--writer-reps`` runs."""
    from watchdog.archive.buffer import Chunk
    from watchdog.archive.writer import ArchiveWriter, warm_up
    from watchdog.decode import Decoder
    from watchdog.events import AccessEvent, check_times

    world = build_world(SimConfig(accounts=max(100, args.events // 220), days=10))
    raws = [orjson.dumps(ev) for ev, _ in zip(world.events(), range(args.events), strict=False)]
    dec: Decoder[AccessEvent] = Decoder(AccessEvent, check=check_times)
    warm_up()
    loop: list[float] = []
    writer: list[float] = []
    for _ in range(args.writer_reps):
        chunks, spent = [], 0.0
        for i in range(0, len(raws), BATCH):
            batch = [bytes(r) for r in raws[i:i + BATCH]]  # fresh, as fetched
            evs = [dec.decode(r) for r in batch]
            cols = ([e.event.id for e in evs], [e.timestamp.timestamp() for e in evs], batch,
                    [e.data.subject_ids for e in evs])
            t0 = time.thread_time()
            chunks.append(Chunk.of_columns(*cols))
            spent += time.thread_time() - t0
        loop.append(spent / len(raws))
        with TemporaryDirectory() as tmp:
            w = ArchiveWriter(open_store(tmp, create=True), "bench")
            t0 = time.thread_time()
            for c in chunks:
                w.add_chunk("events", c)
            w.flush()
            writer.append((time.thread_time() - t0) / len(raws))
    us = 1e6
    return [(f"sink alone, {len(raws):,} events: pipeline's part, us an event (min / median)",
             f"{min(loop) * us:.2f} / {statistics.median(loop) * us:.2f}"),
            ("sink alone: writer's part, us an event (min / median)",
             f"{min(writer) * us:.2f} / {statistics.median(writer) * us:.2f}")]


BATCH = 5000  # the bench daemon's max_poll_records


def month(args: argparse.Namespace, tmp: Path) -> tuple[Path, Path, int]:
    """The month of a 2,000-account organisation: JSONL, and its archive."""
    d = tmp / "month"
    subprocess.run([sys.executable, "-m", "watchdog", "simulate", "--out", str(d),
                    "--accounts", str(args.month_accounts), "--days", "30"], check=True,
                   cwd=ROOT, stdout=subprocess.DEVNULL)
    events = d / "events.jsonl"
    out = tmp / "month-archive"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "watchdog", "archive", "write", "--events",
                    str(events), "--subjects", str(d / "subjects.jsonl"), "--out", str(out)],
                   check=True, cwd=ROOT)
    print(f"archive write of the month: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    n = sum(1 for _ in events.open("rb"))
    return d, out, n


def busiest_subject(events: Path) -> tuple[str, int]:
    counts: dict[str, int] = {}
    with events.open("rb") as f:
        for line in f:
            for s in orjson.loads(line).get("data", {}).get("subject_ids", ()):
                counts[s] = counts.get(s, 0) + 1
    s = max(counts, key=lambda k: counts[k])
    return s, counts[s]


def time_report(archive: Path, subject: str, repeat: int = 3) -> tuple[float, float, int]:
    """(best in-process query seconds, best whole-command seconds, events found)."""
    store = open_store(str(archive))
    pseudonym = Pseudonymizer(DEMO_KEY)(subject)
    best_q, found = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        q = ArchiveQuery(store)
        found = len(subject_report(q, subject, pseudonym).events)
        q.close()
        best_q = min(best_q, time.perf_counter() - t0)
    best_cmd = float("inf")
    env = dict(os.environ, WATCHDOG_PSEUDONYM_KEY=KEY,
               WATCHDOG_AUDIT_TRAIL=str(archive.parent / "access.jsonl"))
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "watchdog", "subject-report", "--archive",
                        str(archive), "--subject", subject, "--json"], check=True, cwd=ROOT,
                       env=env, stdout=subprocess.DEVNULL)
        best_cmd = min(best_cmd, time.perf_counter() - t0)
    return best_q, best_cmd, found


def grow(archive: Path, target: int) -> int:
    """Copy the month's event segments, shifted by whole months, until ``target`` rows."""
    store = open_store(str(archive))
    base = mf.contents(store).of("events")
    rows = sum(s.rows for s in base)
    chain = mf.ManifestWriter(store, "bench-grow")
    k = 0
    while rows < target:
        k += 1
        segs = []
        for s in base:
            t = pq.read_table(store.path(s.path))
            shift = timedelta(days=31 * k)
            t = t.set_column(0, "id", pc.binary_join_element_wise(t["id"], pa.scalar(f"~{k}"),
                                                                  ""))
            t = t.set_column(1, "ts", pc.add(t["ts"], pa.scalar(shift)))
            day = (datetime.fromisoformat(s.day) + shift).strftime("%Y-%m-%d")
            data = encode_segment(t)
            path = f"events/day={day}/bench-grow-{k:04d}-{s.path.rsplit('-', 1)[1]}"
            store.write_bytes(path, data)
            first = (datetime.fromisoformat(s.first) + shift).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            last = (datetime.fromisoformat(s.last) + shift).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            segs.append(mf.Segment(path, "events", day, t.num_rows, len(data),
                                   hashlib.sha256(data).hexdigest(), first, last).as_dict())
            rows += t.num_rows
            if rows >= target:
                break
        chain.append("segments", segments=segs)
    return rows


def size_rows(out: Path, events: Path, n: int) -> list[tuple[str, str]]:
    store = open_store(str(out))
    segs = mf.contents(store).of("events")
    parquet = sum(s.bytes for s in segs)
    jsonl = events.stat().st_size
    return [("archive size per million events (Parquet, zstd, raw kept)",
             f"{parquet / n * 1e6 / 2**20:,.0f} MiB (JSONL: {jsonl / n * 1e6 / 2**20:,.0f} "
             f"MiB; {n:,} events in {len(segs)} segments)")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--pairs", type=int, default=2, help="interleaved rounds")
    p.add_argument("--before", metavar="TREE", action="append",
                   help="also run the daemon with the archive from another commit's tree in each "
                        "round (git archive REV | tar -x -C TREE; repeatable, one daemon each; "
                        "named by the tree's directory)")
    p.add_argument("--s3", action="store_true", help="the daemon archives to a moto server")
    p.add_argument("--live", type=int, metavar="WARM",
                   help="a stream, not a backlog: each daemon first reads WARM events (its topic's "
                        "backlog: consumed, written, committed), then the timing starts and the "
                        "bench sends the --events timed ones while it runs")
    p.add_argument("--together", action="store_true",
                   help="start a round's daemons at once on the same backlog (each its own "
                        "consumer group): they see the same moment of the shared machine, "
                        "beside each other (not with --live)")
    p.add_argument("--flush-seconds", type=float,
                   help="the daemons' archive.flush_seconds (default: the daemon's, 10)")
    p.add_argument("--broker-cpus", metavar="LIST",
                   help="run the broker on these CPUs only (comma-separated), e.g. 0: on this "
                        "machine the broker shares the daemon's cores, in production it is "
                        "elsewhere")
    p.add_argument("--daemon-cpus", metavar="LIST", help="run every daemon on these CPUs only")
    p.add_argument("--ab", action="store_true",
                   help="one daemon per round with the archive handed every other batch "
                        "(bench/daemon_ab.py): its event loop's CPU per record with and without "
                        "the archive, and while a flush runs, inside one process")
    p.add_argument("--month-accounts", type=int, default=2000)
    p.add_argument("--big", type=int, default=10_000_000)
    p.add_argument("--skip-daemon", action="store_true")
    p.add_argument("--writer-reps", type=int, default=5,
                   help="runs of the sink alone (0: none)")
    p.add_argument("--skip-month", action="store_true", help="the daemon's cost only")
    args = p.parse_args()
    if args.together and args.live:
        p.error("--together takes a backlog, not --live")
    # the daemons' working directories
    args.before = [str(Path(t).resolve()) for t in args.before or ()]
    rows: list[tuple[str, str]] = []
    if args.writer_reps:
        rows += writer_alone(args)
    if not args.skip_daemon:
        rows += asyncio.run(daemon_cost(args))
    with TemporaryDirectory() as t:
        if args.skip_month:
            _print(rows)
            return
        tmp = Path(t)
        d, out, n = month(args, tmp)
        rows += size_rows(out, d / "events.jsonl", n)
        subject, count = busiest_subject(d / "events.jsonl")
        q, cmd, found = time_report(out, subject)
        assert found == count, (found, count)
        rows.append((f"subject-report, busiest subject, month of {args.month_accounts:,} "
                     f"accounts ({n:,} events, {found} hits)",
                     f"query {q:.2f} s, whole command {cmd:.2f} s"))
        if args.big:
            t0 = time.perf_counter()
            total = grow(out, args.big)
            print(f"grew to {total:,} events in {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr)
            q, cmd, found = time_report(out, subject)
            rows.append((f"subject-report over {total:,} events ({found} hits)",
                         f"query {q:.2f} s, whole command {cmd:.2f} s"))
    _print(rows)


def _print(rows: list[tuple[str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 40}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
