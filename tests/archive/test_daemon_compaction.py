"""Compaction and manifest checkpoints beside a live daemon, with the real daemon, the real
broker (Tansu) and a real S3 protocol server (moto): a compactor merges closed days, and the
open day's tiers, while the daemon writes (its writer checkpointing every few flushes), the
daemon is killed (-9) and restarted from its checkpoint with segments it knew gone, and the
archive still holds each event produced exactly once, in fewer segments, and verifies."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from tests.archive.test_daemon_archive import archived, check_archive, s3_location
from tests.faults.harness import (
    Daemon,
    FaultWorld,
    Offsets,
    Run,
    Stream,
    prepare_broker,
    until,
)
from watchdog.archive import checkpoint
from watchdog.archive import manifest as mf
from watchdog.archive.compact import compact
from watchdog.archive.store import ACCESS_KEY_ENV, SECRET_KEY_ENV, open_store

pytestmark = pytest.mark.integration
__all__ = ["s3_location"]  # the fixture


async def test_compaction_and_a_kill_beside_a_live_daemon(
        tansu_broker, fault_world: FaultWorld, tmp_path: Path, s3_location: str) -> None:
    bs = tansu_broker.bootstrap_servers
    await prepare_broker(bs, fault_world)
    daemon = Daemon(tmp_path, bs, fault_world, archive={
        "location": s3_location, "writer": "daemon-1", "flush_seconds": 0.2,
        "checkpoint_every": 5})
    run = Run(fault_world, bs, daemon, Stream(bs, fault_world.events, rate=300), Offsets(bs))
    store = open_store(s3_location, {ACCESS_KEY_ENV: "test", SECRET_KEY_ENV: "test"})
    stop = threading.Event()
    passes: list[int] = []

    def compactor() -> None:  # as the CronJob would, only often: every closed day at once
        while not stop.is_set():
            passes.append(len(compact(store, "compactor", grace_seconds=0)))
            stop.wait(0.3)

    thread = threading.Thread(target=compactor)
    try:
        daemon.start()
        await daemon.wait_consuming()
        run.stream.start()
        thread.start()
        await run.until_committed(0.4)

        async def compacted() -> bool:
            return sum(passes) > 0

        # the restart must find segments it knew replaced: a compaction before the kill
        await until(compacted, within=60, what="a compaction before the kill")
        daemon.proc.stop(kill=True)
        assert run.stream.sent < run.n, "the kill must come in the middle of the stream"
        daemon.start()
        await daemon.wait_consuming()
        await run.finish("the restarted daemon to commit the whole stream")
        stop.set()
        await asyncio.to_thread(thread.join)
        done = compact(store, "compactor", grace_seconds=0)
        assert daemon.proc.stop() == 0
        check_archive(store, fault_world)  # each event once, every alert and record, verify
        full = mf.contents(store)
        compactions = [e for c in full.chains for e in c.entries if e.get("op") == "compact"]
        assert compactions, f"no compaction ran ({passes}, {done})"
        # the last day never closes (grace 0: it ends after the latest event), so a compaction
        # of it is the open day's tiers merged beside the live writer
        last_day = max(s.day for s in full.of("events"))
        assert any(e.get("dataset") == "events" and e.get("day") == last_day
                   for e in compactions), (last_day, passes)
        flushes = sum(len(c.entries) for c in full.chains if c.writer == "daemon-1")
        events = full.of("events")
        assert len(events) < flushes, (len(events), flushes)
        assert store.listdir(checkpoint.CHECKPOINT_DIR), "the daemon wrote no checkpoint"
        assert checkpoint.contents(store).segments == full.segments
        assert len(archived(store, "events")) == len(fault_world.events)
        print(f"\n{len(fault_world.events)} events: {flushes} daemon flushes, "
              f"{len(compactions)} compactions, {len(events)} event segments left")
    finally:
        stop.set()
        if thread.is_alive():
            await asyncio.to_thread(thread.join)
        await run.stream.close()
        await run.offsets.reset()
        await daemon.aclose()
