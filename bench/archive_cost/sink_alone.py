"""The sink's own cost per event, alone on one thread of this process (step 0 of
bench/bench_archive.py)."""

from __future__ import annotations

import argparse
import statistics
import time
from tempfile import TemporaryDirectory
from typing import cast

from bench.archive_cost import BATCH
from bench.archive_cost.traffic import bench_world
from watchdog.archive.store import open_store


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

    _world, raws = bench_world(args.events)
    dec: Decoder[AccessEvent] = Decoder(AccessEvent, check=check_times)
    warm_up()
    loop: list[float] = []
    writer: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.writer_reps):
        for store_subjects in (False, True):  # interleaved: the machine's speed drifts
            chunks, spent = [], 0.0
            for i in range(0, len(raws), BATCH):
                batch = [bytes(r) for r in raws[i:i + BATCH]]  # fresh, as fetched
                evs = [cast(AccessEvent, dec.decode(r)) for r in batch]  # valid: simulated
                subjects = [e.data.subject_ids for e in evs] if store_subjects else None
                cols = ([e.event.id for e in evs], [e.timestamp.timestamp() for e in evs],
                        batch, subjects)
                t0 = time.thread_time()
                chunks.append(Chunk.of_columns(*cols))
                spent += time.thread_time() - t0
            loop.append(spent / len(raws))
            with TemporaryDirectory() as tmp:
                w = ArchiveWriter(open_store(tmp, create=True), "bench",
                                  store_subjects=store_subjects)
                t0 = time.thread_time()
                for c in chunks:
                    w.add_chunk("events", c)
                w.flush()
                writer[store_subjects].append((time.thread_time() - t0) / len(raws))
    us = 1e6
    out = [(f"sink alone, {len(raws):,} events: pipeline's part, us an event (min / median)",
            f"{min(loop) * us:.2f} / {statistics.median(loop) * us:.2f}")]
    for store_subjects, label in ((False, "format 3, the default"),
                                  (True, "format 1, store_subject_ids")):
        runs = writer[store_subjects]
        out.append((f"sink alone: writer's part, {label}, us an event (min / median)",
                    f"{min(runs) * us:.2f} / {statistics.median(runs) * us:.2f}"))
    return out
