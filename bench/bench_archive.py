"""Benchmark of the archive (watchdog/archive, watchdog/daemon/sinks/archive.py).

0. the sink alone (``--writer-reps`` runs, in this process, one thread): us an event of the
   hand-over (a batch's Chunk, made right after its events are decoded) and of the writer
   (add_chunk, then one flush: columns, Parquet, hash, files, manifest). Far steadier than 1.
1. sink cost: the same backlog (default 200k simulated events, 4 partitions of a real Tansu
   broker) consumed by ``watchdog run`` without and with ``archive:`` (a local directory, or
   ``--s3`` a moto server), alternately (``--pairs`` rounds, each starting with the next
   variant; machine speed drifts, so compare within a round); events per CPU-second of the
   daemon until every offset is committed (with the archive that includes writing every
   segment). The daemon's CPU is user + system of
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

Each step is a module of bench/archive_cost/ (its __init__ lists them). Prints a table;
asserts nothing. Measured 2026-12-06 (2 shared vCPUs, other engineers' test
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
- 2026-12-07 (load 0.5-4.4): segment format 3 (the daemon's default: ``subject_ids`` left to
  readers and compaction): the writer alone 1.35-1.52 against 1.66-1.87 us an event with the
  column; ``--together``, four alternating blocks of 14 rounds (this tree; then the tree of
  c640e13 run as the bench's own), then two more: pooled, 42 rounds each, format 3 -10.8%
  median, the code before -13.2%; the writer's thread 0.39-0.56 s against 0.53-0.58 s per
  200k events.
- Later that day (load 1-2.5): three more ``--together`` blocks of 30 rounds: -5.6%, -6.3%,
  -8.9%; with the six earlier format-3 blocks' rounds, 132 in all, median -8.5% (blocks
  -5.6% to -13.5%). ``--before`` the tree of 2c5b2c0, 20 rounds of three: -9.4% against
  -8.2%. ``compaction.py --lean --hourly``: the month 205 segments, subject report 0.52 s in
  process, the command 0.96-1.39 s (2.14-3.27 s compacted daily, interleaved, load 3.5-5.2).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# each step's module in bench/archive_cost/
from bench.archive_cost.daemon_rounds import daemon_cost  # noqa: E402
from bench.archive_cost.report_timing import month_rows  # noqa: E402
from bench.archive_cost.round_table import print_table  # noqa: E402
from bench.archive_cost.sink_alone import writer_alone  # noqa: E402


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
            print_table(rows)
            return
        rows += month_rows(args, Path(t))
    print_table(rows)


if __name__ == "__main__":
    main()
